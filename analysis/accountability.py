"""谎报瞒报 and 推诿扯皮: evidence about units, one month at a time, for people to review.

Kinds of signal (one row per unit, or unit pair, and kind):

- `contradicted_resolved`: the unit's closes in the month marked 已解决 (closed_as
  resolved) whose valid callback (the first one after that close) says 未解决.
  Total: those closes that got a valid callback; a close nobody was asked about
  neither contradicts nor confirms.
- `repeat_after_close`: of the unit's resolved closes in the month, those followed
  by a new ticket from the same number in the same category within `repeat_days`.
- `bounced`: tickets sent to the unit in the month that left units (returned, or
  re-dispatched away) `bounce_min` times or more, the unit among those letting go.
- `ping_pong`: tickets that went A -> B -> A (one row per A, B), listed.
- `pair_bounce`: unit pairs between which one category moved `bounce_min` times or
  more, listed.

The first three are tested per unit with a one-sided exact binomial test against
its peer group's pooled rate (same `peer_group`, the unit itself left out); a unit
with fewer than `min_n` cases is listed but not tested, and Benjamini-Hochberg
runs over all the run's tests. `hours_lost` is the time from a ticket's first
dispatch to the final unit's signing (to the month's end if it has not signed),
summed over the row's tickets. A flag is a reason to look at the listed tickets
and their recordings, never a penalty by itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scipy.stats import binomtest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from analysis.fdr import bh_adjust
from core.config import AccountabilityConfig
from core.periods import calendar_month
from core.vocabulary import ClosedAs, EventKind
from db.models import Department, Ticket, TicketEvent, ValidCallback

CONTRADICTED = "contradicted_resolved"
REPEAT = "repeat_after_close"
BOUNCED = "bounced"
PING_PONG = "ping_pong"
PAIR_BOUNCE = "pair_bounce"
TESTED_KINDS = (CONTRADICTED, REPEAT, BOUNCED)

SENDS = (EventKind.DISPATCHED, EventKind.REDISPATCHED)
MOVES = (*SENDS, EventKind.RETURNED, EventKind.SIGNED)
NOT_RESOLVED = 2  # the callback's answer to "was it resolved?"
NO_NUMBER = ("", "unknown", "anonymous")


@dataclass(frozen=True)
class SignalRow:
    """One signal, as `db.models.UnitSignal` stores it (without its id and run)."""

    department_id: int
    kind: str
    other_department_id: int | None
    category: str | None
    observed: int
    total: int
    peer_rate: float | None
    p_value: float | None
    q_value: float | None
    flagged: bool
    hours_lost: float | None
    ticket_ids: tuple[int, ...]


@dataclass
class _Tally:
    """What one unit's signal of one kind counted, before any test."""

    observed: int = 0
    total: int = 0
    ticket_ids: set[int] = field(default_factory=set)
    hours_lost: float | None = None


@dataclass(frozen=True)
class _Close:
    """A resolved close, and what a repeat call matches (its ticket's number and category)."""

    ticket_id: int
    unit: int
    at: datetime
    caller_number: str
    category: str | None


@dataclass
class _Journey:
    """One ticket's way between units, up to the month's end."""

    ticket_id: int
    category: str | None
    stops: list[int] = field(default_factory=list)  # the units it was sent to, in order
    sent_at: list[datetime] = field(default_factory=list)
    let_go: list[int] = field(default_factory=list)  # the unit it left, once per departure
    signed: dict[int, datetime] = field(default_factory=dict)  # last stop -> first signing

    def hours_lost(self, month_end: datetime) -> float:
        """First dispatch to the final unit's signing (the month's end while unsigned)."""
        final = self.signed.get(len(self.stops) - 1, month_end)
        return max((final - self.sent_at[0]).total_seconds(), 0.0) / 3600


def unit_signals(
    session: Session, month: str, settings: AccountabilityConfig, tz: ZoneInfo
) -> list[SignalRow]:
    """The month's signals per unit: tested kinds first, flagged first, then the listed."""
    start, end = month_bounds(month, tz)
    closes = _resolved_closes(session, start, end)
    journeys = _journeys(session, start, end)
    tallies = {
        CONTRADICTED: _contradicted(session, closes, start, end),
        REPEAT: _repeats(session, closes, settings.repeat_days, start, end),
        BOUNCED: _bounced(session, journeys, settings.bounce_min, start, end),
    }
    rows = _tested(tallies, _peer_groups(session), settings)
    rows += _ping_pongs(journeys, end)
    rows += _pair_bounces(journeys, settings.bounce_min)
    order = {kind: index for index, kind in enumerate((*TESTED_KINDS, PING_PONG, PAIR_BOUNCE))}
    return sorted(
        rows,
        key=lambda r: (order[r.kind], not r.flagged, r.department_id, r.other_department_id or 0),
    )


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of the local month's first midnight and of the next month's."""
    period = calendar_month(month)
    first = datetime.combine(period.first, time(), tz).astimezone(UTC)
    return first, datetime.combine(period.end, time(), tz).astimezone(UTC)


def _peer_groups(session: Session) -> dict[int, str]:
    return {
        unit: group for unit, group in session.execute(select(Department.id, Department.peer_group))
    }


def _resolved_closes(session: Session, start: datetime, end: datetime) -> list[_Close]:
    """Each close in the month of a ticket marked resolved, with the closing unit."""
    query = (
        select(
            TicketEvent.ticket_id,
            TicketEvent.department_id,
            TicketEvent.at,
            Ticket.caller_number,
            Ticket.category,
        )
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(
            TicketEvent.kind == EventKind.CLOSED,
            TicketEvent.at >= start,
            TicketEvent.at < end,
            TicketEvent.department_id.is_not(None),
            Ticket.closed_as == ClosedAs.RESOLVED,
        )
        .order_by(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.id)
    )
    return [_Close(*row) for row in session.execute(query)]


def _closed_in_month(start: datetime, end: datetime) -> Subquery:
    """The tickets closed in the month, once each, to start the queries below from.

    Joined from here, SQLite reads each ticket's closes through its own index; with
    `IN (…)` it walked every close since the month began (0.10 s to 0.07 s of the
    demo city's first run).
    """
    return (
        select(TicketEvent.ticket_id)
        .where(TicketEvent.kind == EventKind.CLOSED, TicketEvent.at >= start, TicketEvent.at < end)
        .distinct()
        .subquery("closed")
    )


def _contradicted(
    session: Session, closes: list[_Close], start: datetime, end: datetime
) -> dict[int, _Tally]:
    """Per unit: resolved closes with a valid callback, and those it says are not resolved."""
    closed = _closed_in_month(start, end)
    later_closes: dict[int, list[datetime]] = defaultdict(list)
    for ticket_id, at in session.execute(
        select(TicketEvent.ticket_id, TicketEvent.at)
        .select_from(closed)
        .join(TicketEvent, TicketEvent.ticket_id == closed.c.ticket_id)
        .where(TicketEvent.kind == EventKind.CLOSED, TicketEvent.at >= start)
    ):
        later_closes[ticket_id].append(at)
    callbacks: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for ticket_id, surveyed_at, resolved in session.execute(
        select(ValidCallback.ticket_id, ValidCallback.surveyed_at, ValidCallback.resolved)
        .select_from(closed)
        .join(ValidCallback, ValidCallback.ticket_id == closed.c.ticket_id)
        .where(ValidCallback.surveyed_at >= start)
        .order_by(ValidCallback.surveyed_at, ValidCallback.id)
    ):
        callbacks[ticket_id].append((surveyed_at, resolved))
    tallies: dict[int, _Tally] = defaultdict(_Tally)
    for close in closes:
        next_close = min(
            (at for at in later_closes[close.ticket_id] if at > close.at), default=None
        )
        answer = next(
            (
                resolved
                for surveyed_at, resolved in callbacks[close.ticket_id]
                if surveyed_at >= close.at and (next_close is None or surveyed_at < next_close)
            ),
            None,
        )
        if answer is None:
            continue
        tally = tallies[close.unit]
        tally.total += 1
        if answer == NOT_RESOLVED:
            tally.observed += 1
            tally.ticket_ids.add(close.ticket_id)
    return tallies


def _repeats(
    session: Session,
    closes: list[_Close],
    repeat_days: int,
    start: datetime,
    end: datetime,
) -> dict[int, _Tally]:
    """Per unit: resolved closes, and those the same number called again about within the days."""
    # the tickets accepted from the month's start to the last window's end, by their
    # accepted_at index, matched here on number and category: as a self-join of
    # `tickets`, PostgreSQL hashed the whole table (0.17 s on the demo city)
    window = timedelta(days=repeat_days)
    asked = {
        (close.caller_number, close.category)
        for close in closes
        if close.caller_number not in NO_NUMBER and close.category is not None
    }
    calls: dict[tuple[str, str | None], list[tuple[int, datetime]]] = defaultdict(list)
    for ticket_id, number, category, accepted_at in session.execute(
        select(Ticket.id, Ticket.caller_number, Ticket.category, Ticket.accepted_at).where(
            Ticket.accepted_at >= start, Ticket.accepted_at < end + window
        )
    ):
        if (number, category) in asked:
            calls[(number, category)].append((ticket_id, accepted_at))
    tallies: dict[int, _Tally] = defaultdict(_Tally)
    for close in closes:
        tally = tallies[close.unit]
        tally.total += 1
        repeats = [
            ticket
            for ticket, at in calls.get((close.caller_number, close.category), ())
            if ticket != close.ticket_id and close.at < at <= close.at + window
        ]
        if repeats:
            tally.observed += 1
            tally.ticket_ids.update([close.ticket_id, *repeats])
    return tallies


def _journeys(session: Session, start: datetime, end: datetime) -> list[_Journey]:
    """The ways of the tickets returned or re-dispatched in the month, up to its end."""
    # the moved tickets first, then each one's events by its own index: with `IN (moved)`
    # SQLite walked every move of every month before the end (0.3 s on the demo city)
    moved = (
        select(TicketEvent.ticket_id)
        .where(
            TicketEvent.kind.in_((EventKind.RETURNED, EventKind.REDISPATCHED)),
            TicketEvent.at >= start,
            TicketEvent.at < end,
        )
        .distinct()
        .subquery("moved")
    )
    query = (
        select(
            Ticket.id, Ticket.category, TicketEvent.kind, TicketEvent.department_id, TicketEvent.at
        )
        .select_from(moved)
        .join(TicketEvent, TicketEvent.ticket_id == moved.c.ticket_id)
        .join(Ticket, Ticket.id == moved.c.ticket_id)
        .where(TicketEvent.kind.in_(MOVES), TicketEvent.at < end)
        .order_by(Ticket.id, TicketEvent.at, TicketEvent.id)
    )
    journeys: dict[int, _Journey] = {}
    for ticket_id, category, kind, unit, at in session.execute(query):
        journey = journeys.setdefault(ticket_id, _Journey(ticket_id, category))
        _step(journey, kind, unit, at)
    return [journey for journey in journeys.values() if journey.stops]


def _step(journey: _Journey, kind: EventKind, unit: int | None, at: datetime) -> None:
    """One event of a journey: a send (after a departure, or taking it away), a return, a sign."""
    if unit is None:
        return
    last = len(journey.stops) - 1
    if kind in SENDS:
        # a re-dispatch of a ticket nobody returned takes it away: that is a departure too
        if kind == EventKind.REDISPATCHED and last >= 0 and not _left(journey):
            journey.let_go.append(journey.stops[last])
        journey.stops.append(unit)
        journey.sent_at.append(at)
    elif kind == EventKind.RETURNED and last >= 0 and not _left(journey):
        journey.let_go.append(journey.stops[last])
    elif kind == EventKind.SIGNED and last >= 0 and unit == journey.stops[last]:
        journey.signed.setdefault(last, at)


def _left(journey: _Journey) -> bool:
    """Whether the current stop has already let the ticket go (returned it)."""
    return len(journey.let_go) >= len(journey.stops)


def _bounced(
    session: Session, journeys: list[_Journey], bounce_min: int, start: datetime, end: datetime
) -> dict[int, _Tally]:
    """Per unit: tickets sent to it in the month, and the bounced ones among them it let go."""
    tallies: dict[int, _Tally] = defaultdict(_Tally)
    sent = (
        select(TicketEvent.department_id, func.count(func.distinct(TicketEvent.ticket_id)))
        .where(
            TicketEvent.kind.in_(SENDS),
            TicketEvent.at >= start,
            TicketEvent.at < end,
            TicketEvent.department_id.is_not(None),
        )
        .group_by(TicketEvent.department_id)
    )
    for unit, count in session.execute(sent):
        tallies[unit].total = int(count)
    for journey in journeys:
        if len(journey.let_go) < bounce_min:
            continue
        received = {
            unit for unit, at in zip(journey.stops, journey.sent_at, strict=True) if at >= start
        }
        for unit in received & set(journey.let_go):
            tally = tallies[unit]
            tally.observed += 1
            tally.ticket_ids.add(journey.ticket_id)
            tally.hours_lost = (tally.hours_lost or 0.0) + journey.hours_lost(end)
    return tallies


def _ping_pongs(journeys: list[_Journey], end: datetime) -> list[SignalRow]:
    """A -> B -> A: one row per (A, B), A the unit it came back to."""
    pairs: dict[tuple[int, int], _Tally] = defaultdict(_Tally)
    for journey in journeys:
        stops = journey.stops
        seen = {
            (stops[i], stops[i + 1])
            for i in range(len(stops) - 2)
            if stops[i] == stops[i + 2] != stops[i + 1]
        }
        for pair in seen:
            tally = pairs[pair]
            tally.observed += 1
            tally.ticket_ids.add(journey.ticket_id)
            tally.hours_lost = (tally.hours_lost or 0.0) + journey.hours_lost(end)
    return [
        _listed(PING_PONG, unit, other, None, tally, total=tally.observed)
        for (unit, other), tally in pairs.items()
    ]


def _pair_bounces(journeys: list[_Journey], bounce_min: int) -> list[SignalRow]:
    """Unit pairs one category moved between `bounce_min` times or more (either way)."""
    pairs: dict[tuple[int, int, str], _Tally] = defaultdict(_Tally)
    moved_per_category: dict[str, int] = defaultdict(int)
    for journey in journeys:
        if journey.category is None:
            continue
        moved_per_category[journey.category] += 1
        for here, there in zip(journey.stops, journey.stops[1:], strict=False):
            if here == there:
                continue
            tally = pairs[(min(here, there), max(here, there), journey.category)]
            tally.observed += 1
            tally.ticket_ids.add(journey.ticket_id)
    return [
        _listed(PAIR_BOUNCE, unit, other, category, tally, total=moved_per_category[category])
        for (unit, other, category), tally in pairs.items()
        if tally.observed >= bounce_min
    ]


def _listed(
    kind: str, unit: int, other: int | None, category: str | None, tally: _Tally, total: int
) -> SignalRow:
    return SignalRow(
        department_id=unit,
        kind=kind,
        other_department_id=other,
        category=category,
        observed=tally.observed,
        total=total,
        peer_rate=None,
        p_value=None,
        q_value=None,
        flagged=False,
        hours_lost=tally.hours_lost,
        ticket_ids=tuple(sorted(tally.ticket_ids)),
    )


@dataclass(frozen=True)
class _Test:
    kind: str
    unit: int
    tally: _Tally
    peer_rate: float | None
    p_value: float | None


def _tested(
    tallies: dict[str, dict[int, _Tally]],
    peer_groups: dict[int, str],
    settings: AccountabilityConfig,
) -> list[SignalRow]:
    """Each unit with cases against its peers' pooled rate; BH over every test of the run."""
    tests = [
        test
        for kind, per_unit in tallies.items()
        for test in _against_peers(kind, per_unit, peer_groups, settings.min_n)
    ]
    p_values = [t.p_value for t in tests if t.p_value is not None]
    q_values = iter(bh_adjust(p_values))
    rows = []
    for test in tests:
        q_value = next(q_values) if test.p_value is not None else None
        rows.append(
            SignalRow(
                department_id=test.unit,
                kind=test.kind,
                other_department_id=None,
                category=None,
                observed=test.tally.observed,
                total=test.tally.total,
                peer_rate=test.peer_rate,
                p_value=test.p_value,
                q_value=q_value,
                flagged=q_value is not None and q_value <= settings.fdr_q,
                hours_lost=test.tally.hours_lost,
                ticket_ids=tuple(sorted(test.tally.ticket_ids)),
            )
        )
    return rows


def _against_peers(
    kind: str, per_unit: dict[int, _Tally], peer_groups: dict[int, str], min_n: int
) -> Iterable[_Test]:
    group_sums: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for unit, tally in per_unit.items():
        observed, total = group_sums[peer_groups.get(unit, "")]
        group_sums[peer_groups.get(unit, "")] = (observed + tally.observed, total + tally.total)
    for unit, tally in sorted(per_unit.items()):
        if tally.total == 0:
            continue
        group_observed, group_total = group_sums[peer_groups.get(unit, "")]
        peers_total = group_total - tally.total
        peer_rate = (group_observed - tally.observed) / peers_total if peers_total else None
        p_value = None
        if peer_rate is not None and tally.total >= min_n:
            p_value = _binomial_p(tally.observed, tally.total, peer_rate)
        yield _Test(kind, unit, tally, peer_rate, p_value)


def _binomial_p(observed: int, total: int, rate: float) -> float:
    """One-sided exact binomial: as many or more cases than the peers' rate would give."""
    return float(binomtest(observed, total, rate, alternative="greater").pvalue)
