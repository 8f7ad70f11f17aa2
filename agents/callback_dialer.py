"""Calling missed callers back, agent first (回拨未接来电).

A free agent (a queue member app_queue reports idle: Status NOT_INUSE, not
paused, not in a call, past its wrap-up) is rung: AMI Originate of the agent's
interface into the dialplan context `hotline-callback` (dialplans/callbacks.conf).
Once the agent answers, Asterisk records the call (MixMonitor) and dials the
citizen through `asterisk.outbound_channel`; when the call ends the dialplan
reports the dial status (UserEvent `HotlineCallback`), which settles the attempt.

Each attempt is written before its Originate and never re-sent: a `calls` row
(outbound, uniqueid `callback-TASK-N`, the agent's and the citizen's call on
the task's ticket) and the task's `attempts`, `agent_id`, `called_at`. An
agent who does not answer gives the attempt back (it is not the citizen's).
Unanswered, busy or failed citizens are tried again after
`callback.retry_after_minutes` of that outcome, up to `callback.max_attempts`.

Only during the line's staffed hours (a line with none: always), never a number
on the do-not-call list or one that is not a phone number (digits only), and
within the robot's caps: this dialer's live calls and those started in the last
minute are counted with the robot's attempts against `robot.max_channels` and
`robot.calls_per_minute`, under the robot's claim lock.

The screen pop: app_queue sends `AgentCalled` for queue calls only, so `place`
sets `HOTLINE_CALLBACK_POP` (`pop_value`: login|callback-TASK-N|number) on the
agent's ringing channel with the Originate; Asterisk reports it as a `VarSet`
before the phone rings, and the console's `AgentDesk`, which follows AMI for the
pops, turns it into the agent's pop (the citizen, the line, their tickets, 回拨
and the task's reason) over the same server-sent events as a queue call's.

In a cluster (`CallbackDialer.for_config`) the dialer keeps a link to every
node, asks every linked node which agents are free (an agent busy or paused on
one node is not free), and rings the agent through the front from the least
busy usable node, which also dials the citizen (`agents.callback_nodes`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from agents.callback_nodes import CallbackLinks, least_busy
from agents.store import agents_by_login
from core.config import HotlineConfig
from core.phone_numbers import BadPhoneNumber, checked
from core.vocabulary import AttemptOutcome, CallDirection
from db.callbacks import AGENT_CALLBACK_PREFIX, outbound_load
from db.cluster import draining_nodes, lost_nodes
from db.models import Call, CallbackTask, DoNotCall, RobotLock
from db.session import unit_of_work
from telephony.ami import AMIActionError, AMIClient, AMIDisconnected, AMIError, AMIEvent

log = logging.getLogger(__name__)

CONTEXT = "hotline-callback"
PREFIX = AGENT_CALLBACK_PREFIX  # the uniqueid of a callback's `calls` row: callback-TASK-N
HOLDER = "agent-callbacks"
POP = "HOTLINE_CALLBACK_POP"  # the channel variable the console's screen pop follows
ANSWERED = 4  # OriginateResponse reason: the agent answered
AGENT_RING_SECONDS = 20
AGENT_MISSED_RETRY = timedelta(seconds=30)  # the agent rang out: another agent soon
STALE = timedelta(hours=1)  # a live attempt with no word of its end is ended after this
DIAL_OUTCOMES = {
    "ANSWER": AttemptOutcome.COMPLETED,
    "NOANSWER": AttemptOutcome.NO_ANSWER,
    "CANCEL": AttemptOutcome.NO_ANSWER,  # the agent hung up while the citizen's phone rang
    "BUSY": AttemptOutcome.BUSY,
}
CALLED_BACK = "called back"
NOT_REACHED = "not reached"
DO_NOT_CALL = "do not call"
NOT_A_NUMBER = "not a phone number"
NODE_LOST = "node lost"  # the hangup cause of a callback whose node was lost mid-call


@dataclass(frozen=True)
class FreeAgent:
    agent_id: int
    login: str
    interface: str


@dataclass(frozen=True)
class Placed:
    """An attempt written and to be originated."""

    task_id: int
    call_id: str  # the `calls` row's uniqueid
    number: str
    agent: FreeAgent
    node: str = ""  # the link it is dialled through (a cluster node's name)


def pop_value(job: Placed) -> str:
    """The agent's pop on their ringing channel: login|call id|number (AMI splits on commas)."""
    return f"{job.agent.login}|{job.call_id}|{job.number}"


def read_pop(value: str) -> tuple[str, str, str] | None:
    """(login, call id, number) of a `pop_value`, None for anything else."""
    parts = value.split("|")
    if len(parts) != 3 or task_of(parts[1]) is None or not parts[2].isdigit() or not parts[0]:
        return None
    return parts[0][:64], parts[1][:64], parts[2][:40]


def callback_call_id(task_id: int, attempt: int) -> str:
    return f"{PREFIX}{task_id}-{attempt}"


def task_of(call_id: str) -> int | None:
    parts = call_id.removeprefix(PREFIX).split("-")
    return int(parts[0]) if call_id.startswith(PREFIX) and parts[0].isdigit() else None


def dialable(number: str) -> bool:
    """Digits only and a phone number: nothing else reaches a dial string."""
    try:
        checked(number)
    except BadPhoneNumber:
        return False
    return number.isascii() and number.isdigit()


# -- the store's side (synchronous, one transaction each) ---------------------------
def budget(session: Session, config: HotlineConfig, now: datetime) -> int:
    """Calls that may start now: the robot's caps, its attempts and these callbacks counted.

    The same count as the robot's claim (`db.callbacks.outbound_load`): one cap, two dialers.
    """
    load = outbound_load(session, now - timedelta(minutes=1))
    return min(config.robot.max_channels - load.live, config.robot.calls_per_minute - load.started)


def staffed_now(config: HotlineConfig, did: str | None, now: datetime) -> bool:
    lines = {line.did: line for line in config.lines}
    line = lines.get(did or "") or config.lines[0]
    return line.staffed(now.astimezone(config.tz).time())


def due_tasks(session: Session, config: HotlineConfig, now: datetime, limit: int) -> list[int]:
    """Open tasks to call now, oldest first; tasks that may never be called are closed."""
    live = {
        task_of(uid)
        for uid in session.scalars(
            select(Call.uniqueid).where(Call.uniqueid.startswith(PREFIX), Call.ended_at.is_(None))
        )
    }
    tasks = session.scalars(
        select(CallbackTask)
        .where(
            CallbackTask.closed_at.is_(None),
            CallbackTask.attempts < config.callback.max_attempts,
            (CallbackTask.next_at.is_(None)) | (CallbackTask.next_at <= now),
        )
        .order_by(CallbackTask.created_at, CallbackTask.id)
    ).all()
    due: list[int] = []
    # a citizen on a live callback (another missed call of theirs) is not called again now
    numbers = set(
        session.scalars(select(CallbackTask.caller_number).where(CallbackTask.id.in_(live)))
    )
    for task in tasks:
        if task.id in live or task.caller_number in numbers:
            continue
        if not dialable(task.caller_number):
            task.closed_at, task.closed_why = now, NOT_A_NUMBER
            continue
        if session.get(DoNotCall, task.caller_number) is not None:
            task.closed_at, task.closed_why = now, DO_NOT_CALL
            continue
        did = session.scalar(select(Call.did).where(Call.uniqueid == task.uniqueid))
        if not staffed_now(config, did, now):
            continue
        due.append(task.id)
        numbers.add(task.caller_number)
        if len(due) == limit:
            break
    return due


def claim(
    session: Session,
    config: HotlineConfig,
    now: datetime,
    agents: list[FreeAgent],
    node: str = "",
) -> list[Placed]:
    """Pair due tasks with free agents and write each attempt, under the robot's claim lock.

    node: the cluster node that will dial them, written on each `calls` row.
    """
    session.execute(update(RobotLock).where(RobotLock.id == 1).values(holder=HOLDER, taken_at=now))
    busy = {
        row
        for row in session.scalars(
            select(CallbackTask.agent_id)
            .join(Call, Call.uniqueid == CallbackTask.callback_uniqueid)
            .where(Call.ended_at.is_(None))
        )
    }
    agents = [agent for agent in agents if agent.agent_id not in busy]
    room = min(len(agents), budget(session, config, now))
    if room <= 0:
        due_tasks(session, config, now, 0)  # still close what may never be called
        return []
    placed: list[Placed] = []
    for task_id, agent in zip(due_tasks(session, config, now, room), agents, strict=False):
        task = session.get_one(CallbackTask, task_id)
        task.attempts = (task.attempts or 0) + 1
        dialled = session.scalar(
            select(func.count())
            .select_from(Call)
            .where(Call.uniqueid.startswith(callback_call_id(task.id, 0)[:-1]))
        )
        call_id = callback_call_id(task.id, int(dialled or 0) + 1)  # agents rung, not attempts
        task.agent_id = agent.agent_id
        task.callback_uniqueid = call_id
        task.called_at = task.called_at or now
        task.next_at = None
        did = session.scalar(select(Call.did).where(Call.uniqueid == task.uniqueid))
        session.add(
            Call(
                uniqueid=call_id,
                linkedid=task.uniqueid,
                direction=CallDirection.OUTBOUND,
                caller_number=task.caller_number,
                did=did,
                started_at=now,
                ticket_id=task.ticket_id,
                note=f"callback of task {task.id} ({task.reason}) by agent {agent.login}",
                node=node or None,
            )
        )
        placed.append(Placed(task.id, call_id, task.caller_number, agent, node))
    session.flush()
    return placed


def agent_missed(session: Session, call_id: str, reason: int, now: datetime) -> None:
    """The agent did not answer: the attempt is given back, another agent soon."""
    call = session.scalars(select(Call).where(Call.uniqueid == call_id)).first()
    if call is None or call.ended_at is not None:
        return
    call.ended_at, call.hangup_cause = now, f"agent: reason {reason}"
    task = session.get(CallbackTask, task_of(call_id))
    if task is not None and task.callback_uniqueid == call_id and task.closed_at is None:
        task.attempts = max(0, (task.attempts or 1) - 1)
        task.next_at = now + AGENT_MISSED_RETRY
        if task.attempts == 0:
            task.called_at = None


def settle(
    session: Session,
    config: HotlineConfig,
    call_id: str,
    status: str,
    answered_seconds: int,
    recording: str | None,
    now: datetime,
) -> AttemptOutcome | None:
    """The citizen's leg ended: the attempt's outcome, the task closed or scheduled again."""
    call = session.scalars(select(Call).where(Call.uniqueid == call_id)).first()
    if call is None or call.ended_at is not None:
        return None  # not ours, or already settled (a repeated event)
    outcome = DIAL_OUTCOMES.get(status, AttemptOutcome.FAILED)
    call.ended_at, call.hangup_cause = now, status or "NONE"
    if recording:
        call.recording_path = recording
    task = session.get(CallbackTask, task_of(call_id))
    if outcome == AttemptOutcome.COMPLETED:
        call.answered_at = now - timedelta(seconds=max(0, answered_seconds))
    if task is None:
        return outcome
    task.last_outcome = outcome.value
    if outcome == AttemptOutcome.COMPLETED:
        task.reached_at = task.reached_at or call.answered_at
        if task.closed_at is None:
            task.closed_at, task.closed_why = now, CALLED_BACK
    elif task.closed_at is None:
        if task.attempts >= config.callback.max_attempts:
            task.closed_at, task.closed_why = now, NOT_REACHED
        else:
            minutes = config.callback.retry_after_minutes[outcome.value]  # type: ignore[index]
            task.next_at = now + timedelta(minutes=minutes)
    return outcome


def end_stale(session: Session, config: HotlineConfig, now: datetime) -> int:
    """Live attempts with no word of their end for an hour: ended as failed."""
    stale = session.scalars(
        select(Call.uniqueid).where(
            Call.uniqueid.startswith(PREFIX),
            Call.ended_at.is_(None),
            Call.started_at < now - STALE,
        )
    ).all()
    for call_id in stale:
        settle(session, config, call_id, "", 0, None, now)
    return len(stale)


def end_lost(session: Session, config: HotlineConfig, now: datetime) -> int:
    """Live callbacks on a node the cluster marked lost: settled once as failed, "node lost"
    (its dialplan will never say how they ended; the task is tried again later)."""
    lost = lost_nodes(session)
    if not lost:
        return 0
    live = session.scalars(
        select(Call.uniqueid).where(
            Call.uniqueid.startswith(PREFIX), Call.ended_at.is_(None), Call.node.in_(lost)
        )
    ).all()
    for call_id in live:
        settle(session, config, call_id, NODE_LOST, 0, None, now)
    return len(live)


def unusable_nodes(session: Session) -> set[str]:
    """Nodes no callback may start on: draining or lost."""
    return draining_nodes(session) | lost_nodes(session)


# -- Asterisk's side ----------------------------------------------------------------
def idle_member(event: AMIEvent, wrapup: dict[str, int], now: float) -> bool:
    """A QueueMember app_queue would ring now: not in use, not paused, past its wrap-up."""
    if event.get("Status") != "1" or event.get("Paused") != "0" or event.get("InCall") == "1":
        return False
    last = event.get("LastCall") or "0"
    since = now - int(last) if last.isdigit() else 1e9
    return since >= wrapup.get(event.get("Queue"), 0)


class CallbackDialer:
    """Rings free agents and, through them, the missed callers; one pass per `tick`.

    `ami`: one box's AMI link (`hotline serve` keeps it up). A cluster's dialer
    is made by `for_config` and holds a link per node (`links`).
    """

    def __init__(
        self,
        config: HotlineConfig,
        ami: AMIClient | None,
        sessions: sessionmaker[Session],
        links: CallbackLinks | None = None,
    ) -> None:
        if links is None:
            assert ami is not None, "one box's dialer needs its AMI link"
            links = CallbackLinks.one_box(ami)
        self.config = config
        self.links = links
        self.sessions = sessions
        self.wrapup = {queue.name: queue.wrapup_seconds for queue in config.queues}
        self.ringing: set[int] = set()  # agents rung by this process, not answered yet
        self.placing: set[asyncio.Task[None]] = set()
        self.listeners: list[tuple[AMIClient, asyncio.Queue[AMIEvent], asyncio.Task[None]]] = []
        self.no_node = False  # "no node may take a callback" said once per change

    @classmethod
    def for_config(
        cls, config: HotlineConfig, ami: AMIClient | None, sessions: sessionmaker[Session]
    ) -> CallbackDialer:
        """One box's dialer on `ami`, or a cluster's with its own link to every node."""
        if config.cluster is None:
            return cls(config, ami, sessions)
        return cls(config, None, sessions, CallbackLinks.of_cluster(config))

    def start(self) -> None:
        """Listen for the dialplan's word of each callback's end (on every node)."""
        if self.listeners:
            return
        for name, ami in self.links.links.items():
            events = ami.subscribe("UserEvent")
            task = asyncio.create_task(self._listen(events), name=f"callback-outcomes-{name}")
            self.listeners.append((ami, events, task))

    async def stop(self) -> None:
        for _, _, task in self.listeners:
            task.cancel()
        await asyncio.gather(*(task for _, _, task in self.listeners), return_exceptions=True)
        for ami, events, _ in self.listeners:
            ami.unsubscribe(events)
        self.listeners = []
        await asyncio.gather(*self.placing, return_exceptions=True)
        await self.links.close()

    async def tick(self) -> list[Placed]:
        """One pass: settle stale attempts, find free agents, claim due tasks, ring."""
        self.start()
        await self.links.connect_missing()
        now = datetime.now(UTC)
        await asyncio.to_thread(self._in_store, end_stale, self.config, now)
        if self.links.cluster:
            await asyncio.to_thread(self._in_store, end_lost, self.config, now)
        agents = [a for a in await self.free_agents() if a.agent_id not in self.ringing]
        node = await self.choose_node() if agents else None
        if node is None:
            agents = []  # the claim still closes the tasks that may never be called
        placed = await asyncio.to_thread(
            self._in_store, claim, self.config, now, agents, node or ""
        )
        for job in placed:
            self.ringing.add(job.agent.agent_id)
            task = asyncio.create_task(self.place(job), name=job.call_id)
            self.placing.add(task)
            task.add_done_callback(self.placing.discard)
        return placed

    async def choose_node(self) -> str | None:
        """The link this pass dials through: one box's; a cluster's least busy usable node
        (None: no node may take a call now, said once until one may)."""
        if not self.links.cluster:
            return next(iter(self.links.links))
        unusable = await asyncio.to_thread(self._in_store, unusable_nodes)
        node = await least_busy(self.links.links, unusable)
        if (node is None) != self.no_node:
            self.no_node = node is None
            if node is None:
                log.warning("callbacks: no node may take a call (down, draining or lost)")
        return node

    def _in_store(self, work, *args):  # type: ignore[no-untyped-def]
        with unit_of_work(self.sessions) as session:
            return work(session, *args)

    async def free_agents(self) -> list[FreeAgent]:
        """Members app_queue reports idle now (QueueStatus on every linked node), as agents
        of the store; an agent busy or paused anywhere is not free."""
        members: list[AMIEvent] = []
        for name, ami in self.links.up().items():
            try:
                members += await self.members(ami)
            except (AMIError, TimeoutError) as exc:
                if not self.links.cluster:
                    raise
                log.info("callbacks: node %s: no queue status (%s)", name, exc)
        now = time.time()
        idle: dict[str, None] = {}  # in the order app_queue lists them
        busy: set[str] = set()
        for event in members:
            login = event.get("MemberName") or event.get("Name")
            if idle_member(event, self.wrapup, now):
                idle.setdefault(login)
            else:
                busy.add(login)  # an agent busy or paused in one queue is not free
        logins = [login for login in idle if login not in busy]
        known = await asyncio.to_thread(self._in_store, agents_by_login, logins)
        return [
            FreeAgent(known[login].id, login, self.links.agent_interface(known[login]))
            for login in logins
            if login in known
        ]

    async def members(self, ami: AMIClient) -> list[AMIEvent]:
        """One node's QueueMember events, answering one QueueStatus."""
        events = ami.subscribe("QueueMember", "QueueStatusComplete")
        action_id = ami.next_action_id()
        members: list[AMIEvent] = []
        try:
            await ami.action("QueueStatus", ActionID=action_id)
            while True:
                event = await asyncio.wait_for(events.get(), ami.action_timeout)
                if event.get("ActionID") != action_id:
                    continue
                if event.name == "QueueStatusComplete":
                    return members
                members.append(event)
        finally:
            ami.unsubscribe(events)

    async def place(self, job: Placed) -> None:
        """Ring the agent; once they answer the dialplan dials the citizen (never re-sent)."""
        dial = self.links.citizen_channel(self.config).format(number=job.number)
        ami = self.links.links[job.node]
        try:
            result = await ami.originate(
                job.agent.interface,
                context=CONTEXT,
                exten="s",
                variables={
                    POP: pop_value(job),  # first: the pop reaches the agent before the ring
                    "HOTLINE_CALLBACK": job.call_id,
                    "HOTLINE_CALLBACK_NUMBER": job.number,
                    "HOTLINE_CALLBACK_DIAL": dial,
                    "HOTLINE_CALLBACK_RING": str(self.config.robot.ring_timeout_seconds),
                    "HOTLINE_CALLBACK_CID": self.config.robot.caller_id,
                    "CDR(userfield)": job.call_id,
                },
                caller_id=f"callback <{job.number}>",  # the agent's phone shows whom
                timeout_ms=AGENT_RING_SECONDS * 1000,
                action_id=job.call_id,
            )
        except AMIActionError as exc:
            log.error("%s: Asterisk refused the Originate: %s", job.call_id, exc)
            await asyncio.to_thread(self._in_store, agent_missed, job.call_id, 0, _now())
            return
        except (AMIDisconnected, TimeoutError) as exc:
            log.warning(
                "%s: no word from Asterisk (%s); left live, never re-sent", job.call_id, exc
            )
            return
        finally:
            self.ringing.discard(job.agent.agent_id)
        if result.reason != ANSWERED:
            log.info("%s: agent %s did not answer", job.call_id, job.agent.login)
            await asyncio.to_thread(
                self._in_store, agent_missed, job.call_id, result.reason, _now()
            )

    async def _listen(self, events: asyncio.Queue[AMIEvent]) -> None:
        while True:
            event = await events.get()
            if event.get("UserEvent") != "HotlineCallback":
                continue
            call_id = event.get("Callback")
            if task_of(call_id) is None:
                continue
            try:
                answered = int(event.get("Answered") or 0)
            except ValueError:
                answered = 0
            recording = event.get("Recording") or None
            try:
                outcome = await asyncio.to_thread(
                    self._in_store,
                    settle,
                    self.config,
                    call_id,
                    event.get("DialStatus"),
                    answered,
                    recording + ".wav" if recording else None,
                    _now(),
                )
            except Exception:
                log.exception("%s: outcome not kept", call_id)
                continue
            log.info("%s: %s", call_id, outcome.value if outcome else "already settled")


def _now() -> datetime:
    return datetime.now(UTC)


async def run_once(dialer: CallbackDialer) -> int:
    """The housekeeping job: one pass of the dialer; the number of agents rung."""
    return len(await dialer.tick())
