"""One pass of the queue_log reader: what Asterisk wrote since the last pass, kept.

One box reads its one queue_log; in a cluster each node's daemon reads its
node's, with the node's own position row (`node`), into the same tables.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from agents.queue_log import Chunk, read_from
from agents.store import add_node_position, fill_late_tickets, keep, position, position_row
from db.session import unit_of_work

# `hotline serve` reads every second and an open wallboard reads too, in the same process:
# one pass at a time (across processes, the position row's lock on PostgreSQL)
_ONE_PASS = threading.Lock()
_ADD_TRIES = 3  # nodes adding their first rows at once collide on the id: the loser tries again


def ingest_once(sessions: sessionmaker[Session], path: Path, node: str | None = None) -> int:
    """Read queue_log on from the kept position (one box, or `node`'s); new lines kept."""
    if node is not None:
        ensure_node_position(sessions, node)  # so the pass below always has a row to lock
    with _ONE_PASS, unit_of_work(sessions) as session:
        inode, offset = position(session, node)
        chunk = read_from(path, inode, offset)
        if (chunk.inode, chunk.offset) == (inode, offset):
            return 0
        return keep(session, chunk, node)


def ensure_node_position(sessions: sessionmaker[Session], node: str) -> None:
    """The node's position row, added at the file's start the first time."""
    for attempt in range(_ADD_TRIES):
        try:
            with unit_of_work(sessions) as session:
                if position_row(session, node) is None:
                    add_node_position(session, node)
            return
        except IntegrityError:
            if attempt == _ADD_TRIES - 1:
                raise


def fill_late(sessions: sessionmaker[Session], since: datetime) -> int:
    """`fill_late_tickets` in a transaction of its own (a cluster node daemon's pass)."""
    with unit_of_work(sessions) as session:
        return fill_late_tickets(session, since)


def start_at_end(sessions: sessionmaker[Session], path: Path, node: str | None = None) -> None:
    """Skip what the file holds now (a new store beside an Asterisk with a history)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return
    with unit_of_work(sessions) as session:
        keep(session, Chunk([], stat.st_ino, stat.st_size), node)
