"""Every missed caller is called back, agent first (回拨未接来电), through the real Asterisk.

Six scripted citizens hang up after 8 s in the queue of line 12300 while the
only agent is paused; two of them call again and are served. All six become
tasks, those two close by themselves, and the other four are called back: the
agent's phone rings first, then Asterisk dials the citizen (a 1990… number whose
AstDB script answers), recorded; the figures say exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.callback_dialer import CallbackDialer
from agents.callback_figures import callback_figures
from agents.control import log_in, pause
from agents.follow import ingest_once
from agents.missed import follow_missed
from agents.store import membership
from db.models import Agent, Call, CallbackTask
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.agents import log_out_everyone, scripted_agent
from tests.support.calls import calls_ended, citizen_call, prompt_seconds
from tests.support.events import eventually

AGENTS_LINE = "12300"
CITIZENS = [f"1990{n:07d}" for n in range(9301, 9307)]
AGAIN = CITIZENS[:2]  # these two call again and are served


@pytest.fixture
async def floor(hotline: Hotline, ami: AMIClient) -> AsyncIterator[Hotline]:
    yield hotline
    await log_out_everyone(hotline, ami)


def tasks(hotline: Hotline) -> dict[str, CallbackTask]:
    with unit_of_work(hotline.sessions) as session:
        return {t.caller_number: t for t in session.scalars(select(CallbackTask))}


def follow(hotline: Hotline) -> None:
    ingest_once(hotline.sessions, hotline.config.queue_log)
    follow_missed(hotline.sessions, hotline.config)


@pytest.mark.timeout(150)
async def test_missed_callers_are_called_back_agent_first(floor: Hotline, ami: AMIClient) -> None:
    start = datetime.now(UTC)
    agent = await scripted_agent(floor, ami, "zhao", answer_after="1", talk=3)
    with unit_of_work(floor.sessions) as session:
        member = membership(session.get_one(Agent, agent.agent_id))
    await log_in(ami, member, paused_for="break")
    for number in CITIZENS:  # each answers its callback, talks 3 s and hangs up
        await ami.action("DBPut", Family="sim", Key=number[4:], Val="w3|h")

    # 1. six callers wait 8 s behind the paused agent and hang up
    heard = prompt_seconds(
        floor.config, "zh", "greeting_main", "progress_offer", "queue_message_offer"
    )
    calls = await asyncio.gather(
        *(citizen_call(ami, AGENTS_LINE, f"w{heard + 8:.1f}|h", caller=n) for n in CITIZENS)
    )
    await calls_ended(floor, *(c.uniqueid for c in calls))

    def six_tasks() -> dict[str, CallbackTask] | None:
        follow(floor)
        found = tasks(floor)
        return found if len(found) == 6 else None

    found = await eventually(six_tasks, timeout=15, what="six missed callers' tasks")
    assert {t.reason for t in found.values()} == {"abandoned"}
    assert all(t.closed_at is None for t in found.values())

    # 2. the agent is back; two of them call again and are served
    await pause(ami, member, None)
    again = await asyncio.gather(*(citizen_call(ami, AGENTS_LINE, "w40", caller=n) for n in AGAIN))
    await calls_ended(floor, *(c.uniqueid for c in again))

    def two_closed() -> dict[str, CallbackTask] | None:
        follow(floor)
        found = tasks(floor)
        closed = {n for n, t in found.items() if t.closed_why == "reached an agent"}
        return found if closed == set(AGAIN) else None

    await eventually(two_closed, timeout=15, what="the two served callers' tasks closed")

    # 3. the other four are called back, agent first, one after another
    await ami.action("DBPut", Family="simagent", Key=agent.endpoint, Val="1:10")
    dialer = CallbackDialer(floor.config, ami, floor.sessions)
    rung = 0
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            rung += len(await dialer.tick())
            if all(t.closed_at for t in tasks(floor).values()):
                break
            await asyncio.sleep(1)
    finally:
        await dialer.stop()
    found = tasks(floor)
    called = {n: t for n, t in found.items() if n not in AGAIN}
    assert {n: t.closed_why for n, t in called.items()} == dict.fromkeys(
        CITIZENS[2:], "called back"
    )
    assert rung == 4
    for task in called.values():
        assert (task.attempts, task.agent_id, task.last_outcome) == (1, agent.agent_id, "completed")
        assert task.called_at and task.reached_at and task.reached_at >= task.called_at
    with unit_of_work(floor.sessions) as session:
        rows = session.scalars(select(Call).where(Call.uniqueid.startswith("callback-"))).all()
        assert len(rows) == 4
        for row in rows:
            assert row.answered_at and row.ended_at and row.hangup_cause == "ANSWER"
            assert row.recording_path and Path(row.recording_path).stat().st_size > 8000
        figures = callback_figures(session, start, datetime.now(UTC) + timedelta(seconds=1), 30)
    assert (
        figures.missed,
        figures.reached_an_agent,
        figures.called_back,
        figures.reached,
        figures.within,
        figures.open,
    ) == (6, 2, 4, 4, 4, 0)
