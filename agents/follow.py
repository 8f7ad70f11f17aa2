"""One pass of the queue_log reader: what Asterisk wrote since the last pass, kept."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from agents.queue_log import Chunk, read_from
from agents.store import keep, position
from db.session import unit_of_work

# `hotline serve` reads every second and an open wallboard reads too, in the same process:
# one pass at a time (across processes, the position row's lock on PostgreSQL)
_ONE_PASS = threading.Lock()


def ingest_once(sessions: sessionmaker[Session], path: Path) -> int:
    """Read queue_log on from the kept position; the number of new lines kept."""
    with _ONE_PASS, unit_of_work(sessions) as session:
        inode, offset = position(session)
        chunk = read_from(path, inode, offset)
        if (chunk.inode, chunk.offset) == (inode, offset):
            return 0
        return keep(session, chunk)


def start_at_end(sessions: sessionmaker[Session], path: Path) -> None:
    """Skip what the file holds now (a new store beside an Asterisk with a history)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return
    with unit_of_work(sessions) as session:
        keep(session, Chunk([], stat.st_ino, stat.st_size))
