"""The demo city's tickets, simulated day by day in local wall-clock time.

Who calls (an 11-digit mobile; some citizens call again and again), when
(the hour weights), about what (the day's category mix), how urgent, and
the ticket's whole life: handling (handling.Handling), the robot's
callbacks (callbacks.Robot) and archiving. Lives are simulated up to the end
of `until` (the demo's "now"): whatever would happen later is not written,
so the last days' tickets are still open, and each ticket is stored as its
events up to then leave it.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.config import HotlineConfig
from core.deadlines import due_at
from core.vocabulary import EventKind, Level, TicketStatus, Urgency
from db import bulk
from tools.demo_city.calibration import Model
from tools.demo_city.callbacks import Case, Robot
from tools.demo_city.data import (
    CATEGORIES,
    HOUR_WEIGHTS,
    MOBILE_PREFIXES,
    REQUEST_TYPES,
    TYPE_DIFFICULTY,
    Category,
)
from tools.demo_city.draws import cumulative
from tools.demo_city.handling import Handling
from tools.demo_city.rows import SOURCE, Chunk, Event, Ids, utc
from tools.demo_city.tree import Route, Tree
from tools.demo_city.volume import Day

# The status a ticket has after each kind of event (other kinds leave it as it was).
STATUS_AFTER = {
    EventKind.ACCEPTED: TicketStatus.ACCEPTED,
    EventKind.DISPATCHED: TicketStatus.DISPATCHED,
    EventKind.REDISPATCHED: TicketStatus.DISPATCHED,
    EventKind.SIGNED: TicketStatus.SIGNED,
    EventKind.RETURNED: TicketStatus.RETURNED,
    EventKind.CLOSED: TicketStatus.CLOSED,
    EventKind.REWORK: TicketStatus.IN_PROGRESS,
    EventKind.ARCHIVED: TicketStatus.ARCHIVED,
}


@dataclass
class _State:
    """A ticket as its events up to the cutoff leave it."""

    status: TicketStatus = TicketStatus.ACCEPTED
    department_id: int | None = None
    closed_at: datetime | None = None
    urges: int = 0


def _state_at_cutoff(kept: list[Event], cutoff: datetime) -> _State:
    """Replay the kept events in order, as db.workflow would have changed the ticket."""
    state, signed_at = _State(), None
    for at, kind, department_id, _, _ in kept:
        state.status = STATUS_AFTER.get(kind, state.status)
        if kind in (EventKind.DISPATCHED, EventKind.REDISPATCHED):
            state.department_id = department_id
        elif kind == EventKind.SIGNED:
            signed_at = at
        elif kind == EventKind.CLOSED:
            state.closed_at = at
        elif kind == EventKind.URGED:
            state.urges += 1
    if state.status == TicketStatus.SIGNED and signed_at and cutoff - signed_at > timedelta(1):
        state.status = TicketStatus.IN_PROGRESS  # 办理中: signed a while ago, still at work
    return state


class City:
    """Simulates tickets day by day in local wall-clock time and turns them into rows."""

    def __init__(
        self,
        rng: random.Random,
        config: HotlineConfig,
        tree: Tree,
        routes: list[Route],
        model: Model,
        ids: Ids,
        cutoff: datetime,
        tickets: int,
    ) -> None:
        self.rng = rng
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.tree = tree
        self.ids = ids
        self.cutoff = cutoff  # local midnight after `until`: the demo's "now"
        self.routes = routes
        self.hours = cumulative(HOUR_WEIGHTS)
        self.frequent = max(20, tickets // 600)  # 高频来电: a few hundred citizens call often
        self.returning = max(50, tickets // 8)
        self.fresh = 0
        self.salt = rng.getrandbits(32)
        self.due_days: dict[tuple[date, Urgency], int] = {}
        self.handling = Handling(rng, routes, model)
        self.robot = Robot(rng, config, model, ids, cutoff)

    # -- who calls, when, about what
    def _caller(self) -> str:
        """An 11-digit mobile number; some citizens call again and again."""
        x = self.rng.random()
        if x < 0.08:
            k = self.rng.randrange(self.frequent)
        elif x < 0.33:
            k = self.frequent + self.rng.randrange(self.returning)
        else:
            self.fresh += 1
            k = self.frequent + self.returning + self.fresh
        mixed = (k * 0x9E3779B97F4A7C15 + self.salt) % (1 << 64)
        prefix = MOBILE_PREFIXES[mixed % len(MOBILE_PREFIXES)]
        return f"{prefix}{(mixed >> 16) % 10**8:08d}"

    def _accepted_times(self, day: date, count: int) -> list[datetime]:
        """The day's acceptance times by the hour weights, in order (they number the tickets)."""
        times = []
        for _ in range(count):
            hour = bisect(self.hours, self.rng.random() * self.hours[-1])
            seconds = self.rng.randrange(3600)
            times.append(datetime.combine(day, time(hour)) + timedelta(seconds=seconds))
        return sorted(times)

    def _due(self, accepted: datetime, urgency: Urgency) -> datetime:
        """core.deadlines.due_at, cached as whole days per (day, urgency): it keeps the clock."""
        key = (accepted.date(), urgency)
        if key not in self.due_days:
            aware = accepted.replace(tzinfo=self.tz)
            due = due_at(aware, urgency, self.config.deadlines, self.tz)
            self.due_days[key] = (due.replace(tzinfo=None).date() - accepted.date()).days
        return accepted + timedelta(days=self.due_days[key])

    def _pick(self, weights: Sequence[float]) -> int:
        """An index drawn by weights that add up to 1 (the last one if rounding leaves a gap)."""
        x, total = self.rng.random(), 0.0
        for index, weight in enumerate(weights):
            total += weight
            if x < total:
                return index
        return len(weights) - 1

    # -- a whole chunk of days
    def chunk(self, days: list[Day]) -> Chunk:
        """The rows of a run of whole days; numbers are YYMMDD + the day's 5-digit sequence."""
        rows = Chunk()
        for plan in days:
            key = plan.day.strftime("%y%m%d")
            for seq, accepted in enumerate(self._accepted_times(plan.day, plan.tickets), 1):
                category = bisect(plan.categories, self.rng.random() * plan.categories[-1])
                self._ticket(rows, f"{key}{seq:05d}", accepted, CATEGORIES[category], category)
            if plan.tickets:
                rows.sequences.append({"day": key, "last": plan.tickets})
        return rows

    def _urgency(self, category: Category, accepted: datetime) -> Urgency:
        """Mostly daily life; a burst pipe or a cold flat in winter is an emergency more often."""
        winter_heat = category.name == "水电气暖" and accepted.month in (11, 12, 1, 2, 3)
        emergency = category.emergency * (1.5 if winter_heat else 1.0)
        x = self.rng.random()
        if x < emergency:
            return Urgency.EMERGENCY
        return Urgency.COMPLEX if x < emergency + category.complex else Urgency.DAILY_LIFE

    def _ticket(
        self, rows: Chunk, number: str, accepted: datetime, category: Category, index: int
    ) -> None:
        """One ticket's whole life (as far as the cutoff), appended to rows."""
        rng = self.rng
        ticket_id = self.ids.take("tickets")
        kind = self._pick(category.types)
        urgency = self._urgency(category, accepted)
        unit = self.routes[index].draw(rng)
        caller = self._caller()
        due = self._due(accepted, urgency)
        events: list[Event] = [(accepted, EventKind.ACCEPTED, None, "ivr", None)]
        unit, signed = self.handling.dispatch(events, accepted, urgency, unit, index)
        difficulty = category.difficulty + TYPE_DIFFICULTY[kind]
        closed = self.handling.close(events, unit, urgency, signed, due, caller)
        reply = rng.choice(category.replies)
        if closed is not None:
            case = Case(ticket_id, unit, caller, difficulty, events)
            closed = self.robot.call_back(rows, case, closed)
            self.handling.archive(events, closed)
        nearby = unit.children or self.tree.places  # a bureau's ticket is about some place
        place = unit.name if unit.level >= Level.TOWNSHIP else rng.choice(nearby).name
        kept = sorted((e for e in events if e[0] < self.cutoff), key=lambda e: e[0])
        state = _state_at_cutoff(kept, self.cutoff)
        rows.tickets.append(
            {
                "id": ticket_id,
                "number": number,
                "source": SOURCE,
                "external_id": None,
                "caller_number": caller,
                "request_type": REQUEST_TYPES[kind],
                "category": category.name,
                "urgency": urgency,
                "description": rng.choice(category.asks).format(place=place, n=rng.randint(3, 15)),
                "department_id": state.department_id,
                "status": state.status,
                "accepted_at": utc(accepted, self.tz),
                "due_at": utc(due, self.tz),
                "closed_at": utc(state.closed_at, self.tz) if state.closed_at else None,
                "urge_count": state.urges,
                "reply": reply if state.closed_at else None,
            }
        )
        rows.events += [self._event_row(ticket_id, event) for event in kept]

    def _event_row(self, ticket_id: int, event: Event) -> bulk.Row:
        """An event as ticket_events stores it (ids in time order within the ticket)."""
        at, kind, department_id, actor, note = event
        return {
            "id": self.ids.take("ticket_events"),
            "ticket_id": ticket_id,
            "kind": kind,
            "at": utc(at, self.tz),
            "actor": actor,
            "department_id": department_id,
            "note": note,
        }
