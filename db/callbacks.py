"""Citizens to call back: a message left in the queue, a missed call (回拨未接来电)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.vocabulary import AttemptState
from db.models import Call, CallbackAttempt, CallbackTask, Ticket


def open_callback_task(
    session: Session,
    *,
    uniqueid: str,
    caller_number: str,
    ticket: Ticket | None,
    reason: str,
    created_at: datetime,
) -> CallbackTask:
    """The call's callback task, made once (a replayed write finds the first one)."""
    task = session.scalars(select(CallbackTask).where(CallbackTask.uniqueid == uniqueid)).first()
    if task is None:
        task = CallbackTask(
            uniqueid=uniqueid,
            caller_number=caller_number,
            ticket_id=ticket.id if ticket is not None else None,
            reason=reason,
            created_at=created_at,
        )
        session.add(task)
        session.flush()
    return task


# The `calls` rows of agent-first callbacks (回拨未接来电) have uniqueids callback-TASK-N;
# the robot's attempts are `callback_attempts` rows. Both dial out on the same trunk.
AGENT_CALLBACK_PREFIX = "callback-"


@dataclass(frozen=True)
class OutboundLoad:
    """Outbound callback calls now: what the robot's channel cap and pace are spent on."""

    live: int  # dialing or in a call: robot attempts and agent-first callbacks not ended
    started: int  # of either kind, started since the moment asked about


def outbound_load(session: Session, since: datetime) -> OutboundLoad:
    """The robot's attempts and the agent-first callbacks, live and started since `since`.

    One count for both dialers, so the robot and the callback dialer hold the same
    `robot.max_channels` and `robot.calls_per_minute` between them (each claims
    under the robot-lock row, so the count does not move while it picks).
    """
    robot_live = select(func.count()).where(
        CallbackAttempt.state.in_((AttemptState.DIALING, AttemptState.IN_CALL))
    )
    robot_started = select(func.count()).where(CallbackAttempt.started_at >= since)
    agent_first = Call.uniqueid.startswith(AGENT_CALLBACK_PREFIX)
    agents_live = select(func.count()).where(agent_first, Call.ended_at.is_(None))
    agents_started = select(func.count()).where(agent_first, Call.started_at >= since)
    row = session.execute(
        select(
            robot_live.select_from(CallbackAttempt).scalar_subquery(),
            robot_started.select_from(CallbackAttempt).scalar_subquery(),
            agents_live.select_from(Call).scalar_subquery(),
            agents_started.select_from(Call).scalar_subquery(),
        )
    ).one()
    return OutboundLoad(
        live=int(row[0] or 0) + int(row[2] or 0), started=int(row[1] or 0) + int(row[3] or 0)
    )


def in_flight_by_node(session: Session) -> dict[str, int]:
    """The robot's attempts dialing or in a call, per node that dials them (issue 22).

    Counted in the store, grouped by `callback_attempts.node`, so every robot of a
    cluster sees the same load on each node whichever robot placed the calls.
    Attempts without a node (one box) are not counted here.
    """
    rows = session.execute(
        select(CallbackAttempt.node, func.count())
        .where(
            CallbackAttempt.state.in_((AttemptState.DIALING, AttemptState.IN_CALL)),
            CallbackAttempt.node.is_not(None),
        )
        .group_by(CallbackAttempt.node)
    )
    return {str(node): int(count) for node, count in rows}
