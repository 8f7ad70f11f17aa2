"""Migration 0015 on a store that already holds the duplicates a rewritten Master.csv shipped:
the lowest id of each line stays, and a line read again afterwards is still known."""

from __future__ import annotations

from dataclasses import asdict, fields

import sqlalchemy as sa

from db.cdr import CdrLine, add_cdr_lines
from db.migrate import downgrade, upgrade
from db.models import UTCDateTime
from db.session import make_engine, make_session_factory, unit_of_work
from ivr.cdr_tail import parse_line

BEFORE = "0014_cluster"

LINE = (
    '"","13800138000","12345","hotline-in","","PJSIP/sip-front-1","","AGI","",'
    '"2026-12-05 01:59:58","","2026-12-05 02:01:30",92,0,"NO ANSWER","DOCUMENTATION",'
    '"{uniqueid}",""\n'
)
# cdr_records as migration 0014 made it (no line_key yet)
OLD_RECORDS = sa.table(
    "cdr_records",
    sa.column("id", sa.Integer()),
    sa.column("node", sa.String()),
    sa.column("inode", sa.BigInteger()),
    *(
        sa.column(f.name, UTCDateTime(timezone=True) if f.name.endswith("_at") else sa.String())
        for f in fields(CdrLine)
        if f.name not in ("duration", "billsec", "offset")
    ),
    sa.column("offset", sa.BigInteger()),
    sa.column("duration", sa.Integer()),
    sa.column("billsec", sa.Integer()),
)


def old_row(node: str, inode: int, uniqueid: str, offset: int = 0) -> dict[str, object]:
    """The row 0014's daemon stored for LINE: what parse_line gives, where it was read."""
    line = parse_line(offset, LINE.format(uniqueid=uniqueid).encode())
    assert line is not None
    return {"node": node, "inode": inode, **asdict(line)}


def test_duplicates_go_keeping_the_lowest_id_and_shipping_knows_the_lines(
    database_url: str,
) -> None:
    upgrade(database_url, BEFORE)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(OLD_RECORDS),
                [
                    old_row("ast1", 100, "ast1-1.1"),
                    old_row("ast1", 100, "ast1-1.2", offset=300),
                    old_row("ast1", 200, "ast1-1.1"),  # read again after a rewrite
                    old_row("ast2", 100, "ast1-1.1"),  # another node's: its own
                    old_row("ast1", 300, "ast1-1.1"),  # and again
                    old_row("ast1", 200, "ast1-1.2", offset=300),
                ],
            )
        with engine.connect() as conn:
            ids = list(conn.scalars(sa.select(OLD_RECORDS.c.id).order_by(OLD_RECORDS.c.id)))

        upgrade(database_url)

        with engine.connect() as conn:
            kept = conn.execute(
                sa.select(OLD_RECORDS.c.id, OLD_RECORDS.c.node, OLD_RECORDS.c.uniqueid).order_by(
                    OLD_RECORDS.c.id
                )
            ).all()
        assert [tuple(row) for row in kept] == [
            (ids[0], "ast1", "ast1-1.1"),
            (ids[1], "ast1", "ast1-1.2"),
            (ids[3], "ast2", "ast1-1.1"),
        ]
        sessions = make_session_factory(engine)
        again = parse_line(0, LINE.format(uniqueid="ast1-1.1").encode())
        new = parse_line(0, LINE.format(uniqueid="ast1-1.3").encode())
        assert again is not None and new is not None
        with unit_of_work(sessions) as session:
            assert add_cdr_lines(session, "ast1", 400, [again]) == 0  # the same key as 0015's
            assert add_cdr_lines(session, "ast1", 400, [new]) == 1
    finally:
        engine.dispose()
    downgrade(database_url, BEFORE)  # and back: (node, inode, offset) unique again
    upgrade(database_url)
