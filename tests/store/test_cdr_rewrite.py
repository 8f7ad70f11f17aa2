"""A node's Master.csv rewritten by retention ships no line twice: a line is known by its
values, not by the file (inode) and byte offset it was read at."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db.cdr import add_cdr_lines
from db.session import unit_of_work
from ivr.cdr_tail import parse_line, ship_cdrs
from privacy.retention import expire_cdrs
from tests.support.cdr_lines import cdr_line, stored_uniqueids


def test_a_master_csv_rewritten_by_retention_ships_no_line_twice(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(
        cdr_line("ast1-1.1", ended="2026-09-01 02:00:10")
        + cdr_line("ast1-1.2", ended="2026-11-30 02:00:10")
        + cdr_line("ast1-1.3", ended="2026-12-01 02:00:10")
    )
    assert ship_cdrs(store, "ast1", master) == 3
    inode = master.stat().st_ino

    # the node's retention rewrites its file: a new inode, every field quoted, the old line gone
    assert expire_cdrs(store, master, datetime(2026, 10, 1, tzinfo=UTC)) == 1
    assert master.stat().st_ino != inode
    with master.open("a") as out:
        out.write(cdr_line("ast1-1.4"))  # Asterisk writes on after the rewrite

    assert ship_cdrs(store, "ast1", master) == 1
    assert stored_uniqueids(store) == ["ast1-1.1", "ast1-1.2", "ast1-1.3", "ast1-1.4"]
    assert ship_cdrs(store, "ast1", master) == 0


def test_the_same_line_is_stored_once_per_node_however_often_it_is_read(
    store: sessionmaker[Session],
) -> None:
    first = parse_line(0, cdr_line("ast1-2.1").encode())
    again = parse_line(4096, cdr_line("ast1-2.1").encode())  # elsewhere in another file
    leg = parse_line(200, cdr_line("ast1-2.1", dstchannel="PJSIP/agent-1001-1").encode())
    assert first is not None and again is not None and leg is not None
    with unit_of_work(store) as session:
        assert add_cdr_lines(session, "ast1", 11, [first, first]) == 1  # twice in one read
        assert add_cdr_lines(session, "ast1", 12, [again]) == 0
        assert add_cdr_lines(session, "ast1", 12, [leg]) == 1  # another leg: another record
        assert add_cdr_lines(session, "ast2", 11, [first]) == 1  # another node's own line
    assert stored_uniqueids(store) == ["ast1-2.1", "ast1-2.1"]
    assert stored_uniqueids(store, "ast2") == ["ast1-2.1"]
