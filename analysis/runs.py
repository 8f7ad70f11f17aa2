"""Stored runs: each analysis is written once, and reports and the console read it back.

A month's figures must not change between the Monday meeting and the report that
follows it, so nothing reads the analysis live: `hotline analyse --month` writes a
run (its settings and code version with it), and the console, the reports and the
exports show the newest finished run of a month. A run that fails is kept as
`failed` with nothing under it, so a half-written month is never shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from db.models import AnalysisRun, HotspotFlag, Topic, UnitSignal, utcnow


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def to_json(value: Any) -> str:
    """JSON for the run's text columns (dates as ISO strings, Chinese kept readable)."""
    return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True)


def start_run(
    session: Session,
    month: str,
    settings: dict[str, Any],
    code_version: str,
    kind: str = "month",
    day: date | None = None,
) -> AnalysisRun:
    """A run in state `running`, flushed so its id can be used."""
    run = AnalysisRun(
        month=month,
        kind=kind,
        day=day,
        config=to_json(settings),
        code_version=code_version,
        started_at=utcnow(),
        status="running",
    )
    session.add(run)
    session.flush()
    return run


def _row_values(row: object, model: type, json_columns: set[str]) -> dict[str, Any]:
    """The dataclass's values for the model's columns; list-like ones as JSON text."""
    assert is_dataclass(row)
    values = {field.name: getattr(row, field.name) for field in fields(row)}
    columns = set(model.__table__.columns.keys())  # type: ignore[attr-defined]
    return {
        name: to_json(value) if name in json_columns else value
        for name, value in values.items()
        if name in columns
    }


def store_flags(session: Session, run: AnalysisRun, flags: Iterable[object]) -> list[HotspotFlag]:
    rows = [HotspotFlag(run_id=run.id, **_row_values(flag, HotspotFlag, set())) for flag in flags]
    session.add_all(rows)
    session.flush()
    return rows


def store_topics(session: Session, run: AnalysisRun, topics: Iterable[object]) -> list[Topic]:
    rows = [
        Topic(run_id=run.id, **_row_values(topic, Topic, {"terms", "typical_ticket_ids"}))
        for topic in topics
    ]
    session.add_all(rows)
    session.flush()
    return rows


def store_signals(session: Session, run: AnalysisRun, signals: Iterable[object]) -> int:
    """The run's unit signals in one bulk INSERT, in their order; returns how many.

    A month has well over a thousand signals: as ORM objects, one by one, storing them
    took a tenth of the whole analysis. Nothing reads them back in the run.
    """
    rows = [
        {"run_id": run.id, **_row_values(signal, UnitSignal, {"ticket_ids"})} for signal in signals
    ]
    if rows:  # NULLs written, not left out: rows with other empty columns stay one batch
        session.execute(insert(UnitSignal).execution_options(render_nulls=True), rows)
    return len(rows)


def finish_run(session: Session, run: AnalysisRun, summary: dict[str, Any]) -> None:
    run.summary = to_json(summary)
    run.status = "done"
    run.finished_at = utcnow()


def fail_run(session: Session, run_id: int, why: str) -> None:
    """Mark a run failed (in a fresh transaction: the run's own one was rolled back)."""
    run = session.get(AnalysisRun, run_id)
    if run is not None:
        run.status = "failed"
        run.finished_at = utcnow()
        run.summary = to_json({"error": why})


def latest_run(session: Session, month: str, kind: str = "month") -> AnalysisRun | None:
    """The newest finished run of the month, or None."""
    return session.scalars(
        select(AnalysisRun)
        .where(AnalysisRun.month == month, AnalysisRun.kind == kind, AnalysisRun.status == "done")
        .order_by(AnalysisRun.finished_at.desc(), AnalysisRun.id.desc())
        .limit(1)
    ).first()


def run_months(session: Session) -> list[str]:
    """Months with a finished monthly run, the newest first."""
    return list(
        session.scalars(
            select(AnalysisRun.month)
            .where(AnalysisRun.kind == "month", AnalysisRun.status == "done")
            .distinct()
            .order_by(AnalysisRun.month.desc())
        )
    )


def summary_of(run: AnalysisRun) -> dict[str, Any]:
    return json.loads(run.summary) if run.summary else {}


def previous_topic_vectors(session: Session, months: list[str]) -> list[dict[str, float]] | None:
    """The term weights of the stored topics of these months (their newest runs).

    None when none of the months was analysed: with no history nothing can be called
    new (an empty list would make every topic new).
    """
    vectors: list[dict[str, float]] = []
    analysed = False
    for month in months:
        run = latest_run(session, month)
        if run is None:
            continue
        analysed = True
        for topic in session.scalars(select(Topic).where(Topic.run_id == run.id)):
            vectors.append({str(term): float(weight) for term, weight in json.loads(topic.terms)})
    return vectors if analysed else None


@dataclass(frozen=True)
class RunRef:
    """A run's identity for messages: id, month and when it finished."""

    id: int
    month: str
    finished_at: datetime | None

    @classmethod
    def of(cls, run: AnalysisRun) -> RunRef:
        return cls(run.id, run.month, run.finished_at)

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))
