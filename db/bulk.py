"""Bulk writes for generated data (the demo city): many rows per statement, ids chosen by us.

The ORM's unit of work adds one object at a time and asks the database for
each new id, which is right for a call or a click but takes hours for a demo
city of millions of rows. Here the caller builds plain dicts with the ids
already assigned (so events, attempts and answers can point at their ticket
without a round trip) and Core `insert()` sends them as executemany batches.
The column types still apply: `UTCDateTime` refuses a naive datetime here as
it does for the ORM.

Choosing ids bypasses PostgreSQL's id sequences, so `sync_id_sequences` moves
them past the rows written; otherwise the IVR's next ticket would collide
with a demo ticket's id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from db.models import Base, Department, Ticket

# Rows per executemany call: large enough that per-statement overhead vanishes,
# small enough that one batch's parameters stay a few megabytes.
BATCH_ROWS = 10_000

Row = dict[str, Any]


def insert_rows(
    session: Session, model: type[Base], rows: Sequence[Row], batch: int = BATCH_ROWS
) -> int:
    """Insert rows (dicts with the same keys, ids included) into model's table; return the count.

    A Core insert on the table, not the ORM bulk path: the ORM would copy and
    inspect every dict again for identity and defaults that the generator has
    already settled.
    """
    table = model.__table__
    for start in range(0, len(rows), batch):
        session.execute(insert(table), list(rows[start : start + batch]))
    return len(rows)


def holds_tickets(session: Session) -> bool:
    """Whether the store has any ticket (generated data must not mix with real or older data)."""
    return session.scalar(select(Ticket.id).limit(1)) is not None


def holds_departments(session: Session) -> bool:
    """Whether the store has a department tree already (a second tree would clash on codes)."""
    return session.scalar(select(Department.id).limit(1)) is not None


def next_ids(session: Session, models: Iterable[type[Base]]) -> dict[str, int]:
    """The first free id of each model's table (max(id) + 1; 1 on an empty table).

    Meant for a store nobody else writes to while it is filled (the demo checks it is
    empty first): a concurrent writer could take one of these ids before we insert it.
    """
    result = {}
    for model in models:
        table = model.__table__
        highest = session.scalar(select(func.max(table.c.id)))
        result[table.name] = int(highest or 0) + 1
    return result


def sync_id_sequences(session: Session, models: Iterable[type[Base]]) -> None:
    """On PostgreSQL, move each table's id sequence past the ids written explicitly.

    SQLite needs nothing: its INTEGER PRIMARY KEY continues from max(id).
    """
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        return
    for model in models:
        name = model.__table__.name
        session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {dialect.identifier_preparer.quote(name)}),"
                " false)"
            ),
            {"table": name},
        )
