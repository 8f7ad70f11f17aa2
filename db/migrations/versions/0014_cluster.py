"""scale-out (issue 22): the cluster's decisions about its nodes (draining, lost),
every node's call records (CDRs) shipped into the store with each node's position, and
each node's queue_log position

Revision ID: 0014_cluster
Revises: 0013_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0014_cluster"
down_revision = "0013_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("draining_since", db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lost_since", db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cluster_nodes")),
    )
    op.create_table(
        "cdr_positions",
        sa.Column("node", sa.String(length=32), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_cdr_positions")),
    )
    op.create_table(
        "cdr_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=32), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=True),
        sa.Column("linkedid", sa.String(length=64), nullable=True),
        sa.Column("src", sa.String(length=80), nullable=True),
        sa.Column("dst", sa.String(length=80), nullable=True),
        sa.Column("dcontext", sa.String(length=80), nullable=True),
        sa.Column("channel", sa.String(length=200), nullable=True),
        sa.Column("dstchannel", sa.String(length=200), nullable=True),
        sa.Column("lastapp", sa.String(length=80), nullable=True),
        sa.Column("started_at", db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_at", db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("billsec", sa.Integer(), nullable=True),
        sa.Column("disposition", sa.String(length=20), nullable=True),
        sa.Column("userfield", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdr_records")),
        sa.UniqueConstraint("node", "inode", "offset", name="uq_cdr_records_line"),
    )
    with op.batch_alter_table("cdr_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cdr_records_uniqueid"), ["uniqueid"], unique=False)
        batch_op.create_index(batch_op.f("ix_cdr_records_ended_at"), ["ended_at"], unique=False)
    # not the cluster's: the monthly analysis's tickets without an area, found by index
    op.create_index(
        "ix_tickets_area_unplaced",
        "tickets",
        ["id"],
        sqlite_where=sa.text("area_source IS NULL"),
        postgresql_where=sa.text("area_source IS NULL"),
    )
    with op.batch_alter_table("queue_log_position", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_queue_log_position_node"), ["node"])


def downgrade() -> None:
    op.drop_index("ix_tickets_area_unplaced", table_name="tickets")
    with op.batch_alter_table("queue_log_position", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_queue_log_position_node"), type_="unique")
        batch_op.drop_column("node")
    with op.batch_alter_table("cdr_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cdr_records_ended_at"))
        batch_op.drop_index(batch_op.f("ix_cdr_records_uniqueid"))
    op.drop_table("cdr_records")
    op.drop_table("cdr_positions")
    op.drop_table("cluster_nodes")
