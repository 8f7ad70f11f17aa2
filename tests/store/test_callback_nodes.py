"""Agent-first callbacks in a cluster: asked of every node, dialled through the least busy one.

Fake managers stand for the nodes (what goes out to each, not what Asterisk
then does): the agent is rung through the front, the citizen dialled through
it, both from the node with the fewest calls that is neither draining nor lost;
a lost node's callbacks in flight are settled once as failed ("node lost").
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents.callback_dialer import NODE_LOST, CallbackDialer, FreeAgent, claim, end_lost
from agents.callback_nodes import CallbackLinks
from core.config import ClusterConfig, HotlineConfig, load_config
from core.vocabulary import CallDirection
from db.callbacks import open_callback_task
from db.cluster import mark_draining, mark_lost
from db.models import Agent, Call, CallbackTask, User
from db.session import unit_of_work
from telephony.ami import AMIEvent, OriginateResult
from tests.support.config import write_config

T0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
LINE = "12300"
SEAT = "agent-d001"


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    one_box = load_config(
        write_config(
            tmp_path,
            lines=[{"did": LINE, "name": "people", "greeting": "greeting_main"}],
            callback={"max_attempts": 3},
            robot={"max_channels": 5, "calls_per_minute": 10},
        )
    )
    return one_box.model_copy(update={"cluster": ClusterConfig()})  # ast1, ast2


class FakeNode:
    """A node's manager: one idle agent in its queue status, its calls now, what it dialled."""

    def __init__(self, calls: int, login: str = "wang") -> None:
        self.calls, self.login = calls, login
        self.connected = asyncio.Event()
        self.connected.set()
        self.action_timeout = 2.0
        self.queues: list[tuple[frozenset[str], asyncio.Queue[AMIEvent]]] = []
        self.originated: list[tuple[str, dict[str, Any]]] = []
        self.ids = 0

    def next_action_id(self) -> str:
        self.ids += 1
        return f"id-{self.ids}"

    def subscribe(self, *names: str) -> asyncio.Queue[AMIEvent]:
        queue: asyncio.Queue[AMIEvent] = asyncio.Queue()
        self.queues.append((frozenset(names), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AMIEvent]) -> None:
        self.queues = [(n, q) for n, q in self.queues if q is not queue]

    def _send(self, name: str, **fields: str) -> None:
        for names, queue in self.queues:
            if name in names:
                queue.put_nowait(AMIEvent(name, fields))

    async def action(self, name: str, **fields: str) -> dict[str, str]:
        if name == "CoreStatus":
            return {"Response": "Success", "CoreCurrentCalls": str(self.calls)}
        if name == "QueueStatus":
            action_id = fields["ActionID"]
            self._send(
                "QueueMember",
                ActionID=action_id,
                Queue="hotline-agents",
                MemberName=self.login,
                Location=f"PJSIP/{SEAT}@sip-front",
                Status="1",
                Paused="0",
                InCall="0",
                LastCall="0",
            )
            self._send("QueueStatusComplete", ActionID=action_id)
        return {"Response": "Success"}

    async def originate(self, channel: str, **fields: Any) -> OriginateResult:
        self.originated.append((channel, fields))
        return OriginateResult(fields["action_id"], True, 4, channel, "ast-1.1", {})

    async def close(self) -> None:
        pass


def seed(store: sessionmaker[Session], number: str = "13900000041") -> int:
    with unit_of_work(store) as session:
        user = User(username="wang", password_hash="!", role="agent")
        session.add(user)
        session.flush()
        session.add(Agent(user_id=user.id, endpoint=SEAT, phone="desk", queues="hotline-agents"))
        session.add(
            Call(
                uniqueid="ast1-1764900000.1",
                direction=CallDirection.INBOUND,
                caller_number=number,
                did=LINE,
                started_at=T0,
                ended_at=T0 + timedelta(seconds=30),
            )
        )
        task = open_callback_task(
            session,
            uniqueid="ast1-1764900000.1",
            caller_number=number,
            ticket=None,
            reason="abandoned",
            created_at=T0,
        )
        return task.id


def dialer_on(config: HotlineConfig, store: sessionmaker[Session], nodes: dict[str, FakeNode]):  # type: ignore[no-untyped-def]
    links = CallbackLinks(dict(nodes), cluster=True, linked=set(nodes))  # type: ignore[arg-type]
    return CallbackDialer(config, None, store, links)


async def test_the_agent_and_the_citizen_are_dialled_through_the_least_busy_node(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    seed(store)
    ast1, ast2 = FakeNode(calls=3), FakeNode(calls=1)
    dialer = dialer_on(config, store, {"ast1": ast1, "ast2": ast2})
    try:
        (placed,) = await dialer.tick()
        await asyncio.gather(*dialer.placing)
    finally:
        await dialer.stop()
    assert placed.node == "ast2" and ast1.originated == []
    ((channel, fields),) = ast2.originated
    assert channel == f"PJSIP/{SEAT}@sip-front"
    assert fields["variables"]["HOTLINE_CALLBACK_DIAL"] == "PJSIP/13900000041@sip-front"
    with unit_of_work(store) as session:
        call = session.scalars(select(Call).where(Call.uniqueid == placed.call_id)).one()
        assert call.node == "ast2"


async def test_a_draining_node_is_passed_over_and_no_usable_node_dials_nothing(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    seed(store)
    ast1, ast2 = FakeNode(calls=3), FakeNode(calls=1)
    with unit_of_work(store) as session:
        mark_draining(session, "ast2", T0)
    ast1.connected.clear()  # and ast1's link is down
    dialer = dialer_on(config, store, {"ast1": ast1, "ast2": ast2})
    try:
        assert await dialer.tick() == []
        ast1.connected.set()
        (placed,) = await dialer.tick()
    finally:
        await dialer.stop()
    assert placed.node == "ast1" and ast2.originated == []


def test_a_lost_nodes_callbacks_in_flight_are_settled_once_as_failed(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    task_id = seed(store)
    with unit_of_work(store) as session:
        agent = session.scalars(select(Agent)).one()
        wang = FreeAgent(agent.id, "wang", f"PJSIP/{SEAT}@sip-front")
        (placed,) = claim(session, config, T0 + timedelta(minutes=1), [wang], "ast2")
    with unit_of_work(store) as session:
        assert end_lost(session, config, T0 + timedelta(minutes=2)) == 0  # not lost yet
        mark_lost(session, "ast2", T0 + timedelta(minutes=2))
    with unit_of_work(store) as session:
        assert end_lost(session, config, T0 + timedelta(minutes=3)) == 1
        assert end_lost(session, config, T0 + timedelta(minutes=4)) == 0  # once
        call = session.scalars(select(Call).where(Call.uniqueid == placed.call_id)).one()
        task = session.get_one(CallbackTask, task_id)
        assert call.hangup_cause == NODE_LOST and call.ended_at is not None
        assert task.last_outcome == "failed" and task.closed_at is None
        assert task.next_at is not None and task.next_at > T0 + timedelta(minutes=3)
