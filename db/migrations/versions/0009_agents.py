"""people answer (issue 20): agents on seats, their states, queue_log, drafts, call legs,
callback tasks; tickets keep their agent, queue, wait and talk, handling and how they closed

Revision ID: 0009_agents
Revises: 0008_console_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0009_agents"
down_revision = "0008_console_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a fourth role: the people who answer
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("role", type_="check")
        batch_op.create_check_constraint(
            "role", "role IN ('admin', 'supervisor', 'staff', 'agent')"
        )
    op.create_table(
        "queue_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("callid", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("data1", sa.String(length=200), nullable=True),
        sa.Column("data2", sa.String(length=200), nullable=True),
        sa.Column("data3", sa.String(length=200), nullable=True),
        sa.Column("data4", sa.String(length=200), nullable=True),
        sa.Column("data5", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_log")),
    )
    with op.batch_alter_table("queue_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_log_callid"), ["callid"], unique=False)
        batch_op.create_index("ix_queue_log_queue_at", ["queue", "at"], unique=False)

    op.create_table(
        "queue_log_position",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_log_position")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=8), nullable=False),
        sa.Column("queues", sa.String(length=400), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("created_at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_agents_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_agents_endpoint")),
        sa.UniqueConstraint("user_id", name=op.f("uq_agents_user_id")),
    )
    op.create_table(
        "agent_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "logged_out",
                "ready",
                "ringing",
                "on_call",
                "wrap_up",
                "paused",
                name="agent_state",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_states_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_states")),
    )
    with op.batch_alter_table("agent_states", schema=None) as batch_op:
        batch_op.create_index("ix_agent_states_agent_at", ["agent_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_agent_states_at"), ["at"], unique=False)

    op.create_table(
        "call_legs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=100), nullable=True),
        sa.Column("recording_path", sa.String(length=500), nullable=True),
        sa.Column("started_at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", db.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_call_legs_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_legs")),
    )
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_legs_uniqueid"), ["uniqueid"], unique=False)

    op.create_table(
        "ticket_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_ticket_drafts_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_drafts")),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_ticket_drafts_uniqueid")),
    )
    op.create_table(
        "callback_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("caller_number", sa.String(length=40), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("created_at", db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_why", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_callback_tasks_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_tasks")),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_callback_tasks_uniqueid")),
    )
    with op.batch_alter_table("callback_tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_callback_tasks_caller_number"), ["caller_number"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_callback_tasks_created_at"), ["created_at"], unique=False
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("queue", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("wait_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("talk_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "handling",
                sa.Enum(
                    "direct",
                    "dispatch",
                    "merge",
                    name="handling",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "closed_as",
                sa.Enum(
                    "resolved",
                    "explained",
                    "unresolvable",
                    name="closed_as",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("confidential", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("place", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_agent_id"), ["agent_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_merged_into_id_tickets"), "tickets", ["merged_into_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_agent_id_agents"), "agents", ["agent_id"], ["id"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM users WHERE role = 'agent'")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("role", type_="check")
        batch_op.create_check_constraint("role", "role IN ('admin', 'supervisor', 'staff')")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint("closed_as", type_="check")
        batch_op.drop_constraint("handling", type_="check")
        batch_op.drop_constraint(batch_op.f("fk_tickets_agent_id_agents"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_tickets_merged_into_id_tickets"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_tickets_agent_id"))
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("place")
        batch_op.drop_column("confidential")
        batch_op.drop_column("closed_as")
        batch_op.drop_column("handling")
        batch_op.drop_column("talk_seconds")
        batch_op.drop_column("wait_seconds")
        batch_op.drop_column("queue")
        batch_op.drop_column("agent_id")

    with op.batch_alter_table("callback_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_callback_tasks_created_at"))
        batch_op.drop_index(batch_op.f("ix_callback_tasks_caller_number"))

    op.drop_table("callback_tasks")
    op.drop_table("ticket_drafts")
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_legs_uniqueid"))

    op.drop_table("call_legs")
    with op.batch_alter_table("agent_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_states_at"))
        batch_op.drop_index("ix_agent_states_agent_at")

    op.drop_table("agent_states")
    op.drop_table("agents")
    op.drop_table("queue_log_position")
    with op.batch_alter_table("queue_log", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_log_queue_at")
        batch_op.drop_index(batch_op.f("ix_queue_log_callid"))
        batch_op.drop_index(batch_op.f("ix_queue_log_at"))

    op.drop_table("queue_log")
