"""Asterisk's queue_log, read as it grows: the one source of every queue and agent figure.

Asterisk appends one line per event, `time|callid|queue|agent|event|data...`
(ENTERQUEUE, CONNECT holdtime|uniqueid|ringtime, COMPLETECALLER and
COMPLETEAGENT holdtime|calltime|position, ABANDON position|origposition|wait,
EXITWITHTIMEOUT, EXITWITHKEY key|position|origposition|wait, RINGNOANSWER
ms, ADDMEMBER, REMOVEMEMBER, PAUSE reason, UNPAUSE ...). The reader keeps the
file's inode and the byte offset of the last whole line, so a pass reads only
what Asterisk wrote since, and a rotated file is read from its start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MAX_FIELD = 200


@dataclass(frozen=True)
class QueueEvent:
    """One queue_log line."""

    at: datetime
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]

    def field(self, n: int) -> str:
        """data1 is field(1); a missing field is empty."""
        return self.data[n - 1] if 0 < n <= len(self.data) else ""


@dataclass(frozen=True)
class Chunk:
    """The whole lines read in one pass, and where the next pass starts."""

    events: list[QueueEvent]
    inode: int
    offset: int


def parse_line(line: str) -> QueueEvent | None:
    """One line as an event; None for a line that is not one (logged by the caller)."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5 or not parts[0].isdigit():
        return None
    at = datetime.fromtimestamp(int(parts[0]), UTC)
    fields = [part[:MAX_FIELD] for part in parts[1:]]
    return QueueEvent(at, fields[0], fields[1], fields[2], fields[3], tuple(fields[4:]))


def read_from(path: Path, inode: int, offset: int) -> Chunk:
    """The whole lines after offset (from the start if the file is another or shorter)."""
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            if stat.st_ino != inode or stat.st_size < offset:
                offset = 0  # rotated or truncated: a new file
            handle.seek(offset)
            data = handle.read(stat.st_size - offset)
    except FileNotFoundError:
        return Chunk([], inode, offset)
    complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
    events = [
        event
        for line in complete.decode("utf-8", errors="replace").splitlines()
        if (event := parse_line(line)) is not None
    ]
    return Chunk(events, stat.st_ino, offset + len(complete))
