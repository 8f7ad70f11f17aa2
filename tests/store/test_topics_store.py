"""Topics and suggested categories read from, and written to, a migrated store.

A month of 2025-10 (Beijing time) holds the labelled sample as tickets whose category
people set; tickets just outside the month and merged duplicates must not count.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from analysis.category_model import (
    apply_suggestions,
    tickets_without_category,
    train_from_store,
)
from analysis.topics import month_topics
from core.config import TopicsConfig
from core.vocabulary import Level
from db.departments import create_department
from db.models import Ticket
from db.session import unit_of_work
from tests.support.labelled_sample import PLACES, sample

TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = TopicsConfig()
SOURCES = ("staff", "import", None)  # older rows have no source: a person set them too


def add_ticket(session, number: int, accepted: datetime, **fields) -> Ticket:  # type: ignore[no-untyped-def]
    ticket = Ticket(
        number=f"T{number:05d}", caller_number="13800000000", accepted_at=accepted, **fields
    )
    session.add(ticket)
    session.flush()
    return ticket


def fill_month(session) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """The sample as October's tickets; returns ticket id -> sub-topic."""
    city = create_department(session, "C", "鄂尔多斯市", Level.CITY)
    for n, place in enumerate(PLACES):
        create_department(session, f"P{n:02d}", place, Level.DISTRICT, city)
    create_department(session, "B01", "市住房和城乡建设局", Level.DISTRICT, city)
    tickets: list[tuple[Ticket, str]] = []
    number = 0
    for category, subtopics in sample().items():
        for subtopic, phrasings in subtopics.items():
            for phrasing in phrasings:
                number += 1
                # spread over local days 1..28; the first one just after local midnight
                # of October 1st (still September 30th in UTC)
                accepted = datetime(2025, 10, 1 + number % 28, 4, 0, tzinfo=UTC)
                if number == 1:
                    accepted = datetime(2025, 9, 30, 16, 30, tzinfo=UTC)
                text = {"description": phrasing} if number % 5 else {"transcript": phrasing}
                ticket = Ticket(
                    number=f"T{number:05d}",
                    caller_number="13800000000",
                    accepted_at=accepted,
                    category=category,
                    category_source=SOURCES[number % 3],
                    **text,
                )
                tickets.append((ticket, subtopic))
    session.add_all([ticket for ticket, _ in tickets])
    session.flush()
    subtopic_of = {ticket.id: subtopic for ticket, subtopic in tickets}
    return subtopic_of


def test_month_topics_reads_one_local_month_per_category(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        subtopic_of = fill_month(session)
        heating = sample()["水电气暖"]["暖气不热"][0]
        # outside October in Beijing time, or a duplicate merged into another ticket
        add_ticket(session, 9001, datetime(2025, 10, 31, 16, 30, tzinfo=UTC),
                   category="水电气暖", description=heating)  # fmt: skip
        add_ticket(session, 9002, datetime(2025, 9, 30, 15, 59, tzinfo=UTC),
                   category="水电气暖", description=heating)  # fmt: skip
        first = session.scalars(select(Ticket).order_by(Ticket.id)).first()
        add_ticket(session, 9003, datetime(2025, 10, 10, tzinfo=UTC), category="水电气暖",
                   description=heating, merged_into_id=first.id)  # fmt: skip

    with unit_of_work(store) as session:
        rows = month_topics(session, "2025-10", SETTINGS, TZ, previous=None)

    assert {row.category for row in rows} == set(sample())
    assert all(row.month == "2025-10" and not row.is_new for row in rows)
    for category, subtopics in sample().items():
        sizes = [row.size for row in rows if row.category == category]
        in_month = sum(len(p) for p in subtopics.values())
        assert SETTINGS.k_min <= len(sizes) <= SETTINGS.k_max
        assert in_month - 1 <= sum(sizes) <= in_month  # at most one without a main topic
    heating_topic = next(r for r in rows if r.category == "水电气暖" and "暖气不热" in r.label)
    assert len(heating_topic.typical_ticket_ids) == 3
    assert {subtopic_of[i] for i in heating_topic.typical_ticket_ids} == {"暖气不热"}
    assert heating_topic.terms[0][1] >= heating_topic.terms[-1][1] > 0


def test_new_topics_against_the_previous_months(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        fill_month(session)
    with unit_of_work(store) as session:
        rows = month_topics(session, "2025-10", SETTINGS, TZ, previous=[])
        again = month_topics(
            session, "2025-10", SETTINGS, TZ, previous=[dict(r.terms) for r in rows]
        )
    assert rows and all(row.is_new for row in rows)  # known months without any topic
    assert not any(row.is_new for row in again)


def test_suggestions_are_written_as_model_only_when_sure(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        fill_month(session)
        day = datetime(2025, 11, 3, 2, tzinfo=UTC)
        # a category the model wrote before: never learnt from
        add_ticket(session, 9100, day, category="虚构类别", category_source="model",
                   description="家里暖气不热，屋里只有十二度")  # fmt: skip
        sure_heating = add_ticket(session, 9101, day, source="ivr",
                                  transcript="嗯 那个 家里暖气不热 屋里冻得不行 供热公司也不管").id  # fmt: skip
        sure_wages = add_ticket(session, 9102, day, source="ivr",
                                description="老板拖欠我们三个月工资了，一直不给发").id  # fmt: skip
        unsure = add_ticket(session, 9103, day, source="ivr",
                            description="我想问一下明天天气怎么样").id  # fmt: skip
        add_ticket(session, 9104, day, source="ivr", description=None)  # nothing to read

    with unit_of_work(store) as session:
        model = train_from_store(session, SETTINGS)
        waiting = tickets_without_category(session)
        written = apply_suggestions(session, waiting, model, SETTINGS)

    assert "虚构类别" not in model.categories
    assert sorted(model.categories) == sorted(sample())
    assert [t.id for t in waiting] == [sure_heating, sure_wages, unsure]
    assert written == 2
    with unit_of_work(store) as session:
        heating, wages, left = (session.get(Ticket, i) for i in (sure_heating, sure_wages, unsure))
        assert (heating.category, heating.category_source) == ("水电气暖", "model")
        assert (wages.category, wages.category_source) == ("劳动纠纷", "model")
        assert heating.category_confidence >= SETTINGS.min_confidence
        assert left.category is None and left.category_source is None
        assert 0 < left.category_confidence < SETTINGS.min_confidence
