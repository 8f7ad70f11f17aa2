"""The demo city: a realistic, reproducible store, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import HotlineConfig
from core.vocabulary import Level
from db.departments import create_department
from db.migrate import upgrade
from db.models import (
    CallbackAttempt,
    Department,
    SurveyAnswer,
    Ticket,
    TicketEvent,
    TicketSequence,
    ValidCallback,
)
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import OPEN_STATUSES, create_ticket
from reports.metrics import Counts, overall
from tools.demo_city import DemoError, DemoSummary, generate_demo_city

UNTIL = date(2026, 11, 22)
SEED = 7
SIZE = 3_000
CONFIG = HotlineConfig()
TZ = ZoneInfo(CONFIG.timezone)
TABLES = (
    Department,
    Ticket,
    TicketEvent,
    TicketSequence,
    CallbackAttempt,
    SurveyAnswer,
    ValidCallback,
)


def generate(
    url: str,
    seed: int = SEED,
    tickets: int = SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """A demo city of `tickets` tickets up to UNTIL in a freshly migrated database."""
    upgrade(url)
    engine = make_engine(url)
    try:
        return generate_demo_city(
            make_session_factory(engine),
            CONFIG,
            seed=seed,
            tickets=tickets,
            until=UNTIL,
            progress=progress,
        )
    finally:
        engine.dispose()


def fingerprint(url: str) -> dict[str, str]:
    """A hash of every demo table's rows in key order, read back through the models' types."""
    engine = make_engine(url)
    result = {}
    with engine.connect() as conn:
        for model in TABLES:
            table = model.__table__
            digest = hashlib.sha256()
            for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(str(value) for value in row)).encode())
            result[table.name] = digest.hexdigest()
    engine.dispose()
    return result


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSummary, dict[str, str]]:
    """The small city generated once on SQLite: what every other run must reproduce."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'reference.db'}"
    return generate(url), fingerprint(url)


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), TZ)


def check_tree(session: Session) -> None:
    units = session.scalars(select(Department)).all()
    by_id = {unit.id: unit for unit in units}
    groups = {(unit.level, unit.peer_group) for unit in units}
    assert groups == {
        (1, "region"),
        (2, "city"),
        (3, "district"),
        (3, "bureau"),
        (4, "street"),
        (5, "community"),
    }
    for unit in units:  # each unit sits exactly one level below its parent
        parent = by_id.get(unit.parent_id) if unit.parent_id else None
        assert (parent.level + 1 if parent else Level.REGION) == unit.level, unit.code
    children = Counter(unit.parent_id for unit in units)
    districts = [u for u in units if u.peer_group == "district"]
    streets = [u for u in units if u.peer_group == "street"]
    assert len(districts) == 9 and sum(u.peer_group == "bureau" for u in units) == 25
    assert all(8 <= children[d.id] <= 12 for d in districts)
    assert all(5 <= children[s.id] <= 10 for s in streets)
    assert {"康巴什区", "东胜区", "达拉特旗"} <= {d.name for d in districts}
    assert re.fullmatch(r"D\d\dS\d\dV\d\d", next(u.code for u in units if u.level == 5))


def check_numbers(session: Session) -> None:
    """YYMMDD of the local acceptance day + a dense 5-digit sequence; ticket_sequences agree."""
    rows = session.execute(select(Ticket.number, Ticket.accepted_at)).all()
    assert len({number for number, _ in rows}) == len(rows) == SIZE
    per_day: dict[str, list[int]] = {}
    for number, accepted in rows:
        assert re.fullmatch(r"\d{11}", number)
        assert number[:6] == accepted.astimezone(TZ).strftime("%y%m%d")
        per_day.setdefault(number[:6], []).append(int(number[6:]))
    stored = session.execute(select(TicketSequence.day, TicketSequence.last)).all()
    sequences = {day: last for day, last in stored}
    assert sequences == {day: len(seqs) for day, seqs in per_day.items()}
    assert all(sorted(seqs) == list(range(1, len(seqs) + 1)) for seqs in per_day.values())


def check_rates(session: Session, summary: DemoSummary) -> None:
    """The seed city's figures, computed in SQL by the metrics code the dashboard uses."""
    counts: Counts = overall(
        session, local_midnight(summary.first_day), local_midnight(UNTIL + timedelta(1))
    )
    assert counts.accepted == SIZE and counts.valid == summary.valid_callbacks > 0.75 * SIZE
    assert counts.closed / counts.accepted == pytest.approx(0.972, abs=0.015)
    assert counts.contacted / counts.valid == pytest.approx(0.957, abs=0.015)
    assert counts.resolved / counts.valid == pytest.approx(0.837, abs=0.025)
    assert (counts.satisfied + counts.basic) / counts.valid == pytest.approx(0.972, abs=0.015)
    assert counts.closed / counts.accepted == summary.completion
    assert counts.resolved / counts.valid == summary.resolution
    assert counts.improper_returns > 0
    completed = session.scalar(select(func.count()).where(CallbackAttempt.outcome == "completed"))
    assert completed / summary.attempts == pytest.approx(0.72, abs=0.03)


def check_callbacks(session: Session) -> None:
    """A completed survey: three answers, a valid callback, a 'surveyed' event; a partial one:
    one or two answers and nothing else; an unanswered call: no answers."""
    answers_per_attempt: dict[str, set[int]] = {}
    for outcome, answers in session.execute(
        select(CallbackAttempt.outcome, func.count(SurveyAnswer.id))
        .outerjoin(SurveyAnswer, SurveyAnswer.attempt_id == CallbackAttempt.id)
        .group_by(CallbackAttempt.id, CallbackAttempt.outcome)
    ):
        answers_per_attempt.setdefault(outcome.value, set()).add(answers)
    assert answers_per_attempt["completed"] == {3}
    assert answers_per_attempt["partial"] == {1, 2}
    assert answers_per_attempt["no_answer"] == answers_per_attempt["busy"] == {0}
    completed = session.scalar(select(func.count()).where(CallbackAttempt.outcome == "completed"))
    surveyed = session.scalar(select(func.count()).where(TicketEvent.kind == "surveyed"))
    valid = session.scalar(select(func.count()).select_from(ValidCallback))
    assert completed == surveyed == valid


def check_rhythms(session: Session) -> None:
    """Heating complaints peak in winter; the last days' tickets are still being handled."""
    months: dict[int, Counter[str]] = {1: Counter(), 7: Counter()}
    last_days: Counter[bool] = Counter()  # open or not, of the tickets of the last three days
    older: Counter[bool] = Counter()  # ... and of those more than a month old
    for category, accepted, status in session.execute(
        select(Ticket.category, Ticket.accepted_at, Ticket.status)
    ):
        local = accepted.astimezone(TZ)
        if local.month in months:
            months[local.month][category] += 1
        age = (UNTIL - local.date()).days
        if age < 3:
            last_days[status in OPEN_STATUSES] += 1
        elif age > 30:
            older[status in OPEN_STATUSES] += 1
    share = {month: c["水电气暖"] / sum(c.values()) for month, c in months.items()}
    assert share[1] > 2 * share[7]
    assert last_days[True] / sum(last_days.values()) > 0.3
    assert older[False] / sum(older.values()) > 0.95


def test_demo_city_is_realistic_and_the_same_on_every_database(
    database_url: str, reference: tuple[DemoSummary, dict[str, str]]
) -> None:
    calls: list[tuple[int, int]] = []
    summary = generate(database_url, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, SIZE) and calls[-1] == (SIZE, SIZE)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    # a second database, same seed and until: identical rows (on PostgreSQL too)
    assert summary == reference[0]
    assert fingerprint(database_url) == reference[1]
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        check_tree(session)
        check_numbers(session)
        check_rates(session, summary)
        check_callbacks(session)
        check_rhythms(session)
        last = session.scalar(select(TicketSequence.last).where(TicketSequence.day == "261122"))
        # the hotline carries on after the demo: next number of the day, fresh ids
        ticket = create_ticket(session, caller_number="13800000000", local_day=UNTIL, source="ivr")
        assert ticket.number == f"261122{last + 1:05d}"
        assert ticket.id == SIZE + 1
    engine.dispose()


def test_another_seed_gives_another_city(
    tmp_path: Path, reference: tuple[DemoSummary, dict[str, str]]
) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    summary = generate(url, seed=SEED + 1)
    other = fingerprint(url)
    assert summary.tickets == SIZE
    for table in ("departments", "tickets", "ticket_events", "valid_callbacks"):
        assert other[table] != reference[1][table]


def test_a_store_with_tickets_is_refused_and_left_alone(database_url: str) -> None:
    generate(database_url, tickets=200)
    before = fingerprint(database_url)
    with pytest.raises(DemoError, match=r"already holds tickets; point database\.url at an empty"):
        generate(database_url, seed=SEED + 1, tickets=200)
    assert fingerprint(database_url) == before


def test_a_store_with_real_data_is_refused(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        create_department(session, "R", "内蒙古自治区", Level.REGION)
    with pytest.raises(DemoError, match="department tree"):
        generate_demo_city(sessions, CONFIG, tickets=100, until=UNTIL)
    with unit_of_work(sessions) as session:
        create_ticket(session, caller_number="13800000000", local_day=UNTIL)
    with pytest.raises(DemoError, match="already holds tickets"):
        generate_demo_city(sessions, CONFIG, tickets=100, until=UNTIL)
    with unit_of_work(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        assert session.scalar(select(func.count()).select_from(Department)) == 1
    engine.dispose()
