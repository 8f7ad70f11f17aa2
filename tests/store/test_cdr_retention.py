"""A cluster's call records under retention: the store's copy of the nodes' CDRs goes when
its retention period is over, on the record, with the rest of the retention pass."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import load_config
from db.cdr import add_cdr_lines, delete_cdr_records_ended_before
from db.models import RetentionDeletion
from db.session import make_engine, make_session_factory, unit_of_work
from ivr.cdr_tail import parse_line, ship_cdrs
from privacy.retention import expire_cdr_records, run_retention
from tests.support.cdr_lines import cdr_line, stored_uniqueids
from tests.support.config import write_config

NOW = datetime(2026, 12, 5, 3, tzinfo=UTC)  # a fixed clock: nothing here depends on today


def test_stored_call_records_past_the_period_are_deleted_on_the_record(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(
        cdr_line("ast1-3.1", ended="2025-11-30 23:59:59")
        + cdr_line("ast1-3.2", ended="2025-12-01 00:00:00")
        + cdr_line("ast1-3.3", ended="2026-12-04 10:00:00")
    )
    ship_cdrs(store, "ast1", master)
    ship_cdrs(store, "ast2", master)
    cutoff = datetime(2025, 12, 1, tzinfo=UTC)

    assert expire_cdr_records(store, cutoff) == 2  # one line, on each node
    assert stored_uniqueids(store) == stored_uniqueids(store, "ast2") == ["ast1-3.2", "ast1-3.3"]
    with unit_of_work(store) as session:
        (audit,) = session.scalars(select(RetentionDeletion))
        assert (audit.kind, audit.target) == ("cdr", "cdr_records")
        assert audit.detail.startswith("2 rows ended before 2025-12-01")
    assert expire_cdr_records(store, cutoff) == 0  # nothing left to delete, nothing recorded
    with unit_of_work(store) as session:
        assert session.scalar(select(func.count()).select_from(RetentionDeletion)) == 1
        assert delete_cdr_records_ended_before(session, cutoff) == 0


def test_the_retention_pass_deletes_the_stored_call_records_too(
    migrated_url: str, tmp_path: Path
) -> None:
    config = load_config(
        write_config(
            tmp_path, database={"url": migrated_url}, privacy={"retention_days": {"cdr": 30}}
        )
    )
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    try:
        records = [
            parse_line(0, cdr_line("ast1-4.1", ended="2026-11-04 02:00:00").encode()),
            parse_line(200, cdr_line("ast1-4.2", ended="2026-11-06 02:00:00").encode()),
        ]
        with unit_of_work(sessions) as session:
            add_cdr_lines(session, "ast1", 1, [r for r in records if r is not None])

        report = run_retention(config, sessions, NOW)

        assert report.cdr_records_deleted == 1
        assert stored_uniqueids(sessions) == ["ast1-4.2"]
    finally:
        engine.dispose()
