"""retention: what the retention job deleted (audit of deletions)

Revision ID: 0007_retention
Revises: 0006_reliability
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0007_retention"
down_revision = "0006_reliability"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_deletions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_deletions")),
    )
    with op.batch_alter_table("retention_deletions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retention_deletions_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("retention_deletions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_deletions_at"))
    op.drop_table("retention_deletions")
