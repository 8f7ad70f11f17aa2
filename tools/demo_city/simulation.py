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
from core.vocabulary import ClosedAs, EventKind, Level, RequestType, TicketStatus, Urgency
from db import bulk
from tickets.area import TEXT, UNIT, UNKNOWN, TreeIndex, TreeUnit
from tools.demo_city.calibration import Model
from tools.demo_city.callbacks import Case, Robot
from tools.demo_city.data import (
    CATEGORIES,
    HOUR_WEIGHTS,
    MOBILE_PREFIXES,
    REQUEST_TYPES,
    TYPE_DIFFICULTY,
    Category,
    SubTopic,
)
from tools.demo_city.draws import cumulative
from tools.demo_city.handling import Handling
from tools.demo_city.planted import Surge
from tools.demo_city.rows import SOURCE, Chunk, Event, Ids, utc
from tools.demo_city.speech import say
from tools.demo_city.tree import Route, Tree, Unit
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
        surges: list[Surge] | None = None,
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
        self.areas = TreeIndex.of_units([_tree_unit(unit) for unit in tree.units])
        self.surges = surges or []
        # the over-claiming unit's closes marked 已解决 with a survey, and those it contradicts
        self.overclaims = [0, 0]

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
            planted = self._planted(plan)
            for seq, accepted in enumerate(self._accepted_times(plan.day, plan.tickets), 1):
                category = bisect(plan.categories, self.rng.random() * plan.categories[-1])
                surge = planted.get(seq)
                if surge is not None:
                    category = surge.category
                number = f"{key}{seq:05d}"
                self._ticket(rows, number, accepted, CATEGORIES[category], category, surge)
            if plan.tickets:
                rows.sequences.append({"day": key, "last": plan.tickets})
        return rows

    def _planted(self, plan: Day) -> dict[int, Surge]:
        """Which of the day's tickets (by sequence) a planted surge takes over."""
        wanted = [s for s in self.surges for _ in range(s.extra.get(plan.day, 0))]
        if not wanted:
            return {}
        slots = self.rng.sample(range(1, plan.tickets + 1), min(len(wanted), plan.tickets))
        return dict(zip(slots, wanted, strict=False))

    def _urgency(self, category: Category, accepted: datetime) -> Urgency:
        """Mostly daily life; a burst pipe or a cold flat in winter is an emergency more often."""
        winter_heat = category.name == "水电气暖" and accepted.month in (11, 12, 1, 2, 3)
        emergency = category.emergency * (1.5 if winter_heat else 1.0)
        x = self.rng.random()
        if x < emergency:
            return Urgency.EMERGENCY
        return Urgency.COMPLEX if x < emergency + category.complex else Urgency.DAILY_LIFE

    def _ticket(
        self,
        rows: Chunk,
        number: str,
        accepted: datetime,
        category: Category,
        index: int,
        surge: Surge | None = None,
    ) -> None:
        """One ticket's whole life (as far as the cutoff), appended to rows."""
        rng = self.rng
        ticket_id = self.ids.take("tickets")
        kind = self._pick(category.types)
        urgency = self._urgency(category, accepted)
        unit = self.routes[index].draw(rng) if surge is None else self._surge_unit(surge)
        caller = self._caller()
        due = self._due(accepted, urgency)
        events: list[Event] = [(accepted, EventKind.ACCEPTED, None, "ivr", None)]
        unit, signed = self.handling.dispatch(events, accepted, urgency, unit, index)
        difficulty = category.difficulty + TYPE_DIFFICULTY[kind]
        closed = self.handling.close(events, unit, urgency, signed, due, caller)
        reply = rng.choice(category.replies)
        ended = None
        if closed is not None:
            case = Case(ticket_id, unit, caller, difficulty, events)
            closed = self.robot.call_back(rows, case, closed)
            ended = self._closed_as(unit, REQUEST_TYPES[kind], self.robot.resolved)
            self.handling.archive(events, closed)
        description = self._description(category, unit, surge)
        kept = sorted((e for e in events if e[0] < self.cutoff), key=lambda e: e[0])
        state = _state_at_cutoff(kept, self.cutoff)
        area_id, area_source = self._area(state.department_id, description)
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
                "description": description,
                "department_id": state.department_id,
                "status": state.status,
                "accepted_at": utc(accepted, self.tz),
                "due_at": utc(due, self.tz),
                "closed_at": utc(state.closed_at, self.tz) if state.closed_at else None,
                "urge_count": state.urges,
                "reply": reply if state.closed_at else None,
                "closed_as": ended if state.closed_at else None,
                "area_id": area_id,
                "area_source": area_source,
                "category_source": "staff",  # the agents filed the demo's requests
                "category_confidence": None,
            }
        )
        rows.events += [self._event_row(ticket_id, event) for event in kept]

    def _surge_unit(self, surge: Surge) -> Unit:
        """Who handles a planted ticket: the category's first bureau, or a unit of the place."""
        category = CATEGORIES[surge.category]
        if self.rng.random() < category.bureau_share:
            return self.tree.bureaus[category.bureaus[0][0]]
        return self.rng.choice(surge.places)

    def _description(self, category: Category, unit: Unit, surge: Surge | None) -> str:
        """What the citizen said: a sub-topic's phrasing about the place, maybe noisy."""
        rng = self.rng
        n = rng.randint(3, 15)
        if surge is not None:
            topic = next(t for t in category.asks if t.name == surge.topic)
            named = SubTopic(topic.name, tuple(p for p in topic.phrasings if "{place}" in p))
            place = unit.name if unit.level >= Level.TOWNSHIP else surge.place_text(rng)
            return say(rng, named, place, n)
        if unit.level >= Level.TOWNSHIP:
            place = unit.name
        elif unit.children:  # a district office: one of its streets
            place = rng.choice(unit.children).name
        else:  # a bureau's ticket is about some place: its township, maybe with the community
            somewhere = rng.choice(self.tree.places)
            place = somewhere.name
            if somewhere.level == Level.VILLAGE and somewhere.parent is not None:
                place = f"{somewhere.parent.name}{somewhere.name}"
        return say(rng, rng.choice(category.asks), place, n)

    def _area(self, department_id: int | None, description: str) -> tuple[int | None, str]:
        """Where the problem is, by the rules `tickets.area` applies to the store."""
        area = self.areas.area_of(department_id)
        if area is not None:
            return area, UNIT
        area = self.areas.place_in(description)
        return (area, TEXT) if area is not None else (None, UNKNOWN)

    def _closed_as(self, unit: Unit, kind: RequestType, resolved: int | None) -> ClosedAs:
        """How the unit marks the close: mostly what the citizen will say, bar the over-claimer.

        Units mark 已解决 when the survey agrees, 已解释 or 无法解决 mostly when it
        does not (a consultation is often 已解释); the over-claimer marks nearly
        everything 已解决.
        """
        x = self.rng.random()
        if unit is self.tree.overclaimer:
            ended = ClosedAs.RESOLVED if x < 0.95 else ClosedAs.EXPLAINED
            if ended == ClosedAs.RESOLVED and resolved is not None:
                self.overclaims[0] += 1
                self.overclaims[1] += resolved == 2
            return ended
        consultation = kind == RequestType.CONSULTATION
        if resolved == 2:
            shares = (0.2, 0.5)  # resolved, explained; the rest unresolvable
        elif resolved == 1:
            shares = (0.55, 0.45) if consultation else (0.92, 0.08)
        else:
            shares = (0.5, 0.45) if consultation else (0.85, 0.1)
        if x < shares[0]:
            return ClosedAs.RESOLVED
        return ClosedAs.EXPLAINED if x < shares[0] + shares[1] else ClosedAs.UNRESOLVABLE

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


def _tree_unit(unit: Unit) -> TreeUnit:
    parent = unit.parent.id if unit.parent else None
    return TreeUnit(unit.id, unit.code, unit.name, int(unit.level), parent, unit.peer_group)
