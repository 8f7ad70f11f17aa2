"""The knowledge base as the IVR asks it (hotline/kb_answers.py): the season's top
entries, a spoken question over the threshold, and the ivr-kb ticket an answered call
makes, closed at once and in no unit's rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import load_config
from core.vocabulary import ClosedAs, Handling, RequestType, TicketStatus
from db.models import KbOffer, Ticket
from db.session import unit_of_work
from db.tickets import create_ticket
from hotline.kb_answers import StoreAnswers
from ivr.answers import Asker
from kb.entries import EntryIn, import_entries
from reports.metrics import RateRules, overall, unit_figures
from tests.support.config import write_config
from tests.support.metrics_city import build_city

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
LINE = "12345"


def entry(key: str, title: str, phrasings: list[str], keywords: list[str]) -> EntryIn:
    return EntryIn(
        key=key,
        title=title,
        phrasings=phrasings,
        keywords=keywords,
        answer_zh=f"{title}的解答。",
        category="水电气暖" if key == "heating" else "社会保障",
        status="published",
    )


ENTRIES = [
    entry(
        "heating",
        "暖气不热找谁",
        ["家里暖气不热找谁", "暖气片不热怎么办", "室温不达标去哪反映"],
        ["暖气", "供暖"],
    ),
    entry(
        "pension",
        "养老金怎么查",
        ["养老金在哪里查询", "退休金到账查询", "怎么查养老金发放"],
        ["养老金", "退休金"],
    ),
    entry(
        "fund",
        "公积金怎么提取",
        ["住房公积金如何提取", "公积金提取要什么材料", "怎么取公积金"],
        ["公积金"],
    ),
]


def consult(session: Session, text: str, days_ago: int) -> None:
    create_ticket(
        session,
        caller_number="13700000000",
        local_day=(NOW - timedelta(days=days_ago)).date(),
        accepted_at=NOW - timedelta(days=days_ago),
        request_type=RequestType.CONSULTATION,
        description=text,
    )


def answers(store: sessionmaker[Session], tmp_path: Path) -> StoreAnswers:
    config = load_config(write_config(tmp_path))
    with unit_of_work(store) as session:
        import_entries(session, ENTRIES, "test", NOW - timedelta(days=60))
    return StoreAnswers(config, store, clock=lambda: NOW)


async def test_the_top_entries_are_the_last_four_weeks_consultations(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    kb = answers(store, tmp_path)
    with unit_of_work(store) as session:
        for days in (1, 3, 20):
            consult(session, "我想查一下养老金发了没有", days)
        consult(session, "公积金怎么取出来", 2)
        for days in (40, 41, 42, 43):  # older than four weeks: not this season
            consult(session, "暖气片一点都不热", days)
    top = await kb.top(LINE)
    assert [a.key for a in top] == ["pension", "fund", "heating"]
    assert top[0].answer_zh == "养老金怎么查的解答。"


async def test_a_spoken_question_is_offered_only_over_the_threshold(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    kb = answers(store, tmp_path)
    found = await kb.search("嗯那个我家暖汽不热了找谁啊", LINE)
    assert found is not None and found.key == "heating"
    assert found.score is not None and found.score >= 0.35
    assert await kb.search("楼上装修噪音太大了每天晚上都在砸墙", LINE) is None


async def test_an_answered_call_makes_one_closed_ivr_kb_ticket_outside_unit_rates(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    kb = answers(store, tmp_path)
    with unit_of_work(store) as session:
        build_city(session)
    asker = Asker("1700000000.1", "13900000001", LINE)
    choice = (await kb.top(LINE))[0]
    offer = await kb.offered(choice, "queue", asker)
    assert offer is not None
    await kb.heard(offer)
    number = await kb.answered(offer, choice, asker)
    again = await kb.answered(offer, choice, asker)  # the same call: still one ticket
    assert number is not None and again == number
    with unit_of_work(store) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.source == "ivr-kb")).one()
        assert ticket.number == number and ticket.origin_uniqueid == asker.uniqueid
        assert ticket.status == TicketStatus.CLOSED and ticket.closed_as == ClosedAs.EXPLAINED
        assert ticket.handling == Handling.DIRECT and ticket.department_id is None
        assert ticket.request_type == RequestType.CONSULTATION
        assert ticket.category == choice.category
        row = session.scalars(select(KbOffer)).one()
        assert (row.channel, row.heard, row.accepted, row.ticket_id) == (
            "queue",
            True,
            True,
            ticket.id,
        )
        assert row.caller_number == asker.number and row.uniqueid == asker.uniqueid
        span = (NOW - timedelta(days=1), NOW + timedelta(days=1))
        assert overall(session, *span).accepted == 1  # the hotline's counts stay whole
        figures = unit_figures(session, *span, RateRules())
        assert figures and all(u.counts.accepted == 0 for u in figures)
        assert all(u.counts.closed == 0 for u in figures)
