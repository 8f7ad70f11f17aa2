"""The ticket store on SQLite and on a real PostgreSQL: migrations, tree, tickets."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, update
from sqlalchemy.exc import IntegrityError, StatementError

from core.config import DEFAULT_LINES
from core.vocabulary import EventKind, Level, TicketStatus, Urgency
from db.departments import MAX_DEPTH, create_department, subtree, subtree_ids
from db.lines import LineSpec, sync_lines
from db.migrate import downgrade, upgrade
from db.models import Base, Department, Ticket
from db.session import make_engine, unit_of_work
from db.tickets import add_event, create_ticket, line_by_did, ticket_by_number


def test_migrate_up_from_empty_matches_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == []
    assert {
        "tickets",
        "ticket_events",
        "departments",
        "calls",
        "callback_attempts",
        "survey_answers",
        "lines",
        "do_not_call",
    } <= tables
    upgrade(database_url)  # idempotent
    downgrade(database_url, "base")
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_department_tree_over_five_levels(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        region = create_department(session, "R", "内蒙古自治区", Level.REGION)
        city = create_department(session, "C", "鄂尔多斯市", Level.CITY, region)
        district = create_department(session, "D1", "东胜区", Level.DISTRICT, city, "district")
        other = create_department(session, "D2", "康巴什区", Level.DISTRICT, city, "district")
        street = create_department(session, "S1", "交通街道", Level.TOWNSHIP, district, "street")
        village = create_department(session, "V1", "某社区", Level.VILLAGE, street, "community")
        with pytest.raises(ValueError, match="level village cannot sit under D2"):
            create_department(session, "X", "wrong", Level.VILLAGE, other)
        ids = (region.id, city.id, district.id, other.id, street.id, village.id)
    with unit_of_work(store) as session:
        assert sorted(subtree_ids(session, ids[2])) == sorted([ids[2], ids[4], ids[5]])
        assert sorted(subtree_ids(session, ids[0])) == sorted(ids)
        assert subtree_ids(session, ids[5]) == [ids[5]]


@pytest.mark.timeout(60, method="thread")  # a walk that never ends: the run stops, failed
def test_a_looping_parent_chain_ends_the_subtree_query(store) -> None:  # type: ignore[no-untyped-def]
    """A cycle written straight into the table, past create_department's level check."""
    with unit_of_work(store) as session:
        region = create_department(session, "R", "region", Level.REGION)
        city = create_department(session, "C", "city", Level.CITY, region)
        district = create_department(session, "D", "district", Level.DISTRICT, city)
        session.execute(
            update(Department).where(Department.id == region.id).values(parent_id=district.id)
        )
        ids = sorted((region.id, city.id, district.id))
    with unit_of_work(store) as session:
        assert sorted(subtree_ids(session, ids[0])) == ids
        assert sorted(subtree_ids(session, ids[2])) == ids
        # round and round the loop until the bound: one row per level walked
        depth = session.execute(
            select(func.count()).select_from(subtree(ids[0]).subquery())
        ).scalar_one()
        assert depth == MAX_DEPTH + 1


def test_ticket_numbers_events_and_lookup(store) -> None:  # type: ignore[no-untyped-def]
    accepted = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
    with unit_of_work(store) as session:
        sync_lines(
            session,
            [LineSpec(x.did, x.name, x.greeting, x.default_category) for x in DEFAULT_LINES],
        )
        line = line_by_did(session, "12345004")
        first = create_ticket(
            session,
            caller_number="13800138000",
            local_day=date(2026, 11, 25),
            accepted_at=accepted,
            line=line,
            urgency=Urgency.EMERGENCY,
            recording_path="/rec/a.wav",
        )
        second = create_ticket(session, caller_number="13900139000", local_day=date(2026, 11, 25))
        next_day = create_ticket(session, caller_number="1", local_day=date(2026, 11, 26))
        add_event(session, first, EventKind.URGED, actor="13800138000")
    assert (first.number, second.number, next_day.number) == (
        "26112500001",
        "26112500002",
        "26112600001",
    )
    with unit_of_work(store) as session:
        loaded = ticket_by_number(session, "26112500001")
        assert loaded is not None
        assert loaded.category == "医疗保障"  # the line's default category
        assert loaded.accepted_at == accepted and loaded.accepted_at.tzinfo is not None
        assert loaded.status == TicketStatus.ACCEPTED
        assert [e.kind for e in loaded.events] == [EventKind.ACCEPTED, EventKind.URGED]
        assert ticket_by_number(session, "00000000000") is None


def test_constraints_hold(store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError), unit_of_work(store) as session:
        create_ticket(session, caller_number="1", local_day=date(2026, 1, 1), external_id="E1")
        create_ticket(session, caller_number="2", local_day=date(2026, 1, 1), external_id="E1")
    with pytest.raises(StatementError), unit_of_work(store) as session:
        session.add(Ticket(number="x", caller_number="1", accepted_at=datetime(2026, 1, 1)))
        session.flush()  # a naive datetime is refused, never silently shifted
    with unit_of_work(store) as session:
        assert session.scalars(select(Ticket)).all() == []  # nothing half-written remains


def test_concurrent_writers_never_share_a_ticket_number(store) -> None:  # type: ignore[no-untyped-def]
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        try:
            for _ in range(10):
                with unit_of_work(store) as session:
                    ticket = create_ticket(
                        session, caller_number=str(index), local_day=date(2026, 11, 25)
                    )
                with lock:
                    numbers.append(ticket.number)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(numbers) == 80 and len(set(numbers)) == 80
    assert sorted(numbers) == [f"261125{i:05d}" for i in range(1, 81)]
