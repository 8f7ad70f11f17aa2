"""What the hotspots page shows of 每月一题 adoption and of the daily early warning.

- Each candidate's "采纳 adopt" form, prefilled: a title, the category, the keywords
  (a topic's top terms from the run; none for a whole category, so that all of the
  category's calls are tracked, not only those naming it), the lead units to pick
  from and the month after the shown one as the start.
- The adopted topics from the store, each with its months from the shown run's
  `summary.governance` (observed against the baseline, with a small chart); a
  topic adopted after that run says it has no months yet.
- The newest daily run's flags, so yesterday's warning is seen before the month ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from analysis.candidates import shift_month
from analysis.governance import LeadUnit, adopted, end_month, goal_text, lead_units
from dashboard.hotspot_chart import progress_chart
from dashboard.hotspot_store import flags_of, newest_daily_run, topics_of, units_by_id
from dashboard.hotspot_summary import Candidate, Governance, RunSummary
from dashboard.hotspot_view import FlagRow, flag_rows
from db.models import AnalysisRun

KEYWORDS_FROM_TERMS = 4  # a topic's top terms prefilled as keywords


@dataclass(frozen=True)
class AdoptForm:
    """A candidate's adopt form, prefilled."""

    key: str  # unique on the page: the form's element ids
    title: str
    category: str
    keywords: str


@dataclass(frozen=True)
class AdoptedRow:
    id: int | None  # None: only in the run (the store no longer has it)
    title: str
    category: str
    keywords: list[str]
    lead_unit: str
    start_month: str
    goal: str
    ended: str | None
    progress: Governance | None
    chart: str


@dataclass(frozen=True)
class GovernanceView:
    candidate_forms: list[AdoptForm]
    topic_forms: list[AdoptForm]
    units: list[LeadUnit]
    start_month: str  # the forms' default start: the month after the shown one
    adopted: list[AdoptedRow]


@dataclass(frozen=True)
class DailyPanel:
    run_id: int
    day: date | None
    flags: list[FlagRow]


def _topic_terms(session: Session, run: AnalysisRun | None) -> dict[tuple[str, str], list[str]]:
    """(category, label) -> the run's topic's top terms."""
    if run is None:
        return {}
    out: dict[tuple[str, str], list[str]] = {}
    for topic in topics_of(session, run.id):
        try:
            values = json.loads(topic.terms or "[]")
        except json.JSONDecodeError:
            values = []
        terms = [str(v[0] if isinstance(v, list) and v else v) for v in values]
        out.setdefault((topic.category, topic.label), terms[:KEYWORDS_FROM_TERMS])
    return out


def adopt_forms(
    candidates: list[Candidate], prefix: str, terms: dict[tuple[str, str], list[str]]
) -> list[AdoptForm]:
    """One prefilled form per candidate, in the candidates' order."""
    forms = []
    for index, c in enumerate(candidates):
        if c.topic:
            words = terms.get((c.category, c.topic)) or [
                w for w in c.topic.split("、") if w.strip()
            ]
            title = f"{c.topic}（{c.category}）专项治理"
        else:
            words, title = [], f"{c.category}专项治理"
        forms.append(AdoptForm(f"{prefix}-{index}", title, c.category, "、".join(words)))
    return forms


def _row(topic_id: int | None, progress: Governance | None, **store: object) -> AdoptedRow:
    months = progress.months if progress else []
    chart = (
        progress_chart(
            [m.month for m in months],
            [float(m.observed) for m in months],
            [m.baseline for m in months],
        )
        if months
        else ""
    )
    return AdoptedRow(id=topic_id, progress=progress, chart=chart, **store)  # type: ignore[arg-type]


def adopted_rows(session: Session, summary: RunSummary) -> list[AdoptedRow]:
    """The store's adopted topics with the run's progress (matched by id and title), then
    any topic the run tracked that the store no longer has."""
    progress = {(g.id, g.title): g for g in summary.governance}
    topics = adopted(session)
    units = units_by_id(session, [t.lead_department_id for t in topics])
    rows = []
    for topic in topics:
        unit = units.get(topic.lead_department_id or 0)
        rows.append(
            _row(
                topic.id,
                progress.pop((topic.id, topic.title), None),
                title=topic.title,
                category=topic.category or "",
                keywords=[str(k) for k in json.loads(topic.keywords or "[]")],
                lead_unit=unit.name if unit else "",
                start_month=topic.start_month,
                goal=goal_text(topic),
                ended=end_month(topic),
            )
        )
    for g in progress.values():
        rows.append(
            _row(
                None,
                g,
                title=g.title,
                category="",
                keywords=[],
                lead_unit=g.lead_unit,
                start_month=g.start_month or (g.months[0].month if g.months else ""),
                goal=g.goal or "",
                ended=None,
            )
        )
    return rows


def governance_view(
    session: Session, run: AnalysisRun | None, summary: RunSummary, month: str
) -> GovernanceView:
    """The adopt forms of the run's candidates and the adopted topics' progress."""
    terms = _topic_terms(session, run)
    return GovernanceView(
        candidate_forms=adopt_forms(summary.candidates, "c", terms),
        topic_forms=adopt_forms(summary.topic_candidates, "t", terms),
        units=lead_units(session),
        start_month=shift_month(month, 1) if month else "",
        adopted=adopted_rows(session, summary),
    )


def daily_panel(session: Session) -> DailyPanel | None:
    """The newest daily early warning and its flags; None before the first one ran."""
    run = newest_daily_run(session)
    if run is None:
        return None
    flags = flags_of(session, run.id)
    units = units_by_id(session, [f.area_id for f in flags])
    return DailyPanel(run.id, run.day, flag_rows(flags, units, RunSummary()))
