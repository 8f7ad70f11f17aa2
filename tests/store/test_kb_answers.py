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


class FakeAgi:
    """Just enough of a call for the spoken question: keys come from a list."""

    def __init__(self, keys: list[str | None]) -> None:
        import logging

        self.uniqueid, self.caller_number = "1700000000.9", "13900000009"
        self.log = logging.getLogger("test")
        self.keys = keys
        self.variables: dict[str, str] = {}
        self.played: list[str] = []

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value

    async def stream_file(self, path: str, keys: str = "") -> tuple[str | None, int]:
        self.played.append(path)
        return (self.keys.pop(0) if keys and self.keys else None), 0

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        return self.keys.pop(0) if self.keys else None

    async def record_file(self, *args: object, **kwargs: object) -> tuple[str | None, int]:
        return None, 8000


class FakeFlow:
    """The parts of InboundFlow the knowledge base's flow uses, with prompts as names."""

    def __init__(self, config: object) -> None:
        self.config = config
        self.ivr = config.ivr  # type: ignore[attr-defined]
        self.prompts = self
        self.phrases = self

    def path(self, text: str, lang: str) -> str:  # prompts.path and phrases.path alike
        return text

    async def play(self, call, prompt: str, keys: str = "") -> str | None:  # type: ignore[no-untyped-def]
        return (await call.agi.stream_file(prompt, keys))[0]

    async def ask(self, call, prompt: str, keys: str, tries: int | None = None) -> str | None:  # type: ignore[no-untyped-def]
        return (await call.agi.stream_file(prompt, keys))[0]

    async def step(self, call, step) -> None:  # type: ignore[no-untyped-def]
        return None


async def test_a_spoken_question_over_the_threshold_is_offered_heard_and_answered(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    import asyncio

    from ivr.inbound import CitizenCall
    from ivr.kb_flow import KbFlow, Outcome

    kb = answers(store, tmp_path)

    async def phrases_path(text: str, lang: str) -> str:
        return text

    flow = FakeFlow(kb.config)
    flow.phrases = type("P", (), {"path": staticmethod(phrases_path)})()  # type: ignore[assignment]

    async def recognizer(path: Path) -> str:
        await asyncio.sleep(0)
        return "嗯我想问一下养老金在哪查"

    speech = KbFlow(flow, kb, recognizer)  # type: ignore[arg-type]
    agi = FakeAgi(keys=["1", "1"])  # 1: hear it; after the answer, 1: answered
    line = next(line for line in kb.config.lines if line.did == LINE)
    call = CitizenCall(agi, line, str(tmp_path / "call"), "zh")  # type: ignore[arg-type]
    assert await speech.listen(call) is Outcome.ANSWERED
    assert "养老金怎么查的解答。" in agi.played
    with unit_of_work(store) as session:
        offer = session.scalars(select(KbOffer)).one()
        assert (offer.channel, offer.query, offer.accepted) == (
            "speech",
            "嗯我想问一下养老金在哪查",
            True,
        )
        assert offer.score is not None and offer.score >= kb.config.kb.threshold
        ticket = session.get(Ticket, offer.ticket_id)
        assert ticket is not None and ticket.source == "ivr-kb"

    # a complaint matches nothing over the threshold: no offer, the flow goes on
    other = CitizenCall(FakeAgi(keys=[]), line, str(tmp_path / "other"), "zh")  # type: ignore[arg-type]
    unmatched = KbFlow(flow, kb, recognizer_of("楼上装修太吵了天天砸墙"))  # type: ignore[arg-type]
    assert await unmatched.listen(other) is Outcome.NOTHING
    with unit_of_work(store) as session:
        assert len(session.scalars(select(KbOffer)).all()) == 1


def recognizer_of(text: str):  # type: ignore[no-untyped-def]
    async def hear(path: Path) -> str:
        return text

    return hear
