"""A member watching a shared custom device state is rung only while it reads NOT_INUSE.

This is the mechanism that keeps an agent busy on one node from being rung by
another (issue 22): every node's queue lists the agent with `StateInterface =
Custom:agent-<seat>`, and the sync (agents.device_state) writes that state on
every node from all nodes' AMI events. Here ONE real Asterisk stands for a
node: states written over AMI keep app_queue off a member or let it ring them,
and the sync itself, on the robot's own AMI user, follows a real queue call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from agents.cluster_control import ensure_state
from agents.control import Membership, log_in
from agents.device_state import DeviceState, state_interface
from agents.state_sync import DeviceStateSync
from hotline.app import Hotline
from links.ami import ami_client
from telephony.ami import AMIClient, AMIEvent
from tests.support.agents import ScriptedAgent, log_out_everyone, scripted_agent
from tests.support.calls import calls_ended, citizen_call
from tests.support.events import eventually, wait_for_event

AGENTS_LINE = "12300"
QUEUE = "hotline-agents"


def shared(agent: ScriptedAgent) -> Membership:
    """The scripted agent as a cluster member: its seat rung, the shared state watched."""
    return Membership(
        agent.login,
        f"Local/{agent.endpoint}@sim-agent",
        (QUEUE,),
        state_interface(agent.endpoint),
    )


async def set_state(ami: AMIClient, agent: ScriptedAgent, state: DeviceState) -> None:
    await ami.action(
        "Setvar", Variable=f"DEVICE_STATE({state_interface(agent.endpoint)})", Value=state
    )


async def state_of(ami: AMIClient, agent: ScriptedAgent) -> str:
    reply = await ami.action("Getvar", Variable=f"DEVICE_STATE({state_interface(agent.endpoint)})")
    return reply.get("Value", "")


@pytest.fixture
async def synced(hotline: Hotline, ami: AMIClient) -> AsyncIterator[DeviceStateSync]:
    """The hotline with the sync running on the robot's AMI user (as a node's sync would)."""
    link = ami_client(hotline.config)
    sync = DeviceStateSync({"ast1": link})
    stop = asyncio.Event()
    task = asyncio.create_task(sync.run(stop))
    await eventually(lambda: sync.watch["ast1"].up or None, timeout=30, what="the sync's link")
    try:
        yield sync
    finally:
        stop.set()
        await task
        await link.close()
        await log_out_everyone(hotline, ami)


def called(events: list[AMIEvent]) -> list[str]:
    return [event.get("MemberName") for event in events if event.name == "AgentCalled"]


async def test_a_member_in_use_is_not_rung_and_the_free_one_takes_every_call(
    synced: DeviceStateSync, hotline: Hotline, ami: AMIClient
) -> None:
    busy = await scripted_agent(hotline, ami, "zhou", answer_after="1", talk=2)
    free = await scripted_agent(hotline, ami, "wu", answer_after="1", talk=2)
    await set_state(ami, busy, DeviceState.INUSE)  # on a call on another node
    await set_state(ami, free, DeviceState.NOT_INUSE)
    await log_in(ami, shared(busy))
    await log_in(ami, shared(free))
    rung = ami.subscribe("AgentCalled", "AgentConnect")
    try:
        # two callers at once: with both members free each would get one
        calls = await asyncio.gather(
            citizen_call(ami, AGENTS_LINE, "w60", caller="13900139021"),
            citizen_call(ami, AGENTS_LINE, "w60", caller="13900139024"),
        )
        await calls_ended(hotline, *(call.uniqueid for call in calls))
        events = [await wait_for_event(rung, lambda e: True, timeout=5)]
        while not rung.empty():
            events.append(rung.get_nowait())
    finally:
        ami.unsubscribe(rung)
    connected = [e.get("MemberName") for e in events if e.name == "AgentConnect"]
    assert connected == ["wu", "wu"], connected
    assert called(events) == ["wu", "wu"], called(events)
    assert await state_of(ami, busy) == "INUSE"  # nobody touched it: the sync saw no call of its


async def test_a_caller_waits_while_the_only_member_is_in_use_and_is_put_through_once_free(
    synced: DeviceStateSync, hotline: Hotline, ami: AMIClient
) -> None:
    agent = await scripted_agent(hotline, ami, "qian", answer_after="1", talk=2)
    await set_state(ami, agent, DeviceState.INUSE)
    await log_in(ami, shared(agent))
    events = ami.subscribe("QueueCallerJoin", "AgentCalled", "AgentConnect")
    placed = asyncio.create_task(citizen_call(ami, AGENTS_LINE, "w60", caller="13900139022"))
    try:
        await wait_for_event(events, lambda e: e.name == "QueueCallerJoin", timeout=60)
        # the member is listed but in use: the caller waits, nobody is rung
        with pytest.raises(TimeoutError):
            await wait_for_event(events, lambda e: e.name == "AgentCalled", timeout=4)
        await set_state(ami, agent, DeviceState.NOT_INUSE)  # the other node's call ended
        ring = await wait_for_event(events, lambda e: e.name == "AgentCalled", timeout=30)
        assert ring.get("MemberName") == "qian"
        await wait_for_event(events, lambda e: e.name == "AgentConnect", timeout=30)
        call = await placed
    finally:
        ami.unsubscribe(events)
        if not placed.done():
            placed.cancel()
    await calls_ended(hotline, call.uniqueid)


async def test_the_sync_follows_a_real_queue_call_ring_talk_and_end(
    synced: DeviceStateSync, hotline: Hotline, ami: AMIClient
) -> None:
    agent = await scripted_agent(hotline, ami, "sun", answer_after="2", talk=6)
    await set_state(ami, agent, DeviceState.NOT_INUSE)
    await log_in(ami, shared(agent))
    seen: list[str] = []

    async def watch() -> None:
        while True:
            value = await state_of(ami, agent)
            if not seen or seen[-1] != value:
                seen.append(value)
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    try:
        call = await citizen_call(ami, AGENTS_LINE, "w40", caller="13900139023")
        await calls_ended(hotline, call.uniqueid)
        await eventually(lambda: seen[-1] == "NOT_INUSE" or None, timeout=10)
    finally:
        watcher.cancel()
    # what every node's queue read for this agent, in order (polled: a short ring may be missed)
    assert "INUSE" in seen, seen
    assert seen[0] == "NOT_INUSE" and seen[-1] == "NOT_INUSE", seen
    assert synced.applied["ast1"] >= 2  # at least INUSE and NOT_INUSE were written by the sync
    assert synced.core.state_of(agent.endpoint) == DeviceState.NOT_INUSE


async def test_log_in_on_the_robots_user_makes_an_unset_state_not_in_use_and_leaves_a_set_one(
    hotline: Hotline, ami: AMIClient
) -> None:
    link = ami_client(hotline.config)  # the user a cluster's console and sync log in with
    await link.connect()
    try:
        fresh = Membership("x", "Local/x@sim-agent", (QUEUE,), f"Custom:agent-t{uuid4().hex[:10]}")
        variable = f"DEVICE_STATE({fresh.state_interface})"
        assert (await link.action("Getvar", Variable=variable)).get("Value") == "UNKNOWN"
        await ensure_state(link, fresh)
        assert (await link.action("Getvar", Variable=variable)).get("Value") == "NOT_INUSE"
        await link.action("Setvar", Variable=variable, Value=DeviceState.INUSE)
        await ensure_state(link, fresh)
        assert (await link.action("Getvar", Variable=variable)).get("Value") == "INUSE"
    finally:
        await link.close()
