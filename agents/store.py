"""The agents' rows: seats bound to accounts, states with their times, queue_log kept.

Each pass of the queue_log reader is one transaction: the new lines, the
agents' state changes they imply, the tickets they describe (who answered,
after how long, for how long), and the reader's new position, together, so a
crash re-reads exactly the lines that were not kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from agents.control import Membership
from agents.queue_log import Chunk, QueueEvent
from core.seats import Seat, SeatKind
from core.vocabulary import AgentState
from db.models import (
    Agent,
    AgentStateChange,
    CallLeg,
    QueueLogEntry,
    QueueLogPosition,
    Ticket,
    User,
)

SCRIPTED = "script"  # a scripted agent (tests, demo, bench): a Local channel, no phone
WRAP_UP_EVENTS = {
    "COMPLETECALLER",
    "COMPLETEAGENT",
    "TRANSFER",
    "BLINDTRANSFER",
    "ATTENDEDTRANSFER",
}
LEFT_UNANSWERED = {"ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY", "EXITEMPTY"}
TICKET_FACTS = {"CONNECT", *WRAP_UP_EVENTS, *LEFT_UNANSWERED}


class SeatError(ValueError):
    """No free seat of the kind asked for, or an account that cannot be an agent."""


def interface_of(agent: Agent) -> str:
    """What app_queue rings for the agent: their seat, or a scripted agent's Local channel."""
    if agent.phone == SCRIPTED:
        return f"Local/{agent.endpoint}@sim-agent"
    return f"PJSIP/{agent.endpoint}"


def membership(agent: Agent) -> Membership:
    return Membership(agent.user.username, interface_of(agent), tuple(agent.queue_names))


def bind_seat(
    session: Session,
    user: User,
    available: Sequence[Seat],
    kind: SeatKind | str,
    queues: Iterable[str],
    team: str | None = None,
) -> Agent:
    """Make user an agent on the first free seat of kind (a scripted agent: its own name)."""
    if user.role != "agent":
        raise SeatError(f"{user.username} is a {user.role}, not an agent")
    taken = set(session.scalars(select(Agent.endpoint)))
    if kind == SCRIPTED:
        endpoint = f"sa{user.id}"
    else:
        free = [seat for seat in available if seat.kind == kind and seat.endpoint not in taken]
        if not free:
            raise SeatError(
                f"no free {kind} seat: raise agents.{kind}_seats in config.yaml and re-render"
            )
        endpoint = free[0].endpoint
    agent = Agent(
        user_id=user.id, endpoint=endpoint, phone=kind, queues=",".join(queues), team=team
    )
    session.add(agent)
    session.flush()
    return agent


def agent_of_user(session: Session, user_id: int) -> Agent | None:
    return session.scalars(
        select(Agent).where(Agent.user_id == user_id).options(selectinload(Agent.user))
    ).one_or_none()


def agents_by_login(session: Session, logins: Iterable[str]) -> dict[str, Agent]:
    wanted = set(logins)
    if not wanted:
        return {}
    rows = session.scalars(
        select(Agent).join(User, Agent.user_id == User.id).where(User.username.in_(wanted))
    ).all()
    return {row.user.username: row for row in rows}


def record_state(
    session: Session,
    agent_id: int,
    state: AgentState,
    at: datetime,
    reason: str | None = None,
    uniqueid: str | None = None,
) -> None:
    session.add(
        AgentStateChange(agent_id=agent_id, state=state, at=at, reason=reason, uniqueid=uniqueid)
    )


def last_state(session: Session, agent_id: int) -> tuple[AgentState, str | None] | None:
    row = session.execute(
        select(AgentStateChange.state, AgentStateChange.reason)
        .where(AgentStateChange.agent_id == agent_id)
        .order_by(AgentStateChange.at.desc(), AgentStateChange.id.desc())
        .limit(1)
    ).first()
    return (row.state, row.reason) if row else None


def current_states(
    session: Session, agent_ids: Iterable[int], now: datetime, wrapup: timedelta
) -> dict[int, AgentStateChange | None]:
    """Each agent's last recorded change (wrap-up past its length reads as ready)."""
    found: dict[int, AgentStateChange | None] = {}
    for agent_id in agent_ids:
        last = session.scalars(
            select(AgentStateChange)
            .where(AgentStateChange.agent_id == agent_id)
            .order_by(AgentStateChange.at.desc(), AgentStateChange.id.desc())
            .limit(1)
        ).first()
        if last is not None and last.state == AgentState.WRAP_UP and now - last.at >= wrapup:
            last = AgentStateChange(agent_id=agent_id, state=AgentState.READY, at=last.at + wrapup)
        found[agent_id] = last
    return found


# -- queue_log ---------------------------------------------------------------------
ONE_BOX_ROW = 1  # one box's position row; a cluster's nodes never take this id


def position(session: Session, node: str | None = None) -> tuple[int, int]:
    """Where the last pass stopped (one box, or the named cluster node), locked until commit.

    `hotline serve` reads queue_log every second and an open wallboard reads it
    too: the row lock (PostgreSQL; SQLite's one writer refuses the second's
    stale upgrade) keeps two readers from keeping the same lines twice.
    """
    row = position_row(session, node, lock=True)
    return (row.inode, row.offset) if row else (0, 0)


def position_row(session: Session, node: str | None, lock: bool = False) -> QueueLogPosition | None:
    if node is None:
        return session.get(QueueLogPosition, ONE_BOX_ROW, with_for_update=lock)
    query = select(QueueLogPosition).where(QueueLogPosition.node == node)
    return session.scalars(query.with_for_update() if lock else query).one_or_none()


def add_node_position(session: Session, node: str) -> None:
    """The node's first position row, at the start of its file.

    Its id is chosen past every other (never the one box's id 1, which a store
    that was one box before holds, and PostgreSQL's id sequence never saw); two
    nodes adding theirs at once collide on the id, and the loser tries again.
    """
    highest = session.scalar(select(func.max(QueueLogPosition.id))) or 0
    session.add(QueueLogPosition(id=max(highest, ONE_BOX_ROW) + 1, node=node, inode=0, offset=0))
    session.flush()


def keep(session: Session, chunk: Chunk, node: str | None = None) -> int:
    """One pass: the lines, the states they imply, the tickets they describe, the position."""
    row = position_row(session, node)
    if row is None and node is None:
        row = QueueLogPosition(id=ONE_BOX_ROW, inode=chunk.inode, offset=chunk.offset)
        session.add(row)
    elif row is None:
        add_node_position(session, node)
        row = position_row(session, node)
        assert row is not None
    row.inode, row.offset = chunk.inode, chunk.offset
    for event in chunk.events:
        session.add(
            QueueLogEntry(
                at=event.at,
                callid=event.callid,
                queue=event.queue,
                agent=event.agent,
                event=event.event,
                **{f"data{n}": event.field(n) or None for n in range(1, 6)},
            )
        )
    agents = agents_by_login(session, {e.agent for e in chunk.events if e.agent != "NONE"})
    last = {agent.id: last_state(session, agent.id) for agent in agents.values()}
    for event in chunk.events:
        agent = agents.get(event.agent)
        if agent is None:
            continue
        for state, at, reason in states_of(event):
            # an agent in two queues is added, paused and removed twice: one change each
            if last[agent.id] != (state, reason):
                record_state(session, agent.id, state, at, reason, callid_of(event))
                last[agent.id] = (state, reason)
    session.flush()
    calls = {e.callid for e in chunk.events if e.event in TICKET_FACTS}
    for ticket in session.scalars(select(Ticket).where(Ticket.origin_uniqueid.in_(calls))):
        fill_from_queue_log(session, ticket)
    return len(chunk.events)


def callid_of(event: QueueEvent) -> str | None:
    return None if event.callid in ("NONE", "") else event.callid


def states_of(event: QueueEvent) -> list[tuple[AgentState, datetime, str | None]]:
    """The agent state changes a queue_log line records (none for a caller's own events)."""
    kind = event.event
    if kind == "ADDMEMBER":
        return [(AgentState.READY, event.at, None)]
    if kind == "REMOVEMEMBER":
        return [(AgentState.LOGGED_OUT, event.at, None)]
    if kind in ("PAUSE", "PAUSEALL"):
        return [(AgentState.PAUSED, event.at, event.field(1) or None)]
    if kind in ("UNPAUSE", "UNPAUSEALL"):
        return [(AgentState.READY, event.at, None)]
    if kind == "CONNECT":
        rang = seconds(event.field(3))
        return [
            (AgentState.RINGING, event.at - timedelta(seconds=rang), None),
            (AgentState.ON_CALL, event.at, None),
        ]
    if kind in WRAP_UP_EVENTS:
        return [(AgentState.WRAP_UP, event.at, None)]
    if kind == "RINGNOANSWER":
        rang = seconds(event.field(1)) / 1000
        return [
            (AgentState.RINGING, event.at - timedelta(seconds=rang), None),
            (AgentState.READY, event.at, "rang out"),
        ]
    return []


def seconds(text: str) -> int:
    try:
        return max(0, int(text))
    except ValueError:
        return 0


def fill_late_tickets(session: Session, since: datetime) -> int:
    """Tickets made after their call's queue_log lines were kept, filled now; how many.

    A pass fills the tickets that exist when it keeps the lines; a ticket the
    call's end (or the reconciler, for a call cut by a node's death) makes a
    moment later would stay without its agent, queue and wait. Lines kept since
    `since` are looked at; a ticket filled once has its queue and is not again.
    """
    facts = select(QueueLogEntry.callid).where(
        QueueLogEntry.event.in_(TICKET_FACTS), QueueLogEntry.at >= since
    )
    late = session.scalars(
        select(Ticket).where(Ticket.origin_uniqueid.in_(facts), Ticket.queue.is_(None))
    ).all()
    for ticket in late:
        fill_from_queue_log(session, ticket)
    return len(late)


def fill_from_queue_log(session: Session, ticket: Ticket) -> None:
    """Who answered the ticket's call, in which queue, after how long, for how long."""
    if ticket.origin_uniqueid is None:
        return
    rows = session.scalars(
        select(QueueLogEntry)
        .where(QueueLogEntry.callid == ticket.origin_uniqueid)
        .order_by(QueueLogEntry.at, QueueLogEntry.id)
    ).all()
    for row in rows:
        if row.event == "CONNECT":
            agent = agents_by_login(session, [row.agent]).get(row.agent)
            ticket.agent_id = agent.id if agent else ticket.agent_id
            ticket.queue = row.queue
            ticket.wait_seconds = seconds(row.data1 or "")
        elif row.event in WRAP_UP_EVENTS and row.event.startswith("COMPLETE"):
            ticket.talk_seconds = seconds(row.data2 or "")
        elif row.event in LEFT_UNANSWERED:
            ticket.queue = row.queue
            ticket.wait_seconds = seconds(
                (row.data4 if row.event == "EXITWITHKEY" else row.data3) or ""
            )


# -- call legs ---------------------------------------------------------------------
def open_leg(
    session: Session,
    *,
    uniqueid: str,
    kind: str,
    target: str,
    agent_id: int | None,
    channel: str | None,
    recording_path: str | None = None,
    at: datetime | None = None,
) -> int:
    """A transfer or a three-way call's party on the citizen call's record; its id."""
    leg = CallLeg(
        uniqueid=uniqueid,
        kind=kind,
        target=target[:64],
        agent_id=agent_id,
        channel=(channel or "")[:100] or None,
        recording_path=recording_path,
    )
    if at is not None:
        leg.started_at = at
    session.add(leg)
    session.flush()
    return leg.id


def end_leg(session: Session, leg_id: int, at: datetime) -> None:
    """The leg's party hung up (a leg already ended keeps its first end)."""
    leg = session.get(CallLeg, leg_id)
    if leg is not None and leg.ended_at is None:
        leg.ended_at = at


def legs_of(session: Session, uniqueid: str) -> list[CallLeg]:
    return list(
        session.scalars(select(CallLeg).where(CallLeg.uniqueid == uniqueid).order_by(CallLeg.id))
    )
