"""reliability: robot heartbeats, calls looked up by recording path

Revision ID: 0006_reliability
Revises: 0005_console
Create Date: 2026-11-26 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0006_reliability"
down_revision = "0005_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "robot_heartbeats",
        sa.Column("robot_id", sa.String(length=100), nullable=False),
        sa.Column("started_at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("beat_at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("robot_id", name=op.f("pk_robot_heartbeats")),
    )
    op.create_index(
        op.f("ix_robot_heartbeats_beat_at"), "robot_heartbeats", ["beat_at"], unique=False
    )
    op.create_index("ix_calls_recording_path", "calls", ["recording_path"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_calls_recording_path", table_name="calls")
    op.drop_index(op.f("ix_robot_heartbeats_beat_at"), table_name="robot_heartbeats")
    op.drop_table("robot_heartbeats")
