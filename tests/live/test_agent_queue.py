"""People answer line 12300 through Asterisk's app_queue: scripted agents, real calls.

Every figure here is read from what Asterisk wrote: its queue_log (kept in the
store by the reader `hotline serve` runs every second), the channel variables
the flow set, and the recordings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.follow import ingest_once
from core.vocabulary import TicketStatus
from db.models import CallbackTask
from db.session import unit_of_work
from db.tickets import create_ticket
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.agents import (
    agent_states,
    log_in_agent,
    log_out_everyone,
    queue_log_rows,
    scripted_agent,
)
from tests.support.calls import (
    calls_ended,
    channel_log,
    citizen_call,
    prompt_seconds,
    speech_file,
    ticket_of_call,
)
from tests.support.events import eventually, wait_for_event
from tools.local_asterisk.local import LocalAsterisk

AGENTS_LINE = "12300"


@pytest.fixture
async def floor(hotline: Hotline, ami: AMIClient) -> AsyncIterator[Hotline]:
    """The test's hotline; every member it logged in is logged out afterwards."""
    yield hotline
    await log_out_everyone(hotline, ami)


def read_queue_log(hotline: Hotline) -> None:
    ingest_once(hotline.sessions, hotline.config.queue_log)


def played_at(lines: list[str], prompt: str) -> datetime:
    """When Asterisk's log says it began playing prompt on the channel."""
    line = next(line for line in lines if f"/{prompt}." in line and "Playing" in line)
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S.%f")


async def test_no_agent_logged_in_the_caller_leaves_a_message(
    floor: Hotline, ami: AMIClient, asterisk: LocalAsterisk
) -> None:
    before = (asterisk.state / "log" / "messages.log").stat().st_size
    voice = speech_file(floor.config.state_dir / "voices", "도로에 구멍이 있어요")
    # the greeting, the progress offer, the queue's offer, no agent: the message prompt, a tone
    heard = prompt_seconds(
        floor.config,
        "zh",
        "greeting_main",
        "progress_offer",
        "queue_message_offer",
        "message_no_agents",
    )
    script = f"w{heard + 1.5:.1f}|p{voice}|w1|d#"
    call = await citizen_call(ami, AGENTS_LINE, script, caller="13900139001")
    await calls_ended(floor, call.uniqueid)
    assert call.variables.get("HOTLINE_QUEUE") == "hotline-agents"
    # GB/T 33358's caller is offered the message within 20 s of the greeting's end
    lines = channel_log(asterisk, call.channel, before)
    greeting_end = played_at(lines, "progress_offer") + timedelta(
        seconds=prompt_seconds(floor.config, "zh", "progress_offer")
    )
    offered = played_at(lines, "message_no_agents") - greeting_end
    assert timedelta(0) < offered < timedelta(seconds=20), offered
    ticket = ticket_of_call(floor, call.uniqueid)
    assert ticket is not None and ticket.source == "queue-no_agents"
    assert ticket.recording_path and ticket.recording_path.endswith("-request.wav")
    assert Path(ticket.recording_path).stat().st_size > 8000
    with unit_of_work(floor.sessions) as session:
        task = session.scalars(
            select(CallbackTask).where(CallbackTask.uniqueid == call.uniqueid)
        ).one()
        assert (task.reason, task.caller_number, task.ticket_id) == (
            "no_agents",
            "13900139001",
            ticket.id,
        )


async def test_a_scripted_agent_answers_and_the_ticket_knows_who(
    floor: Hotline, ami: AMIClient
) -> None:
    agent = await scripted_agent(floor, ami, "wang", answer_after="1", talk=3)
    await log_in_agent(floor, ami, agent)
    call = await citizen_call(ami, AGENTS_LINE, "w40", caller="13900139002")
    await calls_ended(floor, call.uniqueid)

    def connected() -> list[tuple[str, str]] | None:
        read_queue_log(floor)
        rows = queue_log_rows(floor, call.uniqueid)
        return rows if any(e.startswith("COMPLETE") for e, _ in rows) else None

    rows = await eventually(connected, what="the call's queue_log lines")
    assert rows[0][0] == "ENTERQUEUE" and ("CONNECT", "wang") in rows
    ticket = ticket_of_call(floor, call.uniqueid)
    assert ticket is not None and ticket.source == "agent"
    assert ticket.agent_id == agent.agent_id and ticket.queue == "hotline-agents"
    assert ticket.wait_seconds is not None and ticket.wait_seconds <= 3
    assert ticket.talk_seconds is not None and 2 <= ticket.talk_seconds <= 5
    states = [state for state, _ in agent_states(floor, agent.agent_id)]
    assert states[:4] == ["ready", "ringing", "on_call", "wrap_up"], states


async def test_an_agent_who_does_not_answer_is_paused_and_the_next_one_answers(
    floor: Hotline, ami: AMIClient
) -> None:
    silent = await scripted_agent(floor, ami, "li", answer_after="never")
    ready = await scripted_agent(floor, ami, "zhao", answer_after="1", talk=2)
    await log_in_agent(floor, ami, silent)
    rung = ami.subscribe("AgentCalled")
    try:
        placed = asyncio.create_task(citizen_call(ami, AGENTS_LINE, "w40", caller="13900139003"))
        first = await wait_for_event(rung, lambda e: True, timeout=30)
        assert first.get("MemberName") == "li"
        await log_in_agent(floor, ami, ready)  # while li's phone rings unanswered
        call = await placed
    finally:
        ami.unsubscribe(rung)
    await calls_ended(floor, call.uniqueid)

    def answered() -> list[tuple[str, str]] | None:
        read_queue_log(floor)
        rows = queue_log_rows(floor, call.uniqueid)
        return rows if any(e == "CONNECT" for e, _ in rows) else None

    rows = await eventually(answered, what="the call's CONNECT")
    assert ("RINGNOANSWER", "li") in rows and ("CONNECT", "zhao") in rows
    state, reason = agent_states(floor, silent.agent_id)[-1]
    assert state == "paused" and reason, agent_states(floor, silent.agent_id)


async def test_a_waiting_caller_hears_position_and_wait_then_leaves_a_message_by_key(
    floor: Hotline, ami: AMIClient, asterisk: LocalAsterisk
) -> None:
    # one agent logged in but on a break: the caller may join and waits (12301 announces every 5 s)
    agent = await scripted_agent(floor, ami, "sun", answer_after="1", talk=3)
    await log_in_agent(floor, ami, agent)
    await ami.action(
        "QueuePause", Interface=f"Local/{agent.endpoint}@sim-agent", Paused="true", Reason="break"
    )
    voice = speech_file(floor.config.state_dir / "voices", "메시지를 남깁니다")
    before = (asterisk.state / "log" / "messages.log").stat().st_size
    heard = prompt_seconds(
        floor.config, "zh", "greeting_main", "progress_offer", "queue_message_offer"
    )
    tone = prompt_seconds(floor.config, "zh", "message_by_key") + 0.8
    # wait long enough for two announcements, press 1, speak after the tone
    script = f"w{heard + 12:.1f}|d1|w{tone:.1f}|p{voice}|w1|d#"
    call = await citizen_call(ami, "12301", script, caller="13900139004")
    await calls_ended(floor, call.uniqueid)
    lines = channel_log(asterisk, call.channel, before)
    said = "\n".join(line for line in lines if "Playing" in line)
    assert "queue_you_are_next" in said or "queue_there_are" in said, said
    assert "queue_still_waiting" in said
    ticket = ticket_of_call(floor, call.uniqueid)
    assert ticket is not None and ticket.source == "queue-message_key"
    assert ticket.recording_path and Path(ticket.recording_path).stat().st_size > 8000

    def left() -> list[tuple[str, str]] | None:
        read_queue_log(floor)
        rows = queue_log_rows(floor, call.uniqueid)
        return rows if any(e == "EXITWITHKEY" for e, _ in rows) else None

    await eventually(left, what="EXITWITHKEY in queue_log")
    assert ticket_of_call(floor, call.uniqueid).wait_seconds is not None  # type: ignore[union-attr]


async def test_a_tickets_progress_is_one_key_away_from_the_greeting(
    floor: Hotline, ami: AMIClient
) -> None:
    caller = "13900139005"
    with unit_of_work(floor.sessions) as session:
        ticket = create_ticket(
            session,
            caller_number=caller,
            local_day=date(2026, 11, 20),
            accepted_at=datetime(2026, 11, 20, 2, tzinfo=UTC),
        )
        ticket.status = TicketStatus.IN_PROGRESS
        number = ticket.number
    # 2 during the greeting, then the ticket's number: its own caller hears the status
    call = await citizen_call(ami, AGENTS_LINE, f"w1.5|d2|w4|d{number}#|w12", caller=caller)
    await calls_ended(floor, call.uniqueid)
    assert call.variables.get("HOTLINE_SPOKEN_STATUS") == "in_progress"
    assert "HOTLINE_QUEUE" not in call.variables  # nobody was queued for it
