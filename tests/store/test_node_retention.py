"""A node's own Master.csv keeps call records no longer than the privacy rules allow (issue 22).

The node daemon cuts the node's expired lines once per retention interval;
the rewritten file is read from its start again and nothing is shipped twice.
Fixed dates and a clock passed in: nothing here depends on today.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.config import load_config
from hotline.node_daemon import NodeRetention
from ivr.cdr_tail import ship_cdrs
from tests.support.cdr_lines import cdr_line, stored_uniqueids
from tests.support.config import write_config

NOW = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)


def test_the_daemon_cuts_the_nodes_expired_lines_once_an_interval_and_ships_none_twice(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(
        cdr_line("ast1-7.1", ended="2026-09-01 02:00:10")  # older than 30 days
        + cdr_line("ast1-7.2", ended="2026-12-01 02:00:10")
    )
    assert ship_cdrs(store, "ast1", master) == 2
    retention = NodeRetention(days=30, every_seconds=3600.0)

    assert retention.trim(store, master, NOW, clock=100.0) == 1  # due at start
    assert "ast1-7.1" not in master.read_text() and "ast1-7.2" in master.read_text()
    assert retention.trim(store, master, NOW, clock=200.0) is None  # not due again yet
    assert retention.trim(store, master, NOW, clock=3700.0) == 0  # due: nothing left to cut

    assert ship_cdrs(store, "ast1", master) == 0  # the rewritten file: nothing shipped again
    assert stored_uniqueids(store) == ["ast1-7.1", "ast1-7.2"]  # the store's own retention


def test_the_rule_is_the_privacy_sections(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path, privacy={"retention_days": {"cdr": 90}, "retention_interval_hours": 6}
        )
    )
    assert NodeRetention.of(config) == NodeRetention(days=90, every_seconds=6 * 3600.0)
