"""Two cluster robots run the agent-first callback dialer: their claims never share an agent
or a citizen.

Each robot asks every node's app_queue which agents are idle, so both may see
the same agent free at once; the claim (under the store's robot lock, one
transaction) is what keeps the second from ringing that agent or calling that
task's citizen again. The first claim is held open while the second runs.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agents.callback_dialer import FreeAgent, Placed, claim
from agents.store import SCRIPTED, bind_seat
from core.config import HotlineConfig, load_config
from core.vocabulary import CallDirection
from db.callbacks import open_callback_task
from db.models import Call, User
from db.session import unit_of_work
from tests.support.config import write_config

T0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path, robot={"max_channels": 8, "calls_per_minute": 20}))


def an_agent(store: sessionmaker[Session], login: str) -> FreeAgent:
    with unit_of_work(store) as session:
        user = User(username=login, password_hash="!", role="agent")
        session.add(user)
        session.flush()
        agent = bind_seat(session, user, [], SCRIPTED, ["hotline-agents"])
        return FreeAgent(agent.id, login, f"Local/{agent.endpoint}@sim-agent")


def missed(store: sessionmaker[Session], uniqueid: str, number: str, minute: int) -> int:
    """A missed caller's task, made `minute` minutes after T0 (the oldest is called first)."""
    at = T0 + timedelta(minutes=minute)
    with unit_of_work(store) as session:
        session.add(
            Call(
                uniqueid=uniqueid,
                direction=CallDirection.INBOUND,
                caller_number=number,
                started_at=at,
                ended_at=at + timedelta(seconds=30),
                last_step="queue",
            )
        )
        return open_callback_task(
            session,
            uniqueid=uniqueid,
            caller_number=number,
            ticket=None,
            reason="abandoned",
            created_at=at,
        ).id


def pairs(placed: list[Placed]) -> list[tuple[int, str, str]]:
    return [(job.task_id, job.agent.login, job.node) for job in placed]


def claims_at_once(
    store: sessionmaker[Session],
    config: HotlineConfig,
    first: list[FreeAgent],
    second: list[FreeAgent],
) -> tuple[list[Placed], list[Placed]]:
    """Robot one's claim held open while robot two's runs; then robot one commits."""
    now = T0 + timedelta(minutes=30)
    found: list[object] = []

    def robot_two() -> None:
        try:
            with unit_of_work(store) as session:
                found.append(claim(session, config, now, second, "ast2"))
        except Exception as exc:
            found.append(exc)

    other = threading.Thread(target=robot_two)
    with unit_of_work(store) as session:
        placed = claim(session, config, now, first, "ast1")
        other.start()
        other.join(1.0)  # it waits on the robot lock
    other.join(60)
    assert len(found) == 1 and isinstance(found[0], list), found
    return placed, found[0]


@pytest.mark.parametrize("database_kind", ["postgresql"], indirect=True)
def test_an_agent_both_robots_see_free_is_rung_by_one(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    wang, li = an_agent(store, "wang"), an_agent(store, "li")
    first = missed(store, "ast1-1796464800.1", "13900000001", 0)
    second = missed(store, "ast2-1796464800.2", "13900000002", 1)
    one, two = claims_at_once(store, config, [wang], [wang, li])
    assert pairs(one) == [(first, "wang", "ast1")]
    assert pairs(two) == [(second, "li", "ast2")]  # not wang again, not the first task again


@pytest.mark.parametrize("database_kind", ["postgresql"], indirect=True)
def test_a_task_one_robot_claimed_is_not_called_by_the_other(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    wang, li = an_agent(store, "wang"), an_agent(store, "li")
    only = missed(store, "ast1-1796464800.1", "13900000001", 0)
    one, two = claims_at_once(store, config, [wang], [li])
    assert pairs(one) == [(only, "wang", "ast1")]
    assert two == []


@pytest.mark.parametrize("database_kind", ["postgresql"], indirect=True)
def test_a_citizen_on_a_callback_is_not_called_for_their_other_missed_call(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    wang, li = an_agent(store, "wang"), an_agent(store, "li")
    first = missed(store, "ast1-1796464800.1", "13900000001", 0)
    missed(store, "ast2-1796464800.2", "13900000001", 1)  # the same citizen, missed again
    one, two = claims_at_once(store, config, [wang], [li])
    assert pairs(one) == [(first, "wang", "ast1")]
    assert two == []
