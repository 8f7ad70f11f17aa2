"""A node's Master.csv, tailed into the store: every call record of every node in PostgreSQL.

Debian's Asterisk does ship `cdr_pgsql`, yet the node daemon tails the CSV
instead: cdr_pgsql writes from Asterisk's CDR thread straight to the one
PostgreSQL, and a record it cannot write (the database away, failing over)
is logged and lost. cdr_csv writes to the node's own disk, which never goes
away under a call, and the daemon ships at its own pace, catching up after
an outage. The robot's recovery reads the same file (callback_robot.cdr).

Each step reads the complete lines appended since the stored position (a
line still being written waits for its newline) and stores them with the
new position in one transaction. A file with a new inode was rotated: the
rest of the old one is read first when it is still beside it (Master.csv.1),
then the new one from its start. Retention's rewrite of Master.csv
(privacy.retention) gives it a new inode too, with the lines it kept: read
again from the start, they are known by their key (db.cdr) and stored once.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db.cdr import CdrFilePosition, CdrLine, add_cdr_lines, cdr_position, set_cdr_position
from db.session import unit_of_work

log = logging.getLogger(__name__)

# Master.csv's columns (asterisk/cdr.conf [csv]: loguniqueid, loguserfield, usegmtime), 0-based
SRC, DST, DCONTEXT, CHANNEL, DSTCHANNEL, LASTAPP = 1, 2, 3, 5, 6, 7
START, ANSWER, END, DURATION, BILLSEC, DISPOSITION = 9, 10, 11, 12, 13, 14
UNIQUEID, USERFIELD = 16, 17
COLUMNS = 18
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # in UTC (usegmtime = yes)
STEP_BYTES = 4 << 20  # read per transaction: a long backlog is shipped in short commits


@dataclass(frozen=True)
class FileState:
    inode: int
    size: int


def ship_cdrs(sessions: sessionmaker[Session], node: str, master_csv: Path) -> int:
    """Store every complete line the node's Master.csv has beyond its position; how many."""
    stored = 0
    while True:
        with unit_of_work(sessions) as session:
            new, more = _step(session, node, master_csv)
        stored += new
        if not more:
            return stored


def _step(session: Session, node: str, master: Path) -> tuple[int, bool]:
    """One bounded read and its commit; whether there is more to read."""
    position = cdr_position(session, node)
    current = _state(master)
    if position is not None and (current is None or current.inode != position.inode):
        rotated = _with_inode(master, position.inode)
        if rotated is not None:
            lines, end, more = read_lines(rotated, position.offset)
            if lines or more:
                stored = add_cdr_lines(session, node, position.inode, lines)
                set_cdr_position(session, node, CdrFilePosition(position.inode, end))
                return stored, True
        position = None  # the old file is done or gone: the new one from its start
    if current is None:
        return 0, False
    start = position.offset if position is not None else 0
    if start > current.size:  # cut in place (same inode): from the start again
        start = 0
    lines, end, more = read_lines(master, start)
    stored = add_cdr_lines(session, node, current.inode, lines)
    if position is None or end != position.offset:
        set_cdr_position(session, node, CdrFilePosition(current.inode, end))
    return stored, more


def read_lines(path: Path, start: int, most: int | None = None) -> tuple[list[CdrLine], int, bool]:
    """The complete lines from byte `start` (at most `most` bytes, default `STEP_BYTES`),
    the offset after them, and whether complete lines remain beyond."""
    most = STEP_BYTES if most is None else most
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(start)
            chunk = handle.read(min(size - start, most))
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return [], start, False
    complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
    lines = []
    at = start
    for raw in complete.splitlines(keepends=True):
        line = parse_line(at, raw)
        if line is not None:
            lines.append(line)
        at += len(raw)
    end = start + len(complete)
    more = end < size and (len(chunk) == most and bool(complete))
    return lines, end, more


def parse_line(offset: int, raw: bytes) -> CdrLine | None:
    """One Master.csv line; None (logged) for one that is not a call record."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    try:
        row = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        row = []
    if len(row) <= DISPOSITION:
        log.warning("Master.csv line at byte %d is not a call record; skipped", offset)
        return None
    return CdrLine(
        offset=offset,
        uniqueid=_column(row, UNIQUEID),
        src=_column(row, SRC),
        dst=_column(row, DST),
        dcontext=_column(row, DCONTEXT),
        channel=_column(row, CHANNEL),
        dstchannel=_column(row, DSTCHANNEL),
        lastapp=_column(row, LASTAPP),
        started_at=_time(_column(row, START)),
        answered_at=_time(_column(row, ANSWER)),
        ended_at=_time(_column(row, END)),
        duration=_number(_column(row, DURATION)),
        billsec=_number(_column(row, BILLSEC)),
        disposition=_column(row, DISPOSITION),
        userfield=_column(row, USERFIELD),
    )


def _column(row: list[str], index: int) -> str | None:
    value = row[index].strip() if index < len(row) else ""
    return value or None


def _time(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC) if value else None
    except ValueError:
        return None


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _state(path: Path) -> FileState | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return FileState(stat.st_ino, stat.st_size)


def _with_inode(master: Path, inode: int) -> Path | None:
    """The rotated file beside Master.csv (Master.csv.1, …) that is the old inode, if any."""
    for sibling in sorted(master.parent.glob(master.name + "*")):
        if sibling != master and _state(sibling) is not None and sibling.stat().st_ino == inode:
            return sibling
    return None
