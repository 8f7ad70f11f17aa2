"""The stored monthly analysis as the hotspots page reads it, and the one thing it writes:
a supervisor's review of a flag.

Reads only what a run wrote (`analysis_runs`, `hotspot_flags`, `topics`,
`unit_signals`) plus the names of units and the numbers of tickets it points
at; it never recomputes the analysis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from db.models import AnalysisRun, Department, HotspotFlag, Ticket, Topic, UnitSignal

MONTH_RUN = "month"
DAILY_RUN = "daily"
DONE = "done"
REVIEWS = ("confirmed", "dismissed")


def months_with_runs(session: Session) -> list[str]:
    """Months that have a finished monthly run, newest first (the month picker)."""
    return list(
        session.scalars(
            select(AnalysisRun.month)
            .where(AnalysisRun.kind == MONTH_RUN, AnalysisRun.status == DONE)
            .group_by(AnalysisRun.month)
            .order_by(AnalysisRun.month.desc())
        )
    )


def newest_run(session: Session, month: str) -> AnalysisRun | None:
    """The month's newest finished monthly run: the one the page shows."""
    return session.scalars(
        select(AnalysisRun)
        .where(
            AnalysisRun.kind == MONTH_RUN,
            AnalysisRun.status == DONE,
            AnalysisRun.month == month,
        )
        .order_by(AnalysisRun.finished_at.desc(), AnalysisRun.id.desc())
        .limit(1)
    ).first()


def newest_daily_run(session: Session) -> AnalysisRun | None:
    """The newest finished daily early warning (yesterday's, when serve ran this morning)."""
    return session.scalars(
        select(AnalysisRun)
        .where(AnalysisRun.kind == DAILY_RUN, AnalysisRun.status == DONE)
        .order_by(AnalysisRun.day.desc(), AnalysisRun.finished_at.desc(), AnalysisRun.id.desc())
        .limit(1)
    ).first()


def unfinished_run(session: Session, month: str) -> AnalysisRun | None:
    """The month's latest run that is still running or failed (said on the page when the
    month has no finished one)."""
    return session.scalars(
        select(AnalysisRun)
        .where(AnalysisRun.kind == MONTH_RUN, AnalysisRun.month == month)
        .order_by(AnalysisRun.started_at.desc(), AnalysisRun.id.desc())
        .limit(1)
    ).first()


def flags_of(session: Session, run_id: int) -> list[HotspotFlag]:
    """The run's flags: alerts before watches, then the strongest evidence first."""
    alert_first = case((HotspotFlag.state == "alert", 0), else_=1)
    return list(
        session.scalars(
            select(HotspotFlag)
            .where(HotspotFlag.run_id == run_id)
            .order_by(
                alert_first,
                HotspotFlag.q_value.asc().nulls_last(),
                HotspotFlag.p_value,
                HotspotFlag.id,
            )
        )
    )


def topics_of(session: Session, run_id: int) -> list[Topic]:
    """The run's topics by category, the largest first."""
    return list(
        session.scalars(
            select(Topic)
            .where(Topic.run_id == run_id)
            .order_by(Topic.category, Topic.size.desc(), Topic.id)
        )
    )


def signals_of(session: Session, run_id: int) -> list[UnitSignal]:
    """The run's unit signals: flagged ones first, then by the evidence's strength."""
    flagged_first = case((UnitSignal.flagged, 0), else_=1)
    return list(
        session.scalars(
            select(UnitSignal)
            .where(UnitSignal.run_id == run_id)
            .order_by(
                flagged_first,
                UnitSignal.q_value.asc().nulls_last(),
                UnitSignal.p_value.asc().nulls_last(),
                UnitSignal.id,
            )
        )
    )


@dataclass(frozen=True)
class Unit:
    id: int
    name: str
    level: int
    parent_id: int | None


def units_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, Unit]:
    """The named departments (areas, units), by id."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(Department.id, Department.name, Department.level, Department.parent_id).where(
            Department.id.in_(wanted)
        )
    )
    return {row.id: Unit(row.id, row.name, row.level, row.parent_id) for row in rows}


@dataclass(frozen=True)
class TicketFacts:
    id: int
    number: str
    description: str
    confidential: bool


def tickets_by_id(session: Session, ids: Iterable[int]) -> dict[int, TicketFacts]:
    """The tickets a run points at (typical tickets, evidence), by id."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(Ticket.id, Ticket.number, Ticket.description, Ticket.confidential).where(
            Ticket.id.in_(wanted)
        )
    )
    return {
        row.id: TicketFacts(row.id, row.number, row.description or "", bool(row.confidential))
        for row in rows
    }


@dataclass(frozen=True)
class Precision:
    """Of the flags people reviewed, how many they confirmed."""

    confirmed: int
    dismissed: int

    @property
    def value(self) -> float | None:
        reviewed = self.confirmed + self.dismissed
        return self.confirmed / reviewed if reviewed else None


def precision(session: Session, run_id: int | None = None) -> Precision:
    """confirmed ÷ (confirmed + dismissed), over every reviewed flag (or one run's)."""
    statement = (
        select(HotspotFlag.review, func.count())
        .where(HotspotFlag.review.in_(REVIEWS))
        .group_by(HotspotFlag.review)
    )
    if run_id is not None:
        statement = statement.where(HotspotFlag.run_id == run_id)
    counts = {review: count for review, count in session.execute(statement)}
    return Precision(int(counts.get("confirmed", 0)), int(counts.get("dismissed", 0)))


def review_flag(
    session: Session, flag_id: int, review: str, username: str, at: datetime
) -> tuple[HotspotFlag, AnalysisRun] | None:
    """Record a supervisor's confirm or dismiss on a flag (a later review replaces an
    earlier one; the audit trail keeps both); None if there is no such flag."""
    if review not in REVIEWS:
        raise ValueError(f"review {review!r}: expected one of {', '.join(REVIEWS)}")
    flag = session.get(HotspotFlag, flag_id)
    if flag is None:
        return None
    flag.review, flag.reviewed_by, flag.reviewed_at = review, username, at
    session.flush()
    run = session.get(AnalysisRun, flag.run_id)
    assert run is not None  # the foreign key
    return flag, run
