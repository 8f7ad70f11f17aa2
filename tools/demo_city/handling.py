"""A demo ticket's handling: dispatch (双派单), returns, signing, closing, archiving.

Weak units return more tickets (退单, some of them improperly), sign later,
close late more often and leave more tickets open for good, with the
citizen's urges and the supervisor's 督办; all but emergencies are handled
in office hours. The events are recorded as db.workflow would have.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, time, timedelta

from core.vocabulary import EventKind, Urgency
from tools.demo_city.calibration import PROPER_RETURN, Model, return_probability, stuck_factor
from tools.demo_city.draws import minutes
from tools.demo_city.rows import Event
from tools.demo_city.tree import Route, Unit


def office(rng: random.Random, at: datetime) -> datetime:
    """Moved into office hours (8:00-20:00) if it fell at night."""
    if at.hour < 8:
        return at.replace(hour=8, minute=rng.randrange(60))
    if at.hour >= 20:
        return (at + timedelta(days=1)).replace(hour=8, minute=rng.randrange(60))
    return at


class Handling:
    """Draws a ticket's handling events from the city's random stream."""

    def __init__(self, rng: random.Random, routes: list[Route], model: Model) -> None:
        self.rng = rng
        self.routes = routes  # per category: where a proper return sends the ticket
        self.model = model

    def _send(self, events: list[Event], at: datetime, unit: Unit, kind: EventKind) -> None:
        """派单 with its copy to the level above (双派单), as db.workflow records it."""
        events.append((at, kind, unit.id, "dispatcher", None))
        if unit.parent is not None:
            note = f"oversees {unit.code} (双派单)"
            events.append((at, EventKind.DISPATCHED_ABOVE, unit.parent.id, "dispatcher", note))

    def dispatch(
        self, events: list[Event], accepted: datetime, urgency: Urgency, unit: Unit, index: int
    ) -> tuple[Unit, datetime]:
        """Dispatch (maybe a return and a re-dispatch) and signing; the final unit and sign time."""
        rng = self.rng
        urgent = urgency == Urgency.EMERGENCY
        at = accepted + minutes(rng, 8 if urgent else 30, 0.9)
        if not urgent:
            at = office(rng, at)
        self._send(events, at, unit, EventKind.DISPATCHED)
        if rng.random() < return_probability(unit):
            at = office(rng, at + minutes(rng, 150, 0.8))
            proper = rng.random() < PROPER_RETURN
            final = self.routes[index].draw(rng) if proper else unit
            if final is unit and proper:
                final = unit.parent or unit  # nobody else fits: the level above takes it
            reason = f"非本单位职责范围，建议改派{final.name}" if proper else "不属于本单位管辖"
            events.append((at, EventKind.RETURNED, unit.id, unit.code, reason))
            at = at + minutes(rng, 60, 0.7)
            if not proper:
                note = "improper return (退单不当)"
                events.append((at, EventKind.RETURN_REJECTED, unit.id, "supervisor", note))
            self._send(events, at, final, EventKind.REDISPATCHED)
            unit = final
        slow = math.exp(-0.5 * unit.quality)
        signed = at + minutes(rng, (15 if urgent else 90) * slow, 1.0)
        signed = signed if urgent else office(rng, signed)
        events.append((signed, EventKind.SIGNED, unit.id, unit.code, None))
        return unit, signed

    def close(
        self,
        events: list[Event],
        unit: Unit,
        urgency: Urgency,
        signed: datetime,
        due: datetime,
        caller: str,
    ) -> datetime | None:
        """办结 (on time mostly, late sometimes), with urges; None for a ticket that stays open."""
        rng = self.rng
        if rng.random() < self.model.stuck * stuck_factor(unit, urgency):
            for _ in range(rng.randint(1, 3)):
                at = office(rng, signed + timedelta(days=rng.uniform(1, 60)))
                events.append((at, EventKind.URGED, None, caller, "市民来电催办"))
            supervise = max(due, signed) + timedelta(hours=rng.uniform(2, 30))
            events.append(
                (office(rng, supervise), EventKind.SUPERVISED, unit.id, "supervisor", "超期督办")
            )
            return None
        window = max(due - signed, timedelta(hours=2))
        late = rng.random() < min(0.5, 0.035 * math.exp(-1.0 * unit.quality))
        if late:
            closed = max(due, signed) + timedelta(hours=rng.expovariate(1 / 18))
        else:
            closed = signed + window * rng.betavariate(1.6, 2.4)
            closed = max(closed, signed + timedelta(minutes=10))
        if closed.hour >= 21 or closed.hour < 7:  # close in the evening rather than at night
            evening = closed.replace(hour=rng.randint(17, 20))
            if closed.hour < 7:
                evening -= timedelta(days=1)
            closed = evening if evening > signed else closed
        if rng.random() < (0.35 if late else 0.03):
            for _ in range(1 + (rng.random() < 0.3)):
                at = signed + (closed - signed) * rng.random()
                events.append((at, EventKind.URGED, None, caller, "市民来电催办"))
        if late and rng.random() < 0.5 and due + timedelta(hours=2) < closed:
            events.append(
                (due + timedelta(hours=2), EventKind.SUPERVISED, unit.id, "supervisor", "超期督办")
            )
        events.append((closed, EventKind.CLOSED, unit.id, unit.code, None))
        return closed

    def archive(self, events: list[Event], closed: datetime) -> None:
        """Closed tickets are archived in a nightly batch about a month later."""
        if self.rng.random() < 0.9:
            at = datetime.combine(closed.date() + timedelta(days=self.rng.randint(25, 45)), time(2))
            events.append((at, EventKind.ARCHIVED, None, "system", None))
