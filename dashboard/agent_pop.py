"""The agent's screen pop: who is ringing, on which line, and what they asked before.

`AgentDesk` follows app_queue's member events over AMI (its own connection in
the web app's event loop, like `dashboard.live.LiveCalls`): `AgentCalled`
names the agent (MemberName = their login), the caller's channel, Uniqueid and
number, so the agent's page can show the caller within a second of the ring.
It keeps, per login, the latest call and the calls it was rung for (the
filing form's call must be one of them, or a CONNECT of queue_log), and the
state app_queue reports (QueueMemberPause/Added/Removed).

An agent-first callback (回拨, `agents.callback_dialer`) is not a queue call, so
app_queue sends no `AgentCalled` for it: the dialer's Originate sets
`HOTLINE_CALLBACK_POP` on the agent's ringing channel, and its `VarSet` is the
callback's AgentCalled here (a `Ring` of kind `callback` whose uniqueid is the
callback's `calls` row, callback-TASK-N); that channel's `Newstate` Up and
`Hangup` are its connect and end.

In a cluster the desk follows every node's AMI (`links.ami.follow_links`), one
desk for all: the events carry the node in their Uniqueids. "Connected" means
every node's link is up, and `down()` names those that are not; a link going up
or down moves every agent's `version`, so every desk's page shows it at once. A
node can offer an agent a call while they talk on another node (the front
refuses that ring with 486, app_queue reports it rung and not answered): such a
ring never replaces the call the agent is on, and only the current call's end
changes the agent's state.

`pop_payload` is the store's part: the caller's earlier tickets (open ones
first), the line, and a warning when an open ticket exists. Agents see the
full number: they are talking to the caller. A caller who heard a knowledge-base
answer on this call and still came to an agent (0 for an operator, which
`ivr.kb_flow` marks with the caller name 常见问题转人工, or 2 back to the queue)
is shown as such, with the entries heard (their `kb_offers` rows): the agent
starts from what the recorded answer did not settle.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session, selectinload

from agents.callback_dialer import POP, read_pop, task_of
from core.config import HotlineConfig
from core.phone_numbers import UNKNOWN, from_caller_id
from core.uniqueid import node_of
from core.vocabulary import AgentState, TicketStatus, label
from db.calls import call_by_uniqueid
from db.models import CallbackTask, KbEntry, KbOffer, Ticket, ValidCallback
from db.tickets import OPEN_STATUSES, line_by_did
from ivr.kb_flow import OPERATOR_MARK
from links.ami import LinkStates, follow_links, link_names
from telephony.ami import AMIEvent

log = logging.getLogger(__name__)
EVENTS = (
    "AgentCalled",
    "AgentConnect",
    "AgentRingNoAnswer",
    "AgentComplete",
    "AgentDump",
    "Hangup",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberPause",
    "VarSet",  # a callback's pop (HOTLINE_CALLBACK_POP)
    "Newstate",  # a callback's agent answered
)
REMEMBERED = 50  # calls per agent kept in memory for the filing form's check
EARLIER = 20  # earlier tickets shown in a pop
SATISFACTION = {1: "满意", 2: "基本满意", 3: "不满意"}
RESOLVED = {1: "已解决", 2: "未解决"}
MISSED = {  # a callback task's reason: what the citizen's first call was
    "abandoned": "未接来电：排队时挂断 missed call, hung up while waiting",
    "refused": "未接来电：未留言挂断 missed call, no message left",
    "no_agents": "留言：无坐席 message, no agent",
    "after_hours": "留言：非工作时间 message, after hours",
    "message_key": "留言：按键留言 message, by the key",
    "wait_too_long": "留言：等待超时 message, waited too long",
}


@dataclass(frozen=True)
class Ring:
    """One call app_queue offered an agent, as AMI reported it."""

    uniqueid: str  # the caller's channel: the ticket's origin_uniqueid
    linkedid: str
    channel: str  # the caller's channel name (a transfer redirects it)
    number: str
    queue: str
    interface: str
    at: float  # epoch seconds of AgentCalled
    state: str = "ringing"  # ringing | connected | ended | missed
    kind: str = "queue"  # queue | callback (uniqueid: the callback's calls row)
    caller_name: str = ""  # CALLERID(name): 常见问题转人工 after the knowledge base's 0
    agent_channel: str = ""  # the agent's own channel (AgentConnect's DestChannel)

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("channel")
        data.pop("agent_channel")
        return data


class AgentDesk:
    """The agents' calls and states as AMI reports them (thread-safe)."""

    def __init__(self) -> None:
        self._rings: dict[str, Ring] = {}
        self._rung: dict[str, deque[Ring]] = {}
        self._states: dict[str, tuple[AgentState, str | None, float]] = {}
        self._versions: dict[str, int] = {}
        self._callbacks: dict[str, tuple[str, str]] = {}  # agent channel's uniqueid: login, call
        self._links_moved = 0  # how often a link went up or down: every desk shows the links
        self._lock = threading.Lock()
        self.links = LinkStates()

    @property
    def connected(self) -> bool:
        """Every AMI link the desk follows is up (a cluster: every node's)."""
        return self.links.connected

    def down(self) -> list[str]:
        """The nodes whose link is down (one box: [""] while its Asterisk is away)."""
        return self.links.down()

    # -- reading ------------------------------------------------------------------
    def version(self, login: str) -> int:
        """Moves when the agent's desk changes: their own calls and state, or a link going
        up or down (every agent's page says which nodes are not connected)."""
        return self._versions.get(login, 0) + self._links_moved

    def ring(self, login: str) -> Ring | None:
        """The agent's latest call (ringing, connected or just ended)."""
        with self._lock:
            return self._rings.get(login)

    def rung_for(self, login: str, uniqueid: str) -> Ring | None:
        """The call if app_queue rang this agent for it (and it did not ring out unanswered)."""
        with self._lock:
            for ring in self._rung.get(login, ()):
                if ring.uniqueid == uniqueid and ring.state != "missed":
                    return ring
        return None

    def state(self, login: str) -> tuple[AgentState, str | None, float] | None:
        """The agent's state as AMI last reported it (None: nothing seen since start)."""
        with self._lock:
            return self._states.get(login)

    # -- writing ------------------------------------------------------------------
    def _bump(self, login: str) -> None:
        self._versions[login] = self._versions.get(login, 0) + 1

    def _set_state(self, login: str, state: AgentState, reason: str | None = None) -> None:
        self._states[login] = (state, reason, time.time())
        self._bump(login)

    def _is_current(self, login: str, uniqueid: str) -> bool:
        """Whether uniqueid is the agent's current call, or the agent has none."""
        ring = self._rings.get(login)
        return ring is None or ring.uniqueid == uniqueid

    def _promote(self, login: str, uniqueid: str) -> None:
        """An earlier ring the agent answered becomes their current call (another node's
        ring arrived in between)."""
        found = next((r for r in self._rung.get(login, ()) if r.uniqueid == uniqueid), None)
        if found is not None and not self._is_current(login, uniqueid):
            self._rings[login] = found
            self._bump(login)

    def _update(self, login: str, uniqueid: str, **changes: Any) -> None:
        ring = self._rings.get(login)
        if ring is not None and ring.uniqueid == uniqueid:
            self._rings[login] = replace(ring, **changes)
            self._bump(login)
        rung = self._rung.get(login)
        if rung is not None:
            for index, old in enumerate(rung):
                if old.uniqueid == uniqueid:
                    rung[index] = replace(old, **changes)

    def feed(self, event: AMIEvent) -> None:
        """Apply one AMI event."""
        login = event.get("MemberName")
        uniqueid = event.get("Uniqueid")
        with self._lock:
            if event.name == "AgentCalled" and login and uniqueid:
                number = from_caller_id(event.get("CallerIDNum"))
                ring = Ring(
                    uniqueid=uniqueid[:64],
                    linkedid=event.get("Linkedid")[:64],
                    channel=event.get("Channel")[:100],
                    number="" if number == UNKNOWN else number,
                    queue=event.get("Queue")[:64],
                    interface=event.get("Interface")[:100],
                    at=time.time(),
                    caller_name=event.get("CallerIDName")[:80],
                )
                self._rung.setdefault(login, deque(maxlen=REMEMBERED)).append(ring)
                current = self._rings.get(login)
                if current is None or current.state != "connected":  # never over a live call
                    self._rings[login] = ring
                    self._set_state(login, AgentState.RINGING)
            elif event.name == "AgentConnect" and login:
                self._promote(login, uniqueid)
                agent_channel = event.get("DestChannel")[:100]
                self._update(login, uniqueid, state="connected", agent_channel=agent_channel)
                self._set_state(login, AgentState.ON_CALL)
            elif event.name in ("AgentRingNoAnswer", "AgentDump") and login:
                current = self._is_current(login, uniqueid)
                self._update(login, uniqueid, state="missed")
                if current:
                    self._set_state(login, AgentState.READY)
            elif event.name == "AgentComplete" and login:
                current = self._is_current(login, uniqueid)
                self._update(login, uniqueid, state="ended")
                if current:
                    self._set_state(login, AgentState.WRAP_UP)
            elif event.name == "QueueMemberAdded" and login:
                paused = event.get("Paused") == "1"
                self._set_state(
                    login,
                    AgentState.PAUSED if paused else AgentState.READY,
                    event.get("PausedReason") or None,
                )
            elif event.name == "QueueMemberRemoved" and login:
                self._set_state(login, AgentState.LOGGED_OUT)
            elif event.name == "QueueMemberPause" and login:
                if event.get("Paused") == "1":
                    self._set_state(login, AgentState.PAUSED, event.get("PausedReason") or None)
                else:
                    self._set_state(login, AgentState.READY)
            elif event.name == "VarSet" and event.get("Variable") == POP:
                self._callback_rung(event)
            elif event.name == "Newstate" and uniqueid in self._callbacks:
                if event.get("ChannelStateDesc") == "Up":
                    self._update(*self._callbacks[uniqueid], state="connected")
            elif event.name == "Hangup" and uniqueid in self._callbacks:
                who, call_id = self._callbacks.pop(uniqueid)
                ring = self._rings.get(who)
                answered = ring is not None and ring.uniqueid == call_id and ring.state != "ringing"
                self._update(who, call_id, state="ended" if answered else "missed")
            elif event.name == "Hangup" and uniqueid:
                for who, ring in list(self._rings.items()):
                    if ring.uniqueid == uniqueid and ring.state in ("ringing", "connected"):
                        self._update(who, uniqueid, state="ended")

    def _callback_rung(self, event: AMIEvent) -> None:
        """The dialer rings an agent for a callback: the pop, as AgentCalled makes one."""
        found = read_pop(event.get("Value"))
        uniqueid = event.get("Uniqueid")[:64]
        if found is None or not uniqueid:
            return
        login, call_id, number = found
        channel = event.get("Channel")[:100]
        ring = Ring(
            uniqueid=call_id,
            linkedid=event.get("Linkedid")[:64],
            channel=channel,
            number=number,
            queue="",
            interface=channel.rsplit("-", 1)[0],
            at=time.time(),
            kind="callback",
        )
        self._callbacks[uniqueid] = (login, call_id)
        self._rings[login] = ring
        self._rung.setdefault(login, deque(maxlen=REMEMBERED)).append(ring)
        self._bump(login)

    def note_state(self, login: str, state: AgentState, reason: str | None = None) -> None:
        """What the agent's own button just did (AMI's events confirm it a moment later)."""
        with self._lock:
            self._set_state(login, state, reason)

    async def follow(self, config: HotlineConfig, stop: asyncio.Event) -> None:
        """Follow AMI until stop (a cluster: every node's); an unreachable Asterisk or node
        is retried every few seconds."""
        self.links = LinkStates(link_names(config))
        await follow_links(
            config, stop, EVENTS, lambda _node, event: self.feed(event), self._linked, "agent desk"
        )

    def _linked(self, node: str, up: bool) -> None:
        if not self.links.set(node, up):
            return
        with self._lock:
            self._links_moved += 1
        if not up and node:
            self.node_gone(node)

    def node_gone(self, node: str) -> None:
        """A cluster node's link dropped: its calls will send no end (a killed node sends
        nothing), so they end here, and the agents on them are free for the other nodes."""
        with self._lock:
            for login, ring in list(self._rings.items()):
                on_node = node in (node_of(ring.uniqueid), node_of(ring.linkedid))
                if on_node and ring.state in ("ringing", "connected"):
                    self._update(login, ring.uniqueid, state="ended")
                    self._set_state(login, AgentState.READY)


# -- the store's part ------------------------------------------------------------------
def _survey(session: Session, ticket_id: int) -> str:
    row = session.scalars(
        select(ValidCallback)
        .where(ValidCallback.ticket_id == ticket_id)
        .order_by(ValidCallback.surveyed_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return ""
    return f"{RESOLVED.get(row.resolved, '?')} · {SATISFACTION.get(row.satisfaction, '?')}"


def _local(value: datetime | None, tz: tzinfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""


def earlier_tickets(
    session: Session, number: str, tz: tzinfo, except_uniqueid: str = ""
) -> list[dict[str, Any]]:
    """The caller's tickets, open ones first, newest first within each (not this call's)."""
    if not number:
        return []
    is_open = case((Ticket.status.in_(OPEN_STATUSES), 0), else_=1)
    statement = (
        select(Ticket)
        .where(Ticket.caller_number == number)
        .options(selectinload(Ticket.department))
        .order_by(is_open, Ticket.accepted_at.desc(), Ticket.id.desc())
        .limit(EARLIER)
    )
    if except_uniqueid:
        statement = statement.where(
            (Ticket.origin_uniqueid.is_(None)) | (Ticket.origin_uniqueid != except_uniqueid)
        )
    found = []
    for ticket in session.scalars(statement):
        found.append(
            {
                "number": ticket.number,
                "open": ticket.status in OPEN_STATUSES,
                "status": label(ticket.status, TicketStatus)[0],
                "category": ticket.category or "",
                "unit": ticket.department.name if ticket.department else "",
                "accepted": _local(ticket.accepted_at, tz),
                "due": _local(ticket.due_at, tz),
                "survey": _survey(session, ticket.id),
                "summary": "（保密）" if ticket.confidential else (ticket.description or "")[:80],
            }
        )
    return found


def warning(tickets: list[dict[str, Any]], category: str = "") -> str:
    """The open-ticket warning: the same matter when the category is known, else any."""
    open_ones = [t for t in tickets if t["open"]]
    if not open_ones:
        return ""
    if category:
        same = [t["number"] for t in open_ones if t["category"] == category]
        if same:
            return f"同一事项（{category}）已有未办结工单 {'、'.join(same)}，请考虑并单"
    numbers = "、".join(t["number"] for t in open_ones)
    return f"该号码有 {len(open_ones)} 张未办结工单 {numbers}（事项是否相同未知，请核对）"


def pop_payload(
    session: Session,
    tz: tzinfo,
    uniqueid: str,
    number: str = "",
    did: str = "",
    queue: str = "",
    state: str = "",
    caller_name: str = "",
) -> dict[str, Any]:
    """What the agent's page shows for a call: number, line, earlier tickets, a warning.

    The number and line come from the call row when the store has one (the IVR
    wrote it when the call came in; the dialer, for a callback), else from AMI. A
    callback's pop also says so (回拨), why the citizen is called and when they
    called, in the queue's place; a caller the knowledge base did not settle says
    which answers they heard, after the queue (`caller_name`: AMI's, for the 0).
    """
    call = call_by_uniqueid(session, uniqueid)
    if call is not None:
        number = call.caller_number or number
        did = call.did or did
    line = line_by_did(session, did) if did else None
    category = line.default_category if line and line.default_category else ""
    tickets = earlier_tickets(session, number, tz, uniqueid)
    callback = callback_of(session, tz, uniqueid)
    if callback is not None:
        queue = callback["label"]
    kb = kb_heard(session, uniqueid, operator=caller_name == OPERATOR_MARK)
    if kb is not None:
        queue = f"{queue} · {kb['label']}" if queue else kb["label"]
    return {
        "uniqueid": uniqueid,
        "number": number,
        "did": did,
        "line": line.name if line else did,
        "queue": queue,
        "state": state,
        "category": category,
        "tickets": tickets,
        "warning": warning(tickets, category),
        "callback": callback,
        "kb": kb,
    }


def kb_heard(session: Session, uniqueid: str, *, operator: bool = False) -> dict[str, Any] | None:
    """The knowledge-base answers this call heard and did not accept (None: it heard none
    and did not press 0). Newest first; an entry heard twice is named once."""
    rows = session.execute(
        select(KbEntry.key, KbEntry.title)
        .join(KbOffer, KbOffer.entry_id == KbEntry.id)
        .where(KbOffer.uniqueid == uniqueid, KbOffer.heard.is_(True), KbOffer.accepted.is_(False))
        .order_by(KbOffer.id.desc())
    ).all()
    if not rows and not operator:
        return None
    entries: list[dict[str, str]] = []
    for key, title in rows:
        if all(entry["key"] != key for entry in entries):
            entries.append({"key": key, "title": title})
    heard = "".join(f"「{e['title']}」" for e in entries)
    parts = [
        f"{OPERATOR_MARK} caller asked for an agent",
        f"已听知识库解答{heard} heard the knowledge base" if heard else "",
        "按0转人工 pressed 0" if operator else "",
    ]
    return {
        "operator": operator,
        "entries": entries,
        "label": " · ".join(part for part in parts if part),
    }


def callback_of(session: Session, tz: tzinfo, uniqueid: str) -> dict[str, Any] | None:
    """What a callback's pop says of its task (None: not a callback's call)."""
    task_id = task_of(uniqueid)
    task = session.get(CallbackTask, task_id) if task_id is not None else None
    if task is None:
        return None
    why = MISSED.get(task.reason, f"留言 message: {task.reason}")
    missed = _local(task.created_at, tz)
    return {
        "task": task.id,
        "reason": task.reason,
        "why": why,
        "missed_at": missed,
        "attempt": task.attempts,
        "label": f"回拨 callback · {why} · {missed}",
    }
