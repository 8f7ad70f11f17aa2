"""A cluster's queue_logs: each node's file kept with its own position, one box's row untouched.

Every node's daemon reads its node's queue_log into the same tables
(`agents.follow.ingest_once(..., node)`), then turns missed callers into
callback tasks; on PostgreSQL two daemons' passes at once make each task once.
Fixed epoch times in the lines, fixed clocks passed in: nothing depends on today.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from agents.follow import ingest_once
from agents.missed import after_ingest, follow_missed, one_pass_at_a_time
from agents.store import position
from core.config import HotlineConfig, load_config
from core.vocabulary import CallDirection
from db.models import Call, CallbackTask, QueueLogEntry, QueueLogPosition
from db.session import unit_of_work
from tests.support.config import write_config

T0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
EPOCH = int(T0.timestamp())


def lines_of(callid: str, agent: str) -> list[str]:
    """A caller queued, answered after 4 s, talked 30 s."""
    return [
        f"{EPOCH}|{callid}|hotline-agents|NONE|ENTERQUEUE||13900139000|1",
        f"{EPOCH + 4}|{callid}|hotline-agents|{agent}|CONNECT|4|{callid}x|2",
        f"{EPOCH + 34}|{callid}|hotline-agents|{agent}|COMPLETECALLER|4|30|1",
    ]


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def entries(store: sessionmaker[Session]) -> list[str]:
    with unit_of_work(store) as session:
        return sorted(
            f"{row.callid} {row.event}"
            for row in session.scalars(select(QueueLogEntry).order_by(QueueLogEntry.id))
        )


def positions(store: sessionmaker[Session]) -> dict[str | None, tuple[int, int, int]]:
    with unit_of_work(store) as session:
        return {
            row.node: (row.id, row.inode, row.offset)
            for row in session.scalars(select(QueueLogPosition))
        }


def test_each_node_keeps_its_own_position_beside_the_one_box_row(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    one_box = write(tmp_path / "box" / "queue_log", lines_of("1796464800.1", "wang"))
    ast1 = write(tmp_path / "ast1" / "queue_log", lines_of("ast1-1796464800.1", "wang"))
    ast2 = write(tmp_path / "ast2" / "queue_log", lines_of("ast2-1796464800.1", "li")[:2])
    # a store that was one box before: its row is id 1, which PostgreSQL's id sequence never saw
    assert ingest_once(store, one_box) == 3
    assert ingest_once(store, ast1, "ast1") == 3
    assert ingest_once(store, ast2, "ast2") == 2
    kept = positions(store)
    assert kept[None] == (1, one_box.stat().st_ino, one_box.stat().st_size)
    assert kept["ast1"][1:] == (ast1.stat().st_ino, ast1.stat().st_size)
    assert kept["ast2"][1:] == (ast2.stat().st_ino, ast2.stat().st_size)
    assert len({row_id for row_id, _, _ in kept.values()}) == 3
    with unit_of_work(store) as session:
        assert position(session) == kept[None][1:]  # one box reads its own row, as before
        assert position(session, "ast2") == kept["ast2"][1:]
        assert position(session, "ast3") == (0, 0)  # a node never read starts at the start
    # a pass again reads nothing new; ast2's next line lands once, one box's row unmoved
    assert (ingest_once(store, ast1, "ast1"), ingest_once(store, one_box)) == (0, 0)
    write(ast2, lines_of("ast2-1796464800.1", "li"))
    assert ingest_once(store, ast2, "ast2") == 1
    assert ingest_once(store, ast2, "ast2") == 0
    assert positions(store)[None] == kept[None]
    assert len(entries(store)) == 9


def test_a_nodes_rotated_log_is_read_from_its_start_and_the_other_node_goes_on(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    ast1 = write(tmp_path / "ast1" / "queue_log", lines_of("ast1-1796464800.1", "wang"))
    ast2 = write(tmp_path / "ast2" / "queue_log", lines_of("ast2-1796464800.1", "li"))
    assert ingest_once(store, ast1, "ast1") == 3
    assert ingest_once(store, ast2, "ast2") == 3
    before = positions(store)["ast2"]
    old_inode = ast1.stat().st_ino
    rotated = ast1.with_name("queue_log.1")
    os.rename(ast1, rotated)  # logrotate: the old file moved away, a new one started
    write(ast1, lines_of("ast1-1796464900.2", "wang")[:1])
    assert ast1.stat().st_ino != old_inode
    assert ingest_once(store, ast1, "ast1") == 1
    assert positions(store)["ast1"][1:] == (ast1.stat().st_ino, ast1.stat().st_size)
    assert positions(store)["ast2"] == before
    assert ingest_once(store, ast2, "ast2") == 0
    assert entries(store).count("ast1-1796464900.2 ENTERQUEUE") == 1


def test_two_nodes_first_passes_at_once_each_add_their_row(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    """Two daemons adding their first rows together collide on the id: the loser tries again."""
    files = {
        node: write(tmp_path / node / "queue_log", lines_of(f"{node}-1796464800.1", "wang"))
        for node in ("ast1", "ast2")
    }
    barrier = threading.Barrier(2)
    failed: list[BaseException] = []

    def read(node: str) -> None:
        barrier.wait()
        try:
            ingest_once(store, files[node], node)
        except Exception as exc:  # SQLite's one writer may refuse the second: read again
            failed.append(exc)

    threads = [threading.Thread(target=read, args=(node,)) for node in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for node, path in files.items():
        ingest_once(store, path, node)  # whatever a refused pass left
    assert set(positions(store)) == {"ast1", "ast2"}
    assert len(entries(store)) == 6


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path, callback={"abandon_min_seconds": 5}))


def an_abandoned_call(session: Session, uniqueid: str, number: str) -> None:
    """A caller on the agents' line who waited 8 s and hung up: a missed caller."""
    session.add(
        Call(
            uniqueid=uniqueid,
            direction=CallDirection.INBOUND,
            caller_number=number,
            did=None,
            started_at=T0,
            ended_at=T0 + timedelta(seconds=30),
            last_step="queue",
        )
    )
    session.add(
        QueueLogEntry(
            at=T0 + timedelta(seconds=15),
            callid=uniqueid,
            queue="hotline-agents",
            agent="NONE",
            event="ABANDON",
            data1="1",
            data2="1",
            data3="8",
        )
    )


@pytest.mark.parametrize("database_kind", ["postgresql"], indirect=True)
def test_two_daemons_following_missed_callers_at_once_make_each_task_once(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    """The second pass waits for the first's commit, then finds the task made (no failure)."""
    with unit_of_work(store) as session:
        an_abandoned_call(session, "ast1-1796464800.1", "13900000001")
        an_abandoned_call(session, "ast2-1796464800.2", "13900000002")
    now = T0 + timedelta(minutes=1)
    second: list[object] = []

    def other_daemon() -> None:
        try:
            second.append(follow_missed(store, config, now))
        except Exception as exc:  # the unique uniqueid's failure, were there no lock
            second.append(exc)

    other = threading.Thread(target=other_daemon)
    with unit_of_work(store) as session:  # the first daemon's pass, not committed yet
        one_pass_at_a_time(session)
        assert after_ingest(session, config, now) == (2, 0)
        other.start()
        other.join(1.0)  # it waits on the lock (a pass run meanwhile would fail on commit)
    other.join(60)
    assert second == [(0, 0)]
    with unit_of_work(store) as session:
        assert session.scalar(select(func.count()).select_from(CallbackTask)) == 2


def test_one_pass_at_a_time_is_free_on_sqlite_and_follow_missed_is_replayable(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    with unit_of_work(store) as session:
        an_abandoned_call(session, "ast1-1796464800.1", "13900000001")
    now = T0 + timedelta(minutes=1)
    assert follow_missed(store, config, now) == (1, 0)
    assert follow_missed(store, config, now) == (0, 0)
