"""The wallboard of a cluster figures the queue_log rows the node daemons store.

In a cluster each node daemon reads its node's queue_log into the store (one
position per node); the wallboard reads no file itself and recomputes when
newer rows are there, so its figures follow every node within a tick.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from core.config import load_config
from dashboard.wallboard import Wallboard
from db.migrate import upgrade
from db.models import QueueLogEntry
from db.session import make_engine, make_session_factory, unit_of_work
from tests.support.config import write_config


def test_the_cluster_wallboard_recomputes_when_the_daemons_stored_new_rows(
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path, cluster={}))
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    stray = config.queue_log
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("1796457600|ast1-1.1|hotline-agents|NONE|ENTERQUEUE||13900000001|1\n")
    board = Wallboard()
    board.refresh(sessions, config, force=False)
    first = board.version
    board.refresh(sessions, config, force=False)
    assert board.version == first  # nothing new stored: the same figures
    with unit_of_work(sessions) as session:  # what ast2's node daemon stores
        session.add(
            QueueLogEntry(
                at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
                callid="ast2-1796457600.7",
                queue="hotline-agents",
                agent="NONE",
                event="ENTERQUEUE",
            )
        )
    board.refresh(sessions, config, force=False)
    assert board.version == first + 1
    with unit_of_work(sessions) as session:  # a stray one-box queue_log is never read
        callids = {row.callid for row in session.query(QueueLogEntry)}
    assert callids == {"ast2-1796457600.7"}
    engine.dispose()
