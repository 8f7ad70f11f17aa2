"""Every line of a node's Master.csv reaches the store once: crashes, rotation, half lines."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.cdr import CdrFilePosition, cdr_position, cdr_records_of, set_cdr_position
from db.models import CdrRecord
from db.session import unit_of_work
from ivr import cdr_tail
from ivr.cdr_tail import ship_cdrs


def line(uniqueid: str, disposition: str = "ANSWERED", channel: str = "PJSIP/sip-front-1") -> str:
    """One cdr_csv line as the nodes write it (loguniqueid, loguserfield, GMT times)."""
    answered = disposition == "ANSWERED"
    text = [
        *("", "13800138000", "12345", "hotline-in", '"" <13800138000>', channel, "", "AGI"),
        *("agi://127.0.0.11:4573/inbound", "2026-12-05 01:59:58"),
        *("2026-12-05 02:00:00" if answered else "", "2026-12-05 02:01:30"),
    ]
    numbers = ["92", "90" if answered else "0"]  # duration and billsec: written unquoted
    rest = [disposition, "DOCUMENTATION", uniqueid, ""]
    quoted = ['"' + f.replace('"', '""') + '"' for f in text], ['"' + f + '"' for f in rest]
    return ",".join([*quoted[0], *numbers, *quoted[1]]) + "\n"


def stored(sessions: sessionmaker[Session], node: str = "ast1") -> list[str]:
    with unit_of_work(sessions) as session:
        return list(
            session.scalars(
                select(CdrRecord.uniqueid).where(CdrRecord.node == node).order_by(CdrRecord.id)
            )
        )


def position(sessions: sessionmaker[Session], node: str = "ast1") -> CdrFilePosition | None:
    with unit_of_work(sessions) as session:
        return cdr_position(session, node)


def test_lines_are_stored_with_their_fields_and_the_position(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(line("ast1-1796464798.1") + line("ast1-1796464798.2", "NO ANSWER"))

    assert ship_cdrs(store, "ast1", master) == 2

    with unit_of_work(store) as session:
        (first,) = cdr_records_of(session, "ast1-1796464798.1")
        assert (first.node, first.inode, first.offset) == ("ast1", master.stat().st_ino, 0)
        assert (first.src, first.dst, first.dcontext) == ("13800138000", "12345", "hotline-in")
        assert first.channel == "PJSIP/sip-front-1" and first.lastapp == "AGI"
        assert first.started_at == datetime(2026, 12, 5, 1, 59, 58, tzinfo=UTC)
        assert first.answered_at == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
        assert (first.duration, first.billsec, first.disposition) == (92, 90, "ANSWERED")
        (missed,) = cdr_records_of(session, "ast1-1796464798.2")
        assert missed.answered_at is None and missed.offset == len(line("ast1-1796464798.1"))
    assert position(store) == CdrFilePosition(master.stat().st_ino, master.stat().st_size)


def test_a_second_pass_and_a_lost_position_write_nothing_twice(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(line("ast1-1.1") + line("ast1-1.2"))
    ship_cdrs(store, "ast1", master)
    assert ship_cdrs(store, "ast1", master) == 0
    # a crash after the rows, before the position (as if): the lines are read again
    with unit_of_work(store) as session:
        set_cdr_position(session, "ast1", CdrFilePosition(master.stat().st_ino, 0))
    with master.open("a") as out:
        out.write(line("ast1-1.3"))

    assert ship_cdrs(store, "ast1", master) == 1
    assert stored(store) == ["ast1-1.1", "ast1-1.2", "ast1-1.3"]


def test_a_half_written_line_waits_for_its_end(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    whole, half = line("ast1-2.1"), line("ast1-2.2")
    master.write_text(whole + half[:30])

    assert ship_cdrs(store, "ast1", master) == 1
    assert position(store) == CdrFilePosition(master.stat().st_ino, len(whole))
    with master.open("a") as out:
        out.write(half[30:])
    assert ship_cdrs(store, "ast1", master) == 1
    assert stored(store) == ["ast1-2.1", "ast1-2.2"]


def test_a_rotated_file_is_finished_then_the_new_one_read_from_its_start(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(line("ast1-3.1"))
    ship_cdrs(store, "ast1", master)
    with master.open("a") as out:
        out.write(line("ast1-3.2"))  # written before the rotation, not read yet
    old_inode = master.stat().st_ino
    master.rename(tmp_path / "Master.csv.1")
    master.write_text(line("ast1-3.3"))  # a new file: a new inode
    assert master.stat().st_ino != old_inode

    assert ship_cdrs(store, "ast1", master) == 2
    assert stored(store) == ["ast1-3.1", "ast1-3.2", "ast1-3.3"]
    assert position(store) == CdrFilePosition(master.stat().st_ino, len(line("ast1-3.3")))


def test_a_rotated_file_that_is_gone_leaves_the_new_one_from_its_start(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(line("ast1-4.1") * 3)
    ship_cdrs(store, "ast1", master)
    keep = tmp_path / "keep"  # hold the old inode so the new file cannot reuse it
    os.link(master, keep)
    master.unlink()
    master.write_text(line("ast1-4.2"))

    assert ship_cdrs(store, "ast1", master) == 1
    assert stored(store)[-1] == "ast1-4.2"


def test_nodes_keep_their_own_positions_and_a_missing_file_is_no_error(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    assert ship_cdrs(store, "ast2", tmp_path / "none" / "Master.csv") == 0
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text(line("ast1-5.1"))
    two.write_text(line("ast2-5.1") + line("ast2-5.2"))
    ship_cdrs(store, "ast1", one)
    ship_cdrs(store, "ast2", two)
    assert stored(store, "ast1") == ["ast1-5.1"]
    assert stored(store, "ast2") == ["ast2-5.1", "ast2-5.2"]


def test_long_values_are_cut_to_their_columns_and_stray_lines_skipped(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text("not,a,record\n" + line("ast1-6.1", channel="Local/" + "x" * 400))

    assert ship_cdrs(store, "ast1", master) == 1
    with unit_of_work(store) as session:
        (record,) = cdr_records_of(session, "ast1-6.1")
        assert record.channel is not None and len(record.channel) == 200
        assert session.scalar(select(func.count()).select_from(CdrRecord)) == 1


def test_a_long_backlog_is_read_in_bounded_steps(
    store: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text("".join(line(f"ast1-7.{i}") for i in range(50)))
    monkeypatch.setattr(cdr_tail, "STEP_BYTES", 1000)  # a few lines a transaction
    steps = []
    real_step = cdr_tail._step
    monkeypatch.setattr(cdr_tail, "_step", lambda *a: steps.append(1) or real_step(*a))

    assert ship_cdrs(store, "ast1", master) == 50
    assert len(steps) > 10  # one commit per few lines, not one for the whole backlog
    assert stored(store) == [f"ast1-7.{i}" for i in range(50)]
