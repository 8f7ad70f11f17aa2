"""Missed callers (回拨未接来电): tasks from hand-built queue_log rows, closing, DNC, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents.callback_dialer import (
    FreeAgent,
    agent_missed,
    callback_call_id,
    claim,
    settle,
)
from agents.callback_figures import callback_figures
from agents.missed import after_ingest
from agents.store import SCRIPTED, bind_seat
from core.config import HotlineConfig, load_config
from core.vocabulary import CallDirection
from db.callbacks import open_callback_task
from db.models import Call, CallbackTask, DoNotCall, QueueLogEntry, User
from db.session import unit_of_work
from tests.support.config import write_config

T0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
AGENTS_LINE = "12300"


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return load_config(
        write_config(
            tmp_path,
            lines=[
                {"did": "12345", "name": "menu", "greeting": "greeting_main", "answer": "menu"},
                {"did": AGENTS_LINE, "name": "people", "greeting": "greeting_main"},
                {
                    "did": "12399",
                    "name": "night",
                    "greeting": "greeting_main",
                    "staffed_hours": [{"start": "20:00", "end": "22:00"}],
                },
            ],
            callback={
                "abandon_min_seconds": 5,
                "max_attempts": 3,
                "retry_after_minutes": {"no_answer": 30, "busy": 10, "failed": 15},
            },
            robot={"max_channels": 2, "calls_per_minute": 3},
        )
    )


def inbound(
    session: Session,
    uniqueid: str,
    number: str,
    at: datetime,
    *,
    ended: bool = True,
    step: str | None = "queue",
    did: str = AGENTS_LINE,
) -> None:
    session.add(
        Call(
            uniqueid=uniqueid,
            direction=CallDirection.INBOUND,
            caller_number=number,
            did=did,
            started_at=at,
            ended_at=at + timedelta(seconds=30) if ended else None,
            last_step=step,
        )
    )


def line(session: Session, at: datetime, callid: str, agent: str, event: str, *data: str) -> None:
    fields = {f"data{n}": value for n, value in enumerate(data, 1)}
    session.add(
        QueueLogEntry(
            at=at, callid=callid, queue="hotline-agents", agent=agent, event=event, **fields
        )
    )


def tasks(store: sessionmaker[Session]) -> dict[str, tuple[str, str | None]]:
    with unit_of_work(store) as session:
        return {t.uniqueid: (t.reason, t.closed_why) for t in session.scalars(select(CallbackTask))}


def an_agent(store: sessionmaker[Session], login: str = "wang") -> FreeAgent:
    with unit_of_work(store) as session:
        user = User(username=login, password_hash="!", role="agent")
        session.add(user)
        session.flush()
        agent = bind_seat(session, user, [], SCRIPTED, ["hotline-agents"])
        return FreeAgent(agent.id, login, f"Local/{agent.endpoint}@sim-agent")


def test_missed_callers_become_tasks_and_close_when_they_reach_an_agent(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    with unit_of_work(store) as session:
        inbound(session, "a.1", "13900000001", T0)  # waited 8 s, hung up: missed
        line(session, T0 + timedelta(seconds=15), "a.1", "NONE", "ABANDON", "1", "1", "8")
        inbound(session, "a.2", "13900000002", T0)  # hung up after 2 s: a wrong number
        line(session, T0 + timedelta(seconds=9), "a.2", "NONE", "ABANDON", "1", "1", "2")
        inbound(session, "a.3", "13900000003", T0, ended=False)  # wait ran out, still on
        line(session, T0 + timedelta(seconds=30), "a.3", "NONE", "EXITWITHTIMEOUT", "1", "1", "20")
        inbound(session, "a.4", "13900000004", T0, step="recording")  # refused, no message
        inbound(session, "a.5", "13900000005", T0, step="recording", did="12345")  # menu line
        inbound(session, "a.6", "13900000006", T0, step="recording")  # left a message
        open_callback_task(
            session,
            uniqueid="a.6",
            caller_number="13900000006",
            ticket=None,
            reason="no_agents",
            created_at=T0,
        )
    now = T0 + timedelta(minutes=1)
    with unit_of_work(store) as session:
        assert after_ingest(session, config, now) == (2, 0)
    assert tasks(store) == {
        "a.1": ("abandoned", None),
        "a.4": ("refused", None),
        "a.6": ("no_agents", None),
    }
    with unit_of_work(store) as session:  # a.3's call ends: no message left, a missed call
        session.scalars(select(Call).where(Call.uniqueid == "a.3")).one().ended_at = now
        # a.1 calls again and reaches an agent; a.4 reached one before it was refused
        inbound(session, "b.1", "13900000001", now)
        line(session, now + timedelta(seconds=5), "b.1", "wang", "CONNECT", "3", "b.1x", "1")
        inbound(session, "b.4", "13900000004", T0 - timedelta(minutes=5))
        line(session, T0 - timedelta(minutes=4), "b.4", "wang", "CONNECT", "3", "b.4x", "1")
    with unit_of_work(store) as session:
        assert after_ingest(session, config, now + timedelta(minutes=1)) == (1, 1)
        assert after_ingest(session, config, now + timedelta(minutes=2)) == (0, 0)  # replayed
    assert tasks(store) == {
        "a.1": ("abandoned", "reached an agent"),
        "a.3": ("abandoned", None),
        "a.4": ("refused", None),
        "a.6": ("no_agents", None),
    }
    with unit_of_work(store) as session:
        figures = callback_figures(session, T0, T0 + timedelta(hours=1), 30)
    assert (figures.missed, figures.messages, figures.reached_an_agent, figures.open) == (
        3,
        1,
        1,
        2,
    )


def missed(session: Session, uniqueid: str, number: str, did: str = AGENTS_LINE) -> int:
    inbound(session, uniqueid, number, T0, did=did)
    return open_callback_task(
        session,
        uniqueid=uniqueid,
        caller_number=number,
        ticket=None,
        reason="abandoned",
        created_at=T0,
    ).id


def test_do_not_call_bad_numbers_and_unstaffed_lines_are_not_dialled(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    agents = [an_agent(store, "wang"), an_agent(store, "li")]
    with unit_of_work(store) as session:
        missed(session, "c.1", "13900000011")
        missed(session, "c.2", "unknown")
        missed(session, "c.3", "13900000013", did="12399")  # staffed 20:00-22:00 only
        missed(session, "c.4", "13900000014")
        session.add(DoNotCall(number="13900000011", reason="opted out"))
    with unit_of_work(store) as session:
        placed = claim(session, config, T0 + timedelta(minutes=1), agents)
    assert [(p.number, p.agent.login) for p in placed] == [("13900000014", "wang")]
    assert tasks(store) == {
        "c.1": ("abandoned", "do not call"),
        "c.2": ("abandoned", "not a phone number"),
        "c.3": ("abandoned", None),
        "c.4": ("abandoned", None),
    }
    evening = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)  # 20:30 in Shanghai
    with unit_of_work(store) as session:
        again = claim(session, config, evening, agents)
    # wang is on c.4's live callback: li calls c.3 back
    assert [(p.number, p.agent.login) for p in again] == [("13900000013", "li")]


def test_unanswered_callbacks_retry_per_outcome_up_to_max_attempts(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    agent = an_agent(store)
    with unit_of_work(store) as session:
        task_id = missed(session, "d.1", "13900000021")
    at = T0 + timedelta(minutes=2)
    schedule = []
    for status, wait in (("NOANSWER", 30), ("BUSY", 10), ("CONGESTION", 0)):
        with unit_of_work(store) as session:
            placed = claim(session, config, at, [agent])
            assert [p.call_id for p in placed] == [callback_call_id(task_id, len(schedule) + 1)]
            assert claim(session, config, at, [agent]) == []  # live: not twice
            settle(session, config, placed[0].call_id, status, 0, None, at + timedelta(seconds=40))
            task = session.get_one(CallbackTask, task_id)
            schedule.append((task.attempts, task.last_outcome, task.next_at, task.closed_why))
            at = at + timedelta(seconds=40)
            if wait:
                assert claim(session, config, at + timedelta(minutes=wait - 1), [agent]) == []
                at = at + timedelta(minutes=wait)
    assert schedule == [
        (1, "no_answer", T0 + timedelta(minutes=32, seconds=40), None),
        (2, "busy", T0 + timedelta(minutes=42, seconds=80), None),
        (3, "failed", None, "not reached"),
    ]
    with unit_of_work(store) as session:
        task = session.get_one(CallbackTask, task_id)
        assert task.called_at == T0 + timedelta(minutes=2) and task.reached_at is None
        calls = session.scalars(select(Call).where(Call.uniqueid.startswith("callback-"))).all()
        assert len(calls) == 3 and all(c.ended_at and c.linkedid == "d.1" for c in calls)


def test_an_agent_who_does_not_answer_gives_the_attempt_back_and_a_reached_citizen_closes(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    agent = an_agent(store)
    with unit_of_work(store) as session:
        task_id = missed(session, "e.1", "13900000031")
    at = T0 + timedelta(minutes=3)
    with unit_of_work(store) as session:
        (first,) = claim(session, config, at, [agent])
        agent_missed(session, first.call_id, 3, at + timedelta(seconds=20))
        task = session.get_one(CallbackTask, task_id)
        assert (task.attempts, task.called_at, task.closed_at) == (0, None, None)
        assert claim(session, config, at + timedelta(seconds=25), [agent]) == []
        (second,) = claim(session, config, at + timedelta(seconds=60), [agent])
        assert (first.call_id, second.call_id) == (
            callback_call_id(task_id, 1),
            callback_call_id(task_id, 2),
        )
        end = at + timedelta(seconds=100)
        settle(session, config, second.call_id, "ANSWER", 12, "/rec/x.wav", end)
        settle(session, config, second.call_id, "NOANSWER", 0, None, end)  # repeated: ignored
        task = session.get_one(CallbackTask, task_id)
        assert (task.attempts, task.last_outcome, task.closed_why, task.agent_id) == (
            1,
            "completed",
            "called back",
            agent.agent_id,
        )
        assert task.reached_at == end - timedelta(seconds=12)
        figures = callback_figures(session, T0, T0 + timedelta(hours=1), 5)
        assert (figures.missed, figures.called_back, figures.reached, figures.within) == (
            1,
            1,
            1,
            1,
        )
        assert callback_figures(session, T0, T0 + timedelta(hours=1), 1).within == 0


def test_the_robots_caps_count_the_callbacks(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    agents = [an_agent(store, f"a{n}") for n in range(4)]
    with unit_of_work(store) as session:
        for n in range(5):
            missed(session, f"f.{n}", f"1390000004{n}")
    with unit_of_work(store) as session:  # two channels
        assert len(claim(session, config, T0, agents)) == 2
        assert claim(session, config, T0 + timedelta(seconds=5), agents) == []
    with unit_of_work(store) as session:
        for call in session.scalars(select(Call).where(Call.uniqueid.startswith("callback-"))):
            settle(session, config, call.uniqueid, "BUSY", 0, None, T0 + timedelta(seconds=10))
        # three calls a minute: one more now, two more a minute later
        assert len(claim(session, config, T0 + timedelta(seconds=20), agents)) == 1
        assert len(claim(session, config, T0 + timedelta(seconds=61), agents)) == 1
