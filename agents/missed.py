"""Every missed caller becomes a callback task (回拨未接来电), and closes by itself.

Runs after each pass of the queue_log reader, on what it kept:

- a caller who left the queue unanswered (queue_log ABANDON, EXITWITHTIMEOUT)
  after waiting at least `callback.abandon_min_seconds` is a missed caller
  (`abandoned`); decided once the call is over (its row's end written), so a
  caller whose wait ran out and who then left a message keeps the message's
  task, with its ticket;
- a caller refused (no agent, outside staffed hours, the message key) who hung
  up without leaving the message (the call on an `agents` line ended at the
  message's step with no task) is one too (`refused`);
- any open task whose number later reached an agent (a queue_log CONNECT of a
  call from that number, after the task) is closed: "reached an agent".

Each task is made once per call (`db.callbacks.open_callback_task`), so a
replayed pass changes nothing. In a cluster every node's daemon runs a pass
after its queue_log: on PostgreSQL a pass holds a transaction-wide advisory
lock, so a second waits for the first's commit and then finds its tasks made
(instead of inserting the same call's task and failing on the unique uniqueid).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.vocabulary import CallStep
from db.callbacks import open_callback_task
from db.models import Call, CallbackTask, QueueLogEntry, Ticket
from db.session import unit_of_work

LEFT_QUEUE = ("ABANDON", "EXITWITHTIMEOUT")  # data3: the wait in seconds
ABANDONED = "abandoned"
REFUSED = "refused"
REACHED = "reached an agent"
LOOKBACK = timedelta(days=1)  # calls older than this are not looked at again
SETTLE = timedelta(minutes=10)  # a call whose end was never written is decided after this
ONE_PASS_LOCK = 1_234_500_023  # PostgreSQL advisory lock of a pass ("12345", issue 22, + 1)


def wait_of(text: str | None) -> int:
    try:
        return max(0, int(text or ""))
    except ValueError:
        return 0


def _no_task(uniqueid_column: object) -> object:
    return ~exists().where(CallbackTask.uniqueid == uniqueid_column)


def _ticket(session: Session, call: Call | None) -> Ticket | None:
    return session.get(Ticket, call.ticket_id) if call and call.ticket_id else None


def open_abandoned(session: Session, config: HotlineConfig, now: datetime) -> list[int]:
    """Tasks for callers who left the queue after the minimum wait; the new tasks' ids."""
    rows = session.execute(
        select(QueueLogEntry.callid, QueueLogEntry.at, QueueLogEntry.data3)
        .where(QueueLogEntry.event.in_(LEFT_QUEUE), QueueLogEntry.at >= now - LOOKBACK)
        .where(_no_task(QueueLogEntry.callid))
        .order_by(QueueLogEntry.at, QueueLogEntry.id)
    ).all()
    made: list[int] = []
    for callid, at, wait in rows:
        if wait_of(wait) < config.callback.abandon_min_seconds:
            continue  # a wrong number, not a missed caller
        call = session.scalars(select(Call).where(Call.uniqueid == callid)).first()
        if (call is None or call.ended_at is None) and now - at < SETTLE:
            continue  # still on the line (a message may follow): decided when it ends
        if session.scalar(select(CallbackTask.id).where(CallbackTask.uniqueid == callid)):
            continue  # the same call left twice (two queues): one task
        task = open_callback_task(
            session,
            uniqueid=callid,
            caller_number=(call.caller_number or "unknown") if call else "unknown",
            ticket=_ticket(session, call),
            reason=ABANDONED,
            created_at=at,
        )
        made.append(task.id)
    return made


def open_refused(session: Session, config: HotlineConfig, now: datetime) -> list[int]:
    """Tasks for callers refused (no agent, after hours) who left no message."""
    people = [line.did for line in config.lines if line.answer == "agents"]
    if not people:
        return []
    calls = session.scalars(
        select(Call)
        .where(
            Call.did.in_(people),
            Call.started_at >= now - LOOKBACK,
            Call.ended_at.is_not(None),
            Call.last_step == CallStep.RECORDING.value,
        )
        .where(_no_task(Call.uniqueid))
        .order_by(Call.started_at, Call.id)
    ).all()
    made: list[int] = []
    for call in calls:
        task = open_callback_task(
            session,
            uniqueid=call.uniqueid,
            caller_number=call.caller_number or "unknown",
            ticket=_ticket(session, call),
            reason=REFUSED,
            created_at=call.ended_at or call.started_at,
        )
        made.append(task.id)
    return made


def close_reached(session: Session, now: datetime) -> list[int]:
    """Close each open task whose number reached an agent after it; the closed tasks' ids."""
    tasks = session.scalars(select(CallbackTask).where(CallbackTask.closed_at.is_(None))).all()
    if not tasks:
        return []
    numbers = {task.caller_number for task in tasks}
    earliest = min(task.created_at for task in tasks)
    connects = session.execute(
        select(Call.caller_number, QueueLogEntry.at)
        .join(Call, Call.uniqueid == QueueLogEntry.callid)
        .where(
            QueueLogEntry.event == "CONNECT",
            QueueLogEntry.at >= earliest,
            Call.caller_number.in_(numbers),
        )
    ).all()
    latest: dict[str, datetime] = {}
    for number, at in connects:
        if number not in latest or at > latest[number]:
            latest[number] = at
    closed: list[int] = []
    for task in tasks:
        reached = latest.get(task.caller_number)
        if reached is not None and reached > task.created_at:
            task.closed_at, task.closed_why = now, REACHED
            closed.append(task.id)
    return closed


def after_ingest(session: Session, config: HotlineConfig, now: datetime) -> tuple[int, int]:
    """One pass: the new missed callers' tasks, then the tasks their callers closed."""
    made = open_abandoned(session, config, now) + open_refused(session, config, now)
    session.flush()
    return len(made), len(close_reached(session, now))


def follow_missed(
    sessions: sessionmaker[Session], config: HotlineConfig, now: datetime | None = None
) -> tuple[int, int]:
    """`after_ingest` in a transaction of its own (the housekeeping job, after queue_log)."""
    with unit_of_work(sessions) as session:
        one_pass_at_a_time(session)
        return after_ingest(session, config, now or datetime.now(UTC))


def one_pass_at_a_time(session: Session) -> None:
    """Wait for any other pass's commit (PostgreSQL; SQLite has one writer at a time anyway).

    Held until this transaction ends; each statement after it reads what the
    other pass committed (READ COMMITTED), so no call's task is made twice.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(ONE_PASS_LOCK)))
