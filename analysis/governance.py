"""每月一题, adopted and ended: the one place that writes `governance_topics`.

A supervisor (on /hotspots) or an operator (`hotline governance adopt`) takes a
candidate on as a topic for a lead unit from a start month; the monthly run then
tracks it against its pre-adoption baseline (`analysis.candidates`). The lead
unit is a level-3 unit (a district or a city bureau), because those are the units
a 每月一题 is handed to. A title may be adopted once per start month, so a double
click or a re-run script does not track the same problem twice.

Ending a topic records its end month and who ended it. The run writer keeps
tracking an ended topic (how calls go after the work stops is worth seeing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.periods import PeriodError, calendar_month
from core.vocabulary import Level
from db.models import AnalysisRun, Department, GovernanceTopic

TITLE_MAX = 200


class GovernanceError(ValueError):
    """Something a person asked that cannot be adopted or ended; one line saying why."""


@dataclass(frozen=True)
class LeadUnit:
    id: int
    code: str
    name: str


def lead_units(session: Session) -> list[LeadUnit]:
    """The units a topic may be handed to: level 3 (districts and city bureaus), by code."""
    rows = session.execute(
        select(Department.id, Department.code, Department.name)
        .where(Department.level == Level.DISTRICT)
        .order_by(Department.code)
    )
    return [LeadUnit(row.id, row.code, row.name) for row in rows]


def month_label(text: str, field: str = "start month") -> str:
    """'2026-11' as given, or a GovernanceError naming the field and the form."""
    try:
        return calendar_month(text.strip()).label
    except PeriodError:
        raise GovernanceError(f"{field} {text!r}: expected YYYY-MM, e.g. 2026-11") from None


def split_keywords(text: str | Iterable[str]) -> list[str]:
    """Keywords from 'a,b' (commas, Chinese commas or 、) or a list; blanks and repeats dropped."""
    parts = re.split(r"[,，、]", text) if isinstance(text, str) else list(text)
    seen: list[str] = []
    for part in (p.strip() for p in parts):
        if part and part not in seen:
            seen.append(part)
    return seen


def adopt(
    session: Session,
    *,
    title: str,
    category: str | None,
    keywords: str | Iterable[str],
    lead_unit: str,
    start_month: str,
    goal: str | None,
    by: str,
) -> GovernanceTopic:
    """Adopt a topic (lead_unit is a level-3 unit's code); GovernanceError if it cannot be."""
    title = title.strip()
    if not title:
        raise GovernanceError("title: required, e.g. 冬季供暖不热专项治理")
    if len(title) > TITLE_MAX:
        raise GovernanceError(f"title: at most {TITLE_MAX} characters")
    start = month_label(start_month)
    unit = session.scalar(select(Department).where(Department.code == lead_unit.strip()))
    if unit is None or unit.level != Level.DISTRICT:
        raise GovernanceError(
            f"lead unit {lead_unit!r}: no district or city bureau (level 3) has this code"
        )
    duplicate = session.scalar(
        select(GovernanceTopic.id).where(
            GovernanceTopic.title == title, GovernanceTopic.start_month == start
        )
    )
    if duplicate is not None:
        raise GovernanceError(f"title {title!r}: already adopted from {start} (topic {duplicate})")
    topic = GovernanceTopic(
        title=title,
        category=(category or "").strip() or None,
        keywords=json.dumps(split_keywords(keywords), ensure_ascii=False),
        lead_department_id=unit.id,
        start_month=start,
        goal=(goal or "").strip() or None,
        created_by=by,
    )
    session.add(topic)
    session.flush()
    return topic


def end_month(topic: GovernanceTopic) -> str | None:
    """The month the topic was ended in; None while it runs."""
    return topic.end_month


def goal_text(topic: GovernanceTopic) -> str:
    """The goal as the person wrote it."""
    return (topic.goal or "").strip()


def end(session: Session, topic_id: int, month: str, by: str) -> GovernanceTopic | None:
    """End a topic in month; None if there is no such topic."""
    topic = session.get(GovernanceTopic, topic_id)
    if topic is None:
        return None
    label = month_label(month, "end month")
    if label < topic.start_month:
        raise GovernanceError(f"end month {label}: before the start month {topic.start_month}")
    if end_month(topic) is not None:
        raise GovernanceError(f"topic {topic.id}: already ended in {end_month(topic)}")
    topic.end_month, topic.ended_by = label, by
    session.flush()
    return topic


def adopted(session: Session) -> list[GovernanceTopic]:
    """Every adopted topic, the latest start first."""
    return list(
        session.scalars(
            select(GovernanceTopic).order_by(
                GovernanceTopic.start_month.desc(), GovernanceTopic.id.desc()
            )
        )
    )


def latest_progress(session: Session) -> tuple[str, dict[int, dict[str, Any]]]:
    """The newest finished monthly run's month and its governance progress, by topic id."""
    run = session.scalars(
        select(AnalysisRun)
        .where(AnalysisRun.kind == "month", AnalysisRun.status == "done")
        .order_by(AnalysisRun.month.desc(), AnalysisRun.finished_at.desc(), AnalysisRun.id.desc())
        .limit(1)
    ).first()
    if run is None or not run.summary:
        return "", {}
    try:
        parts = json.loads(run.summary).get("governance", [])
    except (json.JSONDecodeError, AttributeError):
        return run.month, {}
    return run.month, {
        p["id"]: p for p in parts if isinstance(p, dict) and isinstance(p.get("id"), int)
    }
