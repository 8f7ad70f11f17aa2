"""谎报瞒报 / 推诿扯皮 signals on hand-built months (SQLite and PostgreSQL).

The month is October 2025 in Beijing time: 2025-09-30 16:00 UTC up to
2025-10-31 16:00 UTC. Four street offices share the peer group "street".
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from analysis.accountability import SignalRow, month_bounds, unit_signals
from core.config import AccountabilityConfig
from core.vocabulary import ClosedAs, EventKind, Level, TicketStatus
from db.departments import create_department
from db.models import Department, Ticket, ValidCallback
from db.session import unit_of_work
from db.tickets import add_event, create_ticket

TZ = ZoneInfo("Asia/Shanghai")
MONTH = "2025-10"
SETTINGS = AccountabilityConfig()
_numbers = itertools.count(13900000000)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---- a small city and its tickets, made with the ORM ---------------------------------


def build_units(session: Session) -> dict[str, Department]:
    """District D1 with four street offices A, B, C, P in one peer group."""
    district = create_department(session, "D1", "一区", Level.DISTRICT, None, "district")
    units = {"D1": district}
    for code in "ABCP":
        units[code] = create_department(
            session, code, f"{code}街道", Level.TOWNSHIP, district, "street"
        )
    return units


def new_ticket(
    session: Session,
    accepted: datetime,
    category: str | None = "噪音扰民",
    caller: str | None = None,
) -> Ticket:
    return create_ticket(
        session,
        caller_number=caller or str(next(_numbers)),
        local_day=accepted.astimezone(TZ).date(),
        accepted_at=accepted,
        category=category,
        source="test",
    )


def close_resolved(
    session: Session,
    unit: Department,
    at: datetime,
    callback_says: int | None,
    caller: str | None = None,
    category: str | None = "噪音扰民",
) -> Ticket:
    """A ticket the unit closed as 已解决 at `at`; the callback two days later says 1 or 2."""
    ticket = new_ticket(session, at - timedelta(days=2), category, caller)
    add_event(
        session, ticket, EventKind.DISPATCHED, at=at - timedelta(days=2), department_id=unit.id
    )
    ticket.department_id, ticket.status = unit.id, TicketStatus.CLOSED
    ticket.closed_at, ticket.closed_as = at, ClosedAs.RESOLVED
    add_event(session, ticket, EventKind.CLOSED, at=at, department_id=unit.id)
    if callback_says is not None:
        session.add(
            ValidCallback(
                ticket_id=ticket.id,
                department_id=unit.id,
                surveyed_at=at + timedelta(days=2),
                contacted=1,
                resolved=callback_says,
                satisfaction=1,
            )
        )
    session.flush()
    return ticket


def closes(session: Session, unit: Department, contradicted: int, of: int) -> list[Ticket]:
    """`of` resolved closes spread over October, the first `contradicted` called unresolved."""
    return [
        close_resolved(session, unit, utc(2025, 10, 3 + i % 20, 2, i), 2 if i < contradicted else 1)
        for i in range(of)
    ]


def move(session: Session, ticket: Ticket, kind: EventKind, unit: Department, at: datetime) -> None:
    add_event(session, ticket, kind, at=at, department_id=unit.id)


def of_kind(rows: list[SignalRow], kind: str) -> dict[int, SignalRow]:
    return {row.department_id: row for row in rows if row.kind == kind}


# ---- 谎报瞒报 -----------------------------------------------------------------------------


def test_only_the_unit_whose_resolved_citizens_contradict_is_flagged(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        units = build_units(session)
        closes(session, units["A"], 20, 50)
        closes(session, units["B"], 3, 5)
        closes(session, units["C"], 6, 50)
        closes(session, units["P"], 5, 50)  # the peers' usual 10 %
        # not counted: a close with no valid callback, and one closed just after the month
        close_resolved(session, units["A"], utc(2025, 10, 20, 3), None)
        close_resolved(session, units["A"], utc(2025, 10, 31, 16, 30), 2)
        ids = {code: unit.id for code, unit in units.items()}

    with store() as session:
        rows = unit_signals(session, MONTH, SETTINGS, TZ)
    contradicted = of_kind(rows, "contradicted_resolved")

    a, b, c = contradicted[ids["A"]], contradicted[ids["B"]], contradicted[ids["C"]]
    assert (a.observed, a.total) == (20, 50)
    assert a.flagged and a.q_value is not None and a.q_value <= SETTINGS.fdr_q
    assert a.peer_rate == pytest.approx((3 + 6 + 5) / (5 + 50 + 50))
    assert len(a.ticket_ids) == 20
    # B: under min_n, listed with its evidence but not tested
    assert (b.observed, b.total, b.p_value, b.flagged) == (3, 5, None, False)
    assert len(b.ticket_ids) == 3
    assert (c.observed, c.total) == (6, 50) and c.p_value is not None and not c.flagged
    assert [row.department_id for row in rows if row.flagged] == [ids["A"]]


def test_a_repeat_call_within_the_days_counts_and_one_after_does_not(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        units = build_units(session)
        closed_at = utc(2025, 10, 5, 2)
        first = close_resolved(session, units["A"], closed_at, 1, caller="13811110001")
        again = new_ticket(session, closed_at + timedelta(days=29), caller="13811110001")
        late = close_resolved(session, units["A"], closed_at, 1, caller="13811110002")
        new_ticket(session, closed_at + timedelta(days=31), caller="13811110002")
        other = close_resolved(session, units["A"], closed_at, 1, caller="13811110003")
        new_ticket(session, closed_at + timedelta(days=3), "占道经营", caller="13811110003")
        unit_a, expected = units["A"].id, {first.id, again.id}
        assert late.id not in expected and other.id not in expected

    with store() as session:
        rows = unit_signals(session, MONTH, SETTINGS, TZ)
    repeat = of_kind(rows, "repeat_after_close")[unit_a]
    assert (repeat.observed, repeat.total) == (1, 3)
    assert set(repeat.ticket_ids) == expected
    assert repeat.p_value is None  # 3 closes: under min_n


def test_no_number_or_no_category_makes_no_repeat_and_each_close_has_its_own_window(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        units = build_units(session)
        closed_at = utc(2025, 10, 5, 2)
        for number in ("unknown", "anonymous"):  # the same "number", not the same citizen
            close_resolved(session, units["A"], closed_at, 1, caller=number)
            new_ticket(session, closed_at + timedelta(days=3), caller=number)
        close_resolved(session, units["A"], closed_at, 1, caller="13811110004", category=None)
        new_ticket(session, closed_at + timedelta(days=3), None, caller="13811110004")
        # one citizen, one category, twice: the second ticket repeats the first close;
        # nothing came after the second close (the first ticket was accepted before it)
        first = close_resolved(session, units["A"], closed_at, 1, caller="13811110005")
        second = close_resolved(
            session, units["A"], closed_at + timedelta(days=10), 1, caller="13811110005"
        )
        unit_a, expected = units["A"].id, {first.id, second.id}

    with store() as session:
        rows = unit_signals(session, MONTH, SETTINGS, TZ)
    repeat = of_kind(rows, "repeat_after_close")[unit_a]
    assert (repeat.observed, repeat.total) == (1, 5)
    assert set(repeat.ticket_ids) == expected


# ---- 推诿扯皮 -----------------------------------------------------------------------------


def test_an_a_b_a_ticket_is_listed_as_ping_pong_with_the_hours_lost(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        units = build_units(session)
        a, b = units["A"], units["B"]
        start = utc(2025, 10, 2, 0)
        ping = new_ticket(session, start)
        move(session, ping, EventKind.DISPATCHED, a, start)
        move(session, ping, EventKind.RETURNED, a, start + timedelta(hours=4))
        move(session, ping, EventKind.REDISPATCHED, b, start + timedelta(hours=6))
        move(session, ping, EventKind.SIGNED, b, start + timedelta(hours=7))
        move(session, ping, EventKind.RETURNED, b, start + timedelta(hours=24))
        move(session, ping, EventKind.REDISPATCHED, a, start + timedelta(hours=26))
        move(session, ping, EventKind.SIGNED, a, start + timedelta(hours=50))
        # once returned and sent on: not bounced, no ping-pong
        once = new_ticket(session, start)
        move(session, once, EventKind.DISPATCHED, units["C"], start)
        move(session, once, EventKind.RETURNED, units["C"], start + timedelta(hours=1))
        move(session, once, EventKind.REDISPATCHED, b, start + timedelta(hours=2))
        # a second A <-> B ticket of the same category, taken away without a return
        away = new_ticket(session, start)
        move(session, away, EventKind.DISPATCHED, b, start)
        move(session, away, EventKind.REDISPATCHED, a, start + timedelta(hours=3))
        ids = {code: unit.id for code, unit in units.items()}
        ping_id, once_id, away_id = ping.id, once.id, away.id

    with store() as session:
        rows = unit_signals(session, MONTH, SETTINGS, TZ)

    ping_pong = [row for row in rows if row.kind == "ping_pong"]
    assert len(ping_pong) == 1
    row = ping_pong[0]
    assert (row.department_id, row.other_department_id) == (ids["A"], ids["B"])
    assert row.ticket_ids == (ping_id,)
    assert row.hours_lost == pytest.approx(50.0)  # first dispatch to A's final signing

    bounced = of_kind(rows, "bounced")
    assert bounced[ids["A"]].ticket_ids == (ping_id,)
    assert bounced[ids["A"]].hours_lost == pytest.approx(50.0)
    assert bounced[ids["B"]].ticket_ids == (ping_id,)
    assert bounced[ids["A"]].total == 2  # ping, and away sent to it in October
    assert once_id not in bounced[ids["C"]].ticket_ids

    pairs = [row for row in rows if row.kind == "pair_bounce"]
    assert len(pairs) == 1
    pair = pairs[0]
    assert {pair.department_id, pair.other_department_id} == {ids["A"], ids["B"]}
    assert pair.category == "噪音扰民"
    assert set(pair.ticket_ids) == {ping_id, away_id} and pair.observed == 3


def test_the_month_is_the_local_calendar_month() -> None:
    assert month_bounds(MONTH, TZ) == (utc(2025, 9, 30, 16), utc(2025, 10, 31, 16))
