"""A waiting caller's 常见问题 key on the real Asterisk (issue 23, item 6).

The caller waits in the queue (the only agent is on a break), presses
`kb.offer_key`, picks entry 1 and hears its answer; 1 makes the call's one
ivr-kb ticket and an accepted offer, 2 puts the caller back into the same queue,
0 puts them back ahead of the callers who never left, marked for the agent; a menu
line's key 4 offers the same answers.
The phrases are rendered before the call, so the scripted citizen's timing
depends on the prompts' lengths only.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from agents.follow import ingest_once
from db.models import KbOffer, Ticket
from db.session import unit_of_work
from hotline.app import Hotline
from hotline.kb_answers import StoreAnswers
from ivr.kb_flow import OPERATOR_MARK, choices_text
from kb.entries import EntryIn, import_entries
from prompts.phrases import PhraseCache
from telephony.ami import AMIClient
from tests.support.agents import log_in_agent, log_out_everyone, queue_log_rows, scripted_agent
from tests.support.calls import calls_ended, citizen_call, prompt_seconds, ticket_of_call
from tests.support.events import eventually

WAITING_LINE = "12301"  # answered by people, announces every 5 s
ENTRIES = [
    EntryIn(
        key="heating",
        title="暖气不热找谁",
        phrasings=["家里暖气不热找谁", "暖气片不热怎么办", "室温不达标去哪反映"],
        keywords=["暖气"],
        answer_zh="请拨打供热热线。",
        category="水电气暖",
        status="published",
    ),
    EntryIn(
        key="pension",
        title="养老金怎么查",
        phrasings=["养老金在哪里查询", "退休金到账查询", "怎么查养老金发放"],
        keywords=["养老金"],
        answer_zh="请登录社保网站查询。",
        category="社会保障",
        status="published",
    ),
]


@pytest.fixture
async def floor(hotline: Hotline, ami: AMIClient) -> AsyncIterator[Hotline]:
    """The hotline with two live entries and one agent logged in but on a break."""
    with unit_of_work(hotline.sessions) as session:
        import_entries(session, ENTRIES, "test")
    agent = await scripted_agent(hotline, ami, "zhou", answer_after="1", talk=3)
    await log_in_agent(hotline, ami, agent)
    await ami.action(
        "QueuePause", Interface=f"Local/{agent.endpoint}@sim-agent", Paused="true", Reason="break"
    )
    yield hotline
    await log_out_everyone(hotline, ami)


def seconds(path: str) -> float:
    with wave.open(path + ".wav") as audio:
        return audio.getnframes() / audio.getframerate()


async def script_to_answer(floor: Hotline, after: str) -> str:
    """Wait in the queue, press the KB key, pick 1, hear the answer, press `after`."""
    config = floor.config
    top = await StoreAnswers(config, floor.sessions).top(WAITING_LINE)
    assert top, "no live entries for the line"
    phrases = PhraseCache(config)  # the flow's cache on disk: rendered once, here
    await phrases.path(choices_text(top, "zh"), "zh")
    answer = seconds(await phrases.path(top[0].answer_zh, "zh"))
    before_queue = prompt_seconds(
        config, "zh", "greeting_main", "progress_offer", "queue_message_offer", "kb_queue_offer"
    )
    intro = prompt_seconds(config, "zh", "kb_intro")
    return f"w{before_queue + 4:.1f}|d{config.kb.offer_key}|w{intro + 3:.1f}|d1|w{answer + 3:.1f}|d{after}"


def read_queue_log(floor: Hotline) -> None:
    ingest_once(floor.sessions, floor.config.queue_log)


async def test_the_kb_key_then_1_makes_one_ivr_kb_ticket_and_an_accepted_offer(
    floor: Hotline, ami: AMIClient
) -> None:
    script = await script_to_answer(floor, "1") + "|w6"
    call = await citizen_call(ami, WAITING_LINE, script, caller="13900139101", timeout=180)
    await calls_ended(floor, call.uniqueid, timeout=60)
    ticket = ticket_of_call(floor, call.uniqueid)
    assert ticket is not None and ticket.source == "ivr-kb", ticket and ticket.source
    assert ticket.closed_as is not None and ticket.closed_as.value == "explained"
    with unit_of_work(floor.sessions) as session:
        kb_tickets = session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.source == "ivr-kb")
        )
        offers = session.scalars(select(KbOffer).where(KbOffer.uniqueid == call.uniqueid)).all()
    assert kb_tickets == 1
    accepted = [o for o in offers if o.accepted]
    assert len(accepted) == 1 and accepted[0].ticket_id == ticket.id and accepted[0].heard
    assert {o.channel for o in offers} == {"queue"} and len(offers) == len(ENTRIES)

    def left() -> list[tuple[str, str]] | None:
        read_queue_log(floor)
        rows = queue_log_rows(floor, call.uniqueid)
        return rows if any(e == "EXITWITHKEY" for e, _ in rows) else None

    await eventually(left, timeout=30, what="EXITWITHKEY in queue_log")


async def test_the_kb_key_then_2_goes_back_into_the_queue(floor: Hotline, ami: AMIClient) -> None:
    script = await script_to_answer(floor, "2") + "|w8"
    call = await citizen_call(ami, WAITING_LINE, script, caller="13900139102", timeout=180)
    await calls_ended(floor, call.uniqueid, timeout=60)

    def entered_twice() -> list[tuple[str, str]] | None:
        read_queue_log(floor)
        rows = queue_log_rows(floor, call.uniqueid)
        return rows if [e for e, _ in rows].count("ENTERQUEUE") == 2 else None

    rows = await eventually(entered_twice, timeout=30, what="a second ENTERQUEUE")
    assert [e for e, _ in rows].count("EXITWITHKEY") == 1
    with unit_of_work(floor.sessions) as session:
        offers = session.scalars(select(KbOffer).where(KbOffer.uniqueid == call.uniqueid)).all()
    assert any(o.heard for o in offers) and not any(o.accepted for o in offers)
    ticket = ticket_of_call(floor, call.uniqueid)  # nothing lost: the hang-up's ticket
    assert ticket is not None and ticket.source != "ivr-kb"


async def test_the_kb_key_then_0_goes_back_ahead_of_the_waiting_marked_for_the_agent(
    floor: Hotline, ami: AMIClient
) -> None:
    """0 after the answer: back into the queue ahead of a caller who never left, and the
    agent's phone and screen pop read 常见问题转人工 (QueueCallerJoin's position and name)."""
    joins = ami.subscribe("QueueCallerJoin", "QueueCallerLeave")
    try:
        waiting = asyncio.create_task(
            citizen_call(ami, WAITING_LINE, "w50", caller="13900139103", timeout=120)
        )
        await asyncio.sleep(3)  # the other caller is in the queue first
        script = await script_to_answer(floor, "0") + "|w4"
        asking = asyncio.create_task(
            citizen_call(ami, WAITING_LINE, script, caller="13900139104", timeout=180)
        )
        seen: list[tuple[str, str, str, str]] = []  # (event, caller, position, name)

        async def operator_join() -> tuple[str, str, str, str]:
            while True:
                event = await joins.get()
                row = (
                    event.name,
                    event.get("CallerIDNum"),
                    event.get("Position"),
                    event.get("CallerIDName"),
                )
                seen.append(row)
                if (
                    row[0] == "QueueCallerJoin"
                    and row[1] == "13900139104"
                    and row[3] == OPERATOR_MARK
                ):
                    return row

        again = await asyncio.wait_for(operator_join(), 120)
        assert again[2] == "1", seen  # ahead of the caller who waited all along
        still_there = [r for r in seen if r[1] == "13900139103"]
        assert [r[0] for r in still_there] == ["QueueCallerJoin"], seen  # who never left
        ended = await asyncio.gather(asking, waiting)
    finally:
        ami.unsubscribe(joins)
    await calls_ended(floor, ended[0].uniqueid, timeout=60)
    ticket = ticket_of_call(floor, ended[0].uniqueid)  # nothing lost: the hang-up's ticket
    assert ticket is not None and ticket.source != "ivr-kb"


async def test_a_menu_lines_key_4_answers_from_the_knowledge_base(
    floor: Hotline, ami: AMIClient
) -> None:
    """A self-service menu line: 4 in the main menu, entry 1, heard, then 1 (answered)."""
    config = floor.config
    line = "12345004"  # 医保服务专线, a menu line
    top = await StoreAnswers(config, floor.sessions).top(line)
    assert top, "no live entries for the line"
    phrases = PhraseCache(config)
    await phrases.path(choices_text(top, "zh"), "zh")
    answer = seconds(await phrases.path(top[0].answer_zh, "zh"))
    greeting = prompt_seconds(config, "zh", "greeting_medical_insurance", "english_offer")
    intro = prompt_seconds(config, "zh", "kb_intro")
    script = f"w{greeting + 2:.1f}|d4|w{intro + 3:.1f}|d1|w{answer + 3:.1f}|d1|w6"
    call = await citizen_call(ami, line, script, caller="13900139105", timeout=180)
    await calls_ended(floor, call.uniqueid, timeout=60)
    ticket = ticket_of_call(floor, call.uniqueid)
    assert ticket is not None and ticket.source == "ivr-kb", ticket and ticket.source
    with unit_of_work(floor.sessions) as session:
        offers = session.scalars(select(KbOffer).where(KbOffer.uniqueid == call.uniqueid)).all()
    assert {o.channel for o in offers} == {"menu"}
    assert [o.accepted for o in offers].count(True) == 1
