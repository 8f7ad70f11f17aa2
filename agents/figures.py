"""The queue figures: what the wallboard, the daily report and its exports show.

Every figure comes from the store's queue_log rows (Asterisk's own lines, kept
by `agents.follow.ingest_once`), in SQL: the rows are grouped per attempt
(one caller in one queue: callid and queue), then per queue, and per call for
the whole hotline. A call belongs to the period in which it entered the queue
(ENTERQUEUE), so a call that waits across midnight counts on the day it came,
with its answer or abandon, and answered + abandoned never exceed offered.

- offered: ENTERQUEUE; answered: CONNECT; within: CONNECT holdtime (data1) ≤ the
  queue's `service_level_seconds`;
- abandoned: a caller who left unanswered (ABANDON, EXITWITHTIMEOUT, EXITWITHKEY,
  EXITEMPTY), with the wait (data3; EXITWITHKEY data4) in WAIT_BUCKETS;
- service level = within / offered, 接通率 (completion) = answered / offered;
- ASA: mean CONNECT holdtime; AHT: mean talk (COMPLETECALLER/COMPLETEAGENT data2,
  TRANSFER/BLINDTRANSFER data4) plus the queue's `wrapup_seconds`;
- the whole hotline counts calls: a call transferred into a second queue is
  offered once and answered once (within if either queue answered it in time),
  while ASA and AHT average every answer and every handled attempt;
- for a day, the worst rolling 24 h 接通率: the 24 windows of 24 hours that end
  on each hour of the day (01:00 … 24:00 local), over that day and the one before.

The live part: agents by state now (`agents.store.current_states`) and the
callers waiting now, followed from AMI (`Waiting`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from agents.store import current_states
from core.vocabulary import AgentState
from db.models import Agent, CallbackTask, QueueLogEntry, User

ABANDONS = ("ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY", "EXITEMPTY")
TALKS_DATA2 = ("COMPLETECALLER", "COMPLETEAGENT")
TALKS_DATA4 = ("TRANSFER", "BLINDTRANSFER")
# the abandoned callers' waits: [0, 5), [5, 15), [15, 30), [30, 60), [60, ∞) seconds
WAIT_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-5s", 0, 5),
    ("5-15s", 5, 15),
    ("15-30s", 15, 30),
    ("30-60s", 30, 60),
    ("60s+", 60, None),
)
HOTLINE = "*"  # the whole hotline's row


@dataclass(frozen=True)
class QueueRule:
    """What the figures need of a queue's config (plain values: agents imports no config)."""

    name: str
    service_level_seconds: int = 15
    wrapup_seconds: int = 10


@dataclass
class Figures:
    """One queue's (or the hotline's) figures over a period."""

    queue: str
    offered: int = 0
    answered: int = 0
    within: int = 0
    abandoned: int = 0
    waits: dict[str, int] = field(default_factory=lambda: {b[0]: 0 for b in WAIT_BUCKETS})
    hold_total: int = 0  # seconds, over `answered_attempts`
    answered_attempts: int = 0
    handle_total: int = 0  # talk + wrap-up seconds, over `handled`
    handled: int = 0
    worst_24h: float | None = None  # a day's worst rolling 24 h 接通率 (None: not asked / no data)

    @property
    def service_level(self) -> float | None:
        return self.within / self.offered if self.offered else None

    @property
    def completion(self) -> float | None:
        """接通率: answered / offered."""
        return self.answered / self.offered if self.offered else None

    @property
    def asa(self) -> float | None:
        """Average speed of answer, seconds."""
        return self.hold_total / self.answered_attempts if self.answered_attempts else None

    @property
    def aht(self) -> float | None:
        """Average handle time (talk + wrap-up), seconds."""
        return self.handle_total / self.handled if self.handled else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "offered": self.offered,
            "answered": self.answered,
            "within": self.within,
            "abandoned": self.abandoned,
            "waits": dict(self.waits),
            "service_level": self.service_level,
            "completion": self.completion,
            "asa": self.asa,
            "aht": self.aht,
            "worst_24h": self.worst_24h,
        }


def _n(value: Any) -> int:
    """A count or a sum as an int (PostgreSQL's SUM is a Decimal, an empty one NULL)."""
    return int(value or 0)


def _int(column: Any) -> Any:
    return cast(column, Integer)


def _attempts(rules: Sequence[QueueRule], start: datetime, end: datetime) -> Any:
    """One row per caller per queue that entered in [start, end): its facts, grouped in SQL."""
    q = QueueLogEntry
    level = case({rule.name: rule.service_level_seconds for rule in rules}, value=q.queue, else_=15)
    wrapup = case({rule.name: rule.wrapup_seconds for rule in rules}, value=q.queue, else_=0)
    entered = select(q.callid).where(q.event == "ENTERQUEUE", q.at >= start, q.at < end)
    hold = case((q.event == "CONNECT", _int(q.data1)))
    wait = case(
        (q.event == "EXITWITHKEY", _int(q.data4)),
        (q.event.in_(ABANDONS), _int(q.data3)),
    )
    talk = case(
        (q.event.in_(TALKS_DATA2), _int(q.data2)),
        (q.event.in_(TALKS_DATA4), _int(q.data4)),
    )
    return (
        select(
            q.callid.label("callid"),
            q.queue.label("queue"),
            func.min(case((q.event == "ENTERQUEUE", q.at))).label("entered_at"),
            func.max(case((q.event == "CONNECT", 1), else_=0)).label("answered"),
            func.max(hold).label("hold"),
            # nested, so only a CONNECT's data1 is read as a number (AND has no order in SQL)
            func.max(
                case((q.event == "CONNECT", case((_int(q.data1) <= level, 1), else_=0)), else_=0)
            ).label("within"),
            func.max(case((q.event.in_(ABANDONS), 1), else_=0)).label("left"),
            func.max(wait).label("wait"),
            func.sum(talk).label("talk"),
            func.max(case((talk.is_not(None), 1), else_=0)).label("handled"),
            func.max(wrapup).label("wrapup"),
        )
        .where(q.callid.in_(entered), q.callid != "NONE")
        .group_by(q.callid, q.queue)
        .subquery()
    )


def _bucket_sums(wait: Any, abandoned: Any) -> list[Any]:
    sums = []
    for label, low, high in WAIT_BUCKETS:
        inside = wait >= low if high is None else and_(wait >= low, wait < high)
        sums.append(func.sum(case((and_(abandoned, inside), 1), else_=0)).label(label))
    return sums


def period_figures(
    session: Session,
    rules: Sequence[QueueRule],
    start: datetime,
    end: datetime,
    day_tz: ZoneInfo | None = None,
) -> dict[str, Figures]:
    """Figures per queue (every queue of rules, even without calls) and HOTLINE, for calls
    that entered in [start, end); with day_tz, [start, end) is one local day and each row
    gets its worst rolling 24 h 接通率."""
    a = _attempts(rules, start, end)
    entered_in = and_(a.c.entered_at >= start, a.c.entered_at < end)
    unanswered_left = and_(a.c.left == 1, a.c.answered == 0)
    rows = session.execute(
        select(
            a.c.queue,
            func.count().label("offered"),
            func.sum(a.c.answered).label("answered"),
            func.sum(a.c.within).label("within"),
            func.sum(case((unanswered_left, 1), else_=0)).label("abandoned"),
            func.sum(case((a.c.answered == 1, a.c.hold), else_=0)).label("hold_total"),
            func.sum(case((a.c.handled == 1, a.c.talk + a.c.wrapup), else_=0)).label("handle"),
            func.sum(a.c.handled).label("handled"),
            *_bucket_sums(a.c.wait, unanswered_left),
        )
        .where(entered_in)
        .group_by(a.c.queue)
    ).all()
    found = {rule.name: Figures(rule.name) for rule in rules}
    total = Figures(HOTLINE)
    for row in rows:
        one = found.setdefault(row.queue, Figures(row.queue))
        one.offered, one.answered, one.within = _n(row.offered), _n(row.answered), _n(row.within)
        one.abandoned = _n(row.abandoned)
        one.hold_total, one.answered_attempts = _n(row.hold_total), one.answered
        one.handle_total, one.handled = _n(row.handle), _n(row.handled)
        one.waits = {label: _n(getattr(row, label)) for label, _, _ in WAIT_BUCKETS}
        total.hold_total += one.hold_total
        total.answered_attempts += one.answered_attempts
        total.handle_total += one.handle_total
        total.handled += one.handled
    # the hotline: per call (a transferred call entered two queues: one call)
    calls = (
        select(
            a.c.callid,
            func.max(a.c.answered).label("answered"),
            func.max(a.c.within).label("within"),
            func.max(a.c.left).label("left"),
            func.max(case((a.c.left == 1, a.c.wait))).label("wait"),
        )
        .where(entered_in)
        .group_by(a.c.callid)
        .subquery()
    )
    left_only = and_(calls.c.left == 1, calls.c.answered == 0)
    row = session.execute(
        select(
            func.count().label("offered"),
            func.sum(calls.c.answered).label("answered"),
            func.sum(calls.c.within).label("within"),
            func.sum(case((left_only, 1), else_=0)).label("abandoned"),
            *_bucket_sums(calls.c.wait, left_only),
        )
    ).one()
    total.offered, total.answered = _n(row.offered), _n(row.answered)
    total.within, total.abandoned = _n(row.within), _n(row.abandoned)
    total.waits = {label: _n(getattr(row, label)) for label, _, _ in WAIT_BUCKETS}
    found[HOTLINE] = total
    if day_tz is not None:
        for name, worst in worst_rolling_24h(session, rules, end).items():
            if name in found:
                found[name].worst_24h = worst
    return found


def worst_rolling_24h(
    session: Session, rules: Sequence[QueueRule], day_end: datetime
) -> dict[str, float | None]:
    """Per queue and HOTLINE: the lowest answered / offered over the 24 windows of 24 h that
    end on each hour of the day ending at day_end (windows without calls skipped)."""
    return {
        name: min((r for r in rates if r is not None), default=None)
        for name, rates in rolling_24h(session, rules, day_end).items()
    }


def rolling_24h(
    session: Session, rules: Sequence[QueueRule], day_end: datetime
) -> dict[str, list[float | None]]:
    """Per queue and HOTLINE: answered / offered in each of the 24 windows of 24 h that end
    on each hour of the day ending at day_end, oldest first (None: no call); one query each."""
    ends = [day_end - timedelta(hours=h) for h in range(23, -1, -1)]
    a = _attempts(rules, day_end - timedelta(hours=47), day_end)
    calls = (
        select(
            a.c.callid,
            func.min(a.c.entered_at).label("entered_at"),
            func.max(a.c.answered).label("answered"),
        )
        .group_by(a.c.callid)
        .subquery()
    )

    def windows(entered: Any, answered: Any) -> list[Any]:
        columns = []
        for n, stop in enumerate(ends):
            inside = and_(entered >= stop - timedelta(hours=24), entered < stop)
            columns.append(func.sum(case((inside, 1), else_=0)).label(f"o{n}"))
            columns.append(func.sum(case((inside, answered), else_=0)).label(f"a{n}"))
        return columns

    def worst(row: Any) -> list[float | None]:
        return [
            _n(getattr(row, f"a{n}")) / offered if (offered := _n(getattr(row, f"o{n}"))) else None
            for n in range(len(ends))
        ]

    found: dict[str, list[float | None]] = {rule.name: [None] * len(ends) for rule in rules}
    for row in session.execute(
        select(a.c.queue, *windows(a.c.entered_at, a.c.answered)).group_by(a.c.queue)
    ):
        found[row.queue] = worst(row)
    found[HOTLINE] = worst(
        session.execute(select(literal(1), *windows(calls.c.entered_at, calls.c.answered))).one()
    )
    return found


def day_range(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of the local day's midnight and the next one."""
    first = datetime(day.year, day.month, day.day, tzinfo=tz)
    following = day + timedelta(days=1)
    return (
        first.astimezone(UTC),
        datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(UTC),
    )


def day_figures(
    session: Session, rules: Sequence[QueueRule], day: date, tz: ZoneInfo
) -> dict[str, Figures]:
    """One local day's figures, with each row's worst rolling 24 h 接通率."""
    start, end = day_range(day, tz)
    return period_figures(session, rules, start, end, tz)


@dataclass(frozen=True)
class Callbacks:
    """Missed-call callbacks (回拨未接来电): tasks created and tasks closed in a period."""

    created: int
    closed: int


def callbacks(session: Session, start: datetime, end: datetime) -> Callbacks:
    t = CallbackTask
    row = session.execute(
        select(
            func.sum(case((and_(t.created_at >= start, t.created_at < end), 1), else_=0)),
            func.sum(case((and_(t.closed_at >= start, t.closed_at < end), 1), else_=0)),
        ).where(
            or_(
                and_(t.created_at >= start, t.created_at < end),
                and_(t.closed_at >= start, t.closed_at < end),
            )
        )
    ).one()
    return Callbacks(_n(row[0]), _n(row[1]))


# -- now -------------------------------------------------------------------------------
STATE_KEYS = ("ready", "ringing", "on_call", "wrap_up", "paused", "logged_out")


@dataclass
class AgentCounts:
    """Agents of a queue (or the hotline) by their state now; paused also by reason."""

    queue: str
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATE_KEYS, 0))
    paused_by: dict[str, int] = field(default_factory=dict)

    def add(self, state: AgentState, reason: str | None) -> None:
        self.states[state.value] += 1
        if state == AgentState.PAUSED:
            key = reason or "paused"
            self.paused_by[key] = self.paused_by.get(key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"queue": self.queue, "states": dict(self.states), "paused_by": dict(self.paused_by)}


def agents_now(
    session: Session, rules: Sequence[QueueRule], now: datetime
) -> dict[str, AgentCounts]:
    """Per queue and HOTLINE: agents ready, ringing, on call, in wrap-up, paused (by reason)
    and logged out, from their last recorded state (wrap-up past the queue's length: ready)."""
    wrapups = {rule.name: rule.wrapup_seconds for rule in rules}
    rows = session.execute(
        select(Agent.id, Agent.queues)
        .join(User, Agent.user_id == User.id)
        .where(User.disabled.is_(False))
    ).all()
    found = {rule.name: AgentCounts(rule.name) for rule in rules}
    found[HOTLINE] = AgentCounts(HOTLINE)
    by_wrapup: dict[int, list[tuple[int, list[str]]]] = {}
    for agent_id, queues in rows:
        names = [n for n in queues.split(",") if n]
        longest = max((wrapups.get(n, 0) for n in names), default=0)
        by_wrapup.setdefault(longest, []).append((agent_id, names))
    for seconds, agents in by_wrapup.items():
        states = current_states(session, [a for a, _ in agents], now, timedelta(seconds=seconds))
        for agent_id, names in agents:
            last = states.get(agent_id)
            state = last.state if last is not None else AgentState.LOGGED_OUT
            reason = last.reason if last is not None else None
            found[HOTLINE].add(state, reason)
            for name in names:
                found.setdefault(name, AgentCounts(name)).add(state, reason)
    return found


class Waiting:
    """Callers waiting in each queue now, from AMI (QueueCallerJoin / Leave / Abandon, and
    QueueEntry answering a QueueStatus action after a (re)connect); thread-safe."""

    EVENTS = ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "QueueEntry")

    def __init__(self) -> None:
        self._callers: dict[str, tuple[str, float]] = {}  # uniqueid -> (queue, since epoch)
        self._lock = threading.Lock()

    def feed(self, name: str, fields: Mapping[str, str], now: float | None = None) -> bool:
        """Apply one AMI event (its name and fields); whether the waiting callers changed."""
        now = time.time() if now is None else now
        uniqueid, queue = fields.get("Uniqueid", ""), fields.get("Queue", "")
        if not uniqueid:
            return False
        with self._lock:
            if name == "QueueCallerJoin":
                self._callers[uniqueid] = (queue, now)
                return True
            if name == "QueueEntry":
                try:
                    waited = max(0, int(fields.get("Wait", "0")))
                except ValueError:
                    waited = 0
                self._callers[uniqueid] = (queue, now - waited)
                return True
            if name in ("QueueCallerLeave", "QueueCallerAbandon"):
                return self._callers.pop(uniqueid, None) is not None
        return False

    def clear(self) -> None:
        with self._lock:
            self._callers.clear()

    def now(self, queues: Sequence[str], at: float | None = None) -> dict[str, dict[str, Any]]:
        """Per queue and HOTLINE: callers waiting, the longest wait (s) and since when (epoch)."""
        at = time.time() if at is None else at
        with self._lock:
            callers = list(self._callers.values())
        found: dict[str, dict[str, Any]] = {}
        for name in [*queues, HOTLINE]:
            mine = [since for queue, since in callers if name in (HOTLINE, queue)]
            oldest = min(mine, default=None)
            found[name] = {
                "waiting": len(mine),
                "longest": int(at - oldest) if oldest is not None else 0,
                "since": oldest,
            }
        return found
