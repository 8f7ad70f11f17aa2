"""scale-out (issue 22): a call record is named by its node and a hash of its values, not by
where it was read, so a Master.csv rewritten by retention (a new inode, read from its start)
ships no line twice; the duplicates such a rewrite already stored are removed

Every row gets its `line_key` (the recipe below, as db.cdr.cdr_line_key was when this was
written); of rows with the same node and key the lowest id stays, the others go. Then
(node, line_key) is unique and (node, inode, offset) no longer is: an inode number is
reused once its file is gone, and a byte offset does not survive a rewrite.

Revision ID: 0015_cdr_line_key
Revises: 0014_cluster
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0015_cdr_line_key"
down_revision = "0014_cluster"
branch_labels = None
depends_on = None

# db.cdr.KEY_FIELDS, written out: a migration never changes
KEY_FIELDS = (
    "uniqueid",
    "linkedid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "billsec",
    "disposition",
    "userfield",
)
BATCH = 1000

_records = sa.table(
    "cdr_records",
    sa.column("id", sa.Integer()),
    sa.column("node", sa.String()),
    sa.column("line_key", sa.String()),
    *(
        sa.column(name, db.models.UTCDateTime(timezone=True))
        if name.endswith("_at")
        else sa.column(name, sa.Integer() if name in ("duration", "billsec") else sa.String())
        for name in KEY_FIELDS
    ),
)


def upgrade() -> None:
    with op.batch_alter_table("cdr_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("line_key", sa.String(length=64), nullable=True))
    _key_rows_and_drop_duplicates(op.get_bind())
    with op.batch_alter_table("cdr_records", schema=None) as batch_op:
        batch_op.alter_column("line_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_constraint("uq_cdr_records_line", type_="unique")
        batch_op.create_unique_constraint("uq_cdr_records_node_line_key", ["node", "line_key"])


def downgrade() -> None:
    with op.batch_alter_table("cdr_records", schema=None) as batch_op:
        batch_op.drop_constraint("uq_cdr_records_node_line_key", type_="unique")
        batch_op.create_unique_constraint("uq_cdr_records_line", ["node", "inode", "offset"])
        batch_op.drop_column("line_key")


def _key_rows_and_drop_duplicates(bind: sa.Connection) -> None:
    """Each row's key written (a batch at a time, in id order, so a big table never sits in
    memory); then of one node's rows with the same key all but the lowest id deleted."""
    last = 0
    while True:
        rows = bind.execute(
            sa.select(_records).where(_records.c.id > last).order_by(_records.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            sa.update(_records)
            .where(_records.c.id == sa.bindparam("row_id"))
            .values(line_key=sa.bindparam("key")),
            [{"row_id": row.id, "key": _line_key(row._mapping)} for row in rows],
        )
        last = rows[-1].id
    first = sa.select(sa.func.min(_records.c.id)).group_by(_records.c.node, _records.c.line_key)
    bind.execute(sa.delete(_records).where(_records.c.id.not_in(first)))


def _line_key(values: sa.RowMapping) -> str:
    parts = [_part(values[name]) for name in KEY_FIELDS]
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _part(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return value
