"""When and whom the robot calls: windows in local time, eligibility, cap and pace."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callback_robot.attempts import create_attempt, finish_attempt
from callback_robot.claim import claim_due
from callback_robot.dispatcher import Dispatcher
from callback_robot.eligibility import DueRules, due_tickets
from callback_robot.windows import in_call_window, next_window_start
from core.config import CallWindow, RobotConfig, load_config
from core.deadlines import is_working_day
from core.vocabulary import AttemptOutcome, TicketStatus, Urgency
from db.migrate import upgrade
from db.models import CallbackAttempt, DoNotCall
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket
from tests.support.config import write_config

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROBOT = RobotConfig()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_windows_are_local_time_not_utc() -> None:
    assert in_call_window(datetime(2026, 11, 25, 2, 0, tzinfo=UTC), ROBOT, SHANGHAI)  # 10:00
    assert not in_call_window(datetime(2026, 11, 25, 13, 0, tzinfo=UTC), ROBOT, SHANGHAI)  # 21:00
    assert in_call_window(local(2026, 11, 25, 14, 0), ROBOT, SHANGHAI)
    assert not in_call_window(local(2026, 11, 25, 13, 59), ROBOT, SHANGHAI)
    assert not in_call_window(local(2026, 11, 25, 20, 0), ROBOT, SHANGHAI)


def test_working_days_only_follows_the_adjusted_calendar() -> None:
    robot = RobotConfig(working_days_only=True)
    assert not in_call_window(local(2025, 10, 3, 10, 0), robot, SHANGHAI)  # National Day
    assert in_call_window(local(2025, 9, 28, 10, 0), robot, SHANGHAI)  # a working Sunday
    assert next_window_start(local(2025, 10, 3, 10, 0), robot, SHANGHAI) == local(2025, 10, 9, 9, 0)


def test_next_window_start() -> None:
    assert next_window_start(local(2026, 11, 25, 12, 30), ROBOT, SHANGHAI) == local(
        2026, 11, 25, 14, 0
    )
    assert next_window_start(local(2026, 11, 25, 20, 30), ROBOT, SHANGHAI) == local(
        2026, 11, 26, 9, 0
    )
    now = local(2026, 11, 25, 9, 30)
    assert next_window_start(now, ROBOT, SHANGHAI) == now


windows = st.lists(
    st.tuples(st.integers(0, 23 * 60), st.integers(1, 180)).map(
        lambda w: CallWindow(
            start=time(w[0] // 60, w[0] % 60),
            end=time(
                min(23, (w[0] + w[1]) // 60), (w[0] + w[1]) % 60 if (w[0] + w[1]) < 24 * 60 else 59
            ),
        )
    ),
    min_size=1,
    max_size=3,
)
moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(moments, windows, st.booleans())
def test_window_decision_matches_a_brute_force_reading(
    now: datetime, spans: list[CallWindow], working: bool
) -> None:
    robot = RobotConfig(call_windows=spans, working_days_only=working)
    clock = now.astimezone(SHANGHAI)
    expected = (not working or is_working_day(clock.date())) and any(
        w.start <= clock.time().replace(tzinfo=None) < w.end for w in spans
    )
    assert in_call_window(now, robot, SHANGHAI) == expected
    start = next_window_start(now, robot, SHANGHAI)
    if start is not None:
        assert start >= now and in_call_window(start, robot, SHANGHAI)


def make_closed(session, caller: str, closed: datetime, urgency: Urgency = Urgency.DAILY_LIFE):  # type: ignore[no-untyped-def]
    ticket = create_ticket(
        session,
        caller_number=caller,
        local_day=date(2026, 11, 1),
        accepted_at=closed - timedelta(days=2),
        urgency=urgency,
    )
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = closed
    session.flush()
    return ticket.id


def test_due_tickets_by_hand(database_url: str) -> None:
    upgrade(database_url)
    sessions = make_session_factory(make_engine(database_url))
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 local
    today = local(2026, 11, 25, 0, 0)
    with unit_of_work(sessions) as s:
        old = make_closed(s, "1", now - timedelta(days=3))
        emergency = make_closed(s, "2", now - timedelta(days=1), Urgency.EMERGENCY)
        make_closed(s, "3", now - timedelta(minutes=30))  # closed too recently
        done = make_closed(s, "4", now - timedelta(days=3))
        finish_attempt(
            s, create_attempt(s, done, now - timedelta(days=1), "r").id, AttemptOutcome.COMPLETED
        )
        s.add(DoNotCall(number="5"))
        make_closed(s, "5", now - timedelta(days=3))  # opted out earlier
        today_called = make_closed(s, "6", now - timedelta(days=3))
        attempt = create_attempt(s, today_called, now - timedelta(hours=1), "r")
        attempt.started_at = now - timedelta(hours=1)  # earlier today, local time
        finish_attempt(s, attempt.id, AttemptOutcome.NO_ANSWER)
        in_flight = make_closed(s, "7", now - timedelta(days=3))
        create_attempt(s, in_flight, now, "r")
        exhausted = make_closed(s, "8", now - timedelta(days=5))
        for _ in range(3):
            attempt = create_attempt(s, exhausted, now - timedelta(days=2), "r")
            attempt.started_at = now - timedelta(days=2)
            finish_attempt(s, attempt.id, AttemptOutcome.BUSY)
        retry = make_closed(s, "9", now - timedelta(days=4))
        attempt = create_attempt(s, retry, now - timedelta(days=1), "r")
        attempt.started_at = now - timedelta(days=1)  # yesterday: may be retried today
        finish_attempt(s, attempt.id, AttemptOutcome.NO_ANSWER)
        attempt.ended_at = now - timedelta(days=1)  # (finish_attempt stamps the real clock)
    with unit_of_work(sessions) as s:
        due = due_tickets(
            s, DueRules(now=now, today_start=today, closed_before=now - timedelta(hours=2)), 10
        )
    assert due == [emergency, retry, old]


def test_retry_intervals_by_outcome_and_spaced_calls_per_citizen(database_url: str) -> None:
    upgrade(database_url)
    sessions = make_session_factory(make_engine(database_url))
    now = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # 14:00 local
    rules = DueRules(
        now=now,
        today_start=local(2026, 11, 25, 0, 0),
        closed_before=now - timedelta(hours=2),
        max_attempts_per_day=3,
        max_calls_per_citizen_per_day=1,
        max_partial=1,
    )

    def tried(s, caller: str, outcome: AttemptOutcome, minutes_ago: int) -> int:  # type: ignore[no-untyped-def]
        ticket = make_closed(s, caller, now - timedelta(days=3))
        row = create_attempt(s, ticket, now, "r")
        row.started_at = now - timedelta(days=1)
        finish_attempt(s, row.id, outcome)
        row.ended_at = now - timedelta(minutes=minutes_ago)
        return ticket

    with unit_of_work(sessions) as s:
        tried(s, "a", AttemptOutcome.BUSY, 20)  # busy: retry after 30 min -> not yet
        busy_ok = tried(s, "b", AttemptOutcome.BUSY, 40)
        tried(s, "c", AttemptOutcome.NO_ANSWER, 40)  # no answer: after 120 min -> not yet
        tried(s, "d", AttemptOutcome.PARTIAL, 300)  # answered-but-unfinished limit 1 reached
        first = make_closed(s, "e", now - timedelta(days=5))  # one citizen, two tickets
        second = make_closed(s, "e", now - timedelta(days=4))
    with unit_of_work(sessions) as s:
        assert due_tickets(s, rules, limit=10) == [first, second, busy_ok]
        claimed = claim_due(s, rules, max_channels=10, calls_per_minute=10, robot_id="r")
    assert [call.ticket_id for call in claimed] == [first, busy_ok]  # citizen e: one call now
    with unit_of_work(sessions) as s:  # e was called today: the second ticket waits
        later = DueRules(**{**rules.__dict__, "now": now + timedelta(hours=3)})
        assert second not in due_tickets(s, later, limit=10)


@pytest.fixture
def robot_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = load_config(write_config(tmp_path, robot={"max_channels": 3, "calls_per_minute": 4}))
    upgrade(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    with unit_of_work(sessions) as s:
        for i in range(40):
            make_closed(s, f"138{i:08d}", datetime(2026, 11, 1, tzinfo=UTC))
    return config, sessions


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.integers(0, 7 * 24 * 60), min_size=5, max_size=30),
    st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_time_travel_never_calls_outside_the_window_or_above_cap_and_pace(
    robot_store,
    minutes: list[int],
    hang_ups: list[bool],  # type: ignore[no-untyped-def]
) -> None:
    config, sessions = robot_store
    start = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # Tuesday 00:00 local
    placed: list[tuple[datetime, int]] = []
    clock = {"now": start}

    async def place(attempt_id: int, ticket_id: int, number: str, node: str | None) -> None:
        placed.append((clock["now"], attempt_id))

    dispatcher = Dispatcher(config, sessions, place, clock=lambda: clock["now"])
    for step, minute in enumerate(sorted(minutes)):
        clock["now"] = start + timedelta(minutes=minute)
        before = len(placed)
        asyncio.run(dispatcher.run_once())
        new = placed[before:]
        if not in_call_window(clock["now"], config.robot, config.tz):
            assert new == []
        with unit_of_work(sessions) as s:
            live = s.query(CallbackAttempt).filter(CallbackAttempt.outcome.is_(None)).count()
            assert live <= config.robot.max_channels
            if hang_ups[step % len(hang_ups)]:  # some calls end between passes
                for attempt in (
                    s.query(CallbackAttempt).filter(CallbackAttempt.outcome.is_(None)).all()
                ):
                    finish_attempt(s, attempt.id, AttemptOutcome.NO_ANSWER)
        recent = [t for t, _ in placed if clock["now"] - t < timedelta(minutes=1)]
        assert len(recent) <= config.robot.calls_per_minute
    with unit_of_work(sessions) as s:  # clean up for the next example
        s.query(CallbackAttempt).delete()


def test_two_robots_never_claim_the_same_ticket_and_share_the_cap(
    database_url: str,
    tmp_path: Path,
) -> None:
    import threading

    config = load_config(
        write_config(tmp_path / "robots", robot={"max_channels": 5, "calls_per_minute": 1000})
    )
    upgrade(database_url)
    sessions = make_session_factory(make_engine(database_url))
    with unit_of_work(sessions) as s:
        for i in range(60):
            make_closed(s, f"139{i:08d}", datetime(2026, 11, 1, tzinfo=UTC))

    async def nothing(attempt_id: int, ticket_id: int, number: str, node: str | None) -> None:
        return None

    now = datetime(2026, 11, 25, 3, tzinfo=UTC)  # 11:00 local, inside the window
    robots = [Dispatcher(config, sessions, nothing, robot_id=f"robot-{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    peaks: list[int] = []

    def work(robot: Dispatcher) -> None:
        try:
            for round_no in range(15):
                barrier.wait()
                robot.claim_here(now + timedelta(seconds=round_no))
                with unit_of_work(sessions) as s:
                    live = s.query(CallbackAttempt).filter(CallbackAttempt.outcome.is_(None)).all()
                    peaks.append(len(live))
                    if round_no % 3 == 2 and robot.robot_id == "robot-0":
                        for attempt in live[:3]:
                            finish_attempt(s, attempt.id, AttemptOutcome.NO_ANSWER)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in robots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert max(peaks) == 5  # the cap was reached, and never passed
    with unit_of_work(sessions) as s:
        attempts = s.query(CallbackAttempt).all()
        pairs = [(a.ticket_id, a.attempt_no) for a in attempts]
        assert len(pairs) == len(set(pairs))
        # a ticket is never claimed again the same day, whichever robot asks
        assert len({a.ticket_id for a in attempts}) == len(attempts)


def test_the_retry_interval_counts_each_tickets_own_last_attempt(database_url: str) -> None:
    """Another ticket with more attempts must not hide this one's recent no-answer."""
    upgrade(database_url)
    sessions = make_session_factory(make_engine(database_url))
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    with unit_of_work(sessions) as s:
        fresh = make_closed(s, "11", now - timedelta(days=2))
        attempt = create_attempt(s, fresh, now - timedelta(minutes=10), "r")
        finish_attempt(s, attempt.id, AttemptOutcome.NO_ANSWER)
        attempt.ended_at = now - timedelta(minutes=10)  # no answer 10 min ago: wait 120
        busy = make_closed(s, "12", now - timedelta(days=2))
        for _ in range(2):
            finish_attempt(s, create_attempt(s, busy, now, "r").id, AttemptOutcome.BUSY)
    rules = DueRules(
        now=now,
        today_start=local(2026, 11, 25, 0, 0),
        closed_before=now - timedelta(hours=2),
        max_attempts_per_day=5,
        retry_after_minutes={"no_answer": 120, "busy": 0, "failed": 60, "partial": 240},
    )
    with unit_of_work(sessions) as s:
        assert fresh not in due_tickets(s, rules, 10)


def test_a_ticket_the_knowledge_base_answered_is_not_surveyed(database_url: str) -> None:
    """A caller who heard an entry and pressed 1 gets a ticket closed at once (`ivr-kb`):
    counted, in no unit's rates, and never called back about a recorded answer."""
    from core.vocabulary import KB_ANSWERED_SOURCE
    from db.models import Ticket

    upgrade(database_url)
    sessions = make_session_factory(make_engine(database_url))
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    with unit_of_work(sessions) as s:
        served = make_closed(s, "1", now - timedelta(days=3))
        answered = make_closed(s, "2", now - timedelta(days=3))
        s.get(Ticket, answered).source = KB_ANSWERED_SOURCE
    with unit_of_work(sessions) as s:
        rules = DueRules(
            now=now, today_start=local(2026, 11, 25, 0, 0), closed_before=now - timedelta(hours=2)
        )
        assert due_tickets(s, rules, 10) == [served]
