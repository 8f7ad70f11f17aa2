"""The robot's CDR reader remembers how far it read Master.csv (not the whole file each minute)."""

from __future__ import annotations

from pathlib import Path

from callback_robot.cdr import CdrReader


def row(attempt: int, disposition: str) -> str:
    fields = ['""'] * 14 + [f'"{disposition}"', '"DOCUMENTATION"', '"1.1"', f'"attempt-{attempt}"']
    return ",".join(fields) + "\n"


def test_only_new_lines_are_read_and_a_rotated_file_is_read_again(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(row(1, "NO ANSWER") + row(2, "BUSY"))
    reader = CdrReader(master)
    assert reader.dispositions() == {1: "NO ANSWER", 2: "BUSY"}
    first = reader.offset
    assert first == master.stat().st_size
    with master.open("a") as out:
        out.write(row(1, "ANSWERED") + row(3, "FAILED")[:20])  # the last line is half written
    assert reader.dispositions() == {1: "ANSWERED", 2: "BUSY"}
    assert reader.offset == first + len(row(1, "ANSWERED"))  # the half line waits
    with master.open("a") as out:
        out.write(row(3, "FAILED")[20:])
    assert reader.dispositions()[3] == "FAILED"
    master.write_text(row(9, "BUSY"))  # rotated: shorter than the offset
    assert reader.dispositions() == {9: "BUSY"}
