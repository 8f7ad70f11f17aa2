"""monitoring the floor (issue 21): quality scores, listening-in sessions, and the
agent-first callback of every missed caller on its task

Revision ID: 0010_monitoring
Revises: 0009_agents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0010_monitoring"
down_revision = "0009_agents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listen_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supervisor", sa.String(length=64), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=True),
        sa.Column("started_at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", db.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_listen_sessions_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listen_sessions")),
    )
    with op.batch_alter_table("listen_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_listen_sessions_started_at"), ["started_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_listen_sessions_uniqueid"), ["uniqueid"], unique=False)

    op.create_table(
        "quality_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("scored_by", sa.String(length=64), nullable=False),
        sa.Column("scored_at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_quality_scores_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_scores")),
    )
    with op.batch_alter_table("quality_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quality_scores_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_quality_scores_scored_at"), ["scored_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_quality_scores_uniqueid"), ["uniqueid"], unique=False)

    with op.batch_alter_table("callback_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("next_at", db.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("agent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_outcome", sa.String(length=24), nullable=True))
        batch_op.add_column(
            sa.Column("called_at", db.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("reached_at", db.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("callback_uniqueid", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_callback_tasks_next_at"), ["next_at"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_callback_tasks_agent_id_agents"), "agents", ["agent_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("callback_tasks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_callback_tasks_agent_id_agents"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_callback_tasks_next_at"))
        batch_op.drop_column("callback_uniqueid")
        batch_op.drop_column("reached_at")
        batch_op.drop_column("called_at")
        batch_op.drop_column("last_outcome")
        batch_op.drop_column("agent_id")
        batch_op.drop_column("next_at")
        batch_op.drop_column("attempts")

    with op.batch_alter_table("quality_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quality_scores_uniqueid"))
        batch_op.drop_index(batch_op.f("ix_quality_scores_scored_at"))
        batch_op.drop_index(batch_op.f("ix_quality_scores_agent_id"))

    op.drop_table("quality_scores")
    with op.batch_alter_table("listen_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_listen_sessions_uniqueid"))
        batch_op.drop_index(batch_op.f("ix_listen_sessions_started_at"))

    op.drop_table("listen_sessions")
