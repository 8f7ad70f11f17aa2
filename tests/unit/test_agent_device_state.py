"""The agents' shared device state: events of two nodes in, one state on both nodes out.

Sequences as two nodes' AMI would send them (field names as Asterisk writes
them); times are the nodes' own event times, fixed numbers here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from agents.device_state import (
    AgentStates,
    DeviceState,
    SetState,
    seat_of_interface,
    state_interface,
)
from agents.state_sync import DeviceStateSync
from telephony.ami import AMIDisconnected, AMIEvent
from tests.support.events import eventually

NODES = ("ast1", "ast2")
NOT_INUSE, RINGING, INUSE = DeviceState.NOT_INUSE, DeviceState.RINGING, DeviceState.INUSE


def queue_event(name: str, uniqueid: str, seat: str = "s1", at: float = 1000.0) -> AMIEvent:
    return AMIEvent(
        name,
        {
            "Queue": "hotline-agents",
            "Interface": f"PJSIP/{seat}@sip-front",
            "MemberName": f"agent-{seat}",
            "Uniqueid": uniqueid,
            "Timestamp": f"{at:.6f}",
        },
    )


def everywhere(seat: str, state: DeviceState) -> list[SetState]:
    return [SetState(node, seat, state) for node in NODES]


def test_the_state_interface_is_named_once_and_the_seat_read_from_any_interface() -> None:
    assert state_interface("s7") == "Custom:agent-s7"
    assert seat_of_interface("PJSIP/s7@sip-front") == "s7"
    assert seat_of_interface("PJSIP/s7") == "s7"
    assert seat_of_interface("Local/sa3@sim-agent") == "sa3"
    assert seat_of_interface("PJSIP/agent-d005/sip:s7@127.0.0.10:5060") == "s7"
    assert seat_of_interface("Custom:agent-s7") is None
    assert seat_of_interface("PJSIP/") is None
    fields = SetState("ast1", "s7", INUSE).ami_fields()
    assert fields == {"Variable": "DEVICE_STATE(Custom:agent-s7)", "Value": "INUSE"}


def test_a_queue_call_on_one_node_sets_the_state_on_both() -> None:
    core = AgentStates(NODES)
    uid = "ast1-1700000000.1"
    assert core.feed("ast1", queue_event("AgentCalled", uid), 0) == everywhere("s1", RINGING)
    assert core.feed("ast1", queue_event("AgentConnect", uid), 0) == everywhere("s1", INUSE)
    assert core.feed("ast1", queue_event("AgentComplete", uid), 0) == everywhere("s1", NOT_INUSE)


def test_ring_no_answer_and_dump_free_the_agent() -> None:
    core = AgentStates(NODES)
    core.feed("ast2", queue_event("AgentCalled", "ast2-1.1"), 0)
    assert core.feed("ast2", queue_event("AgentRingNoAnswer", "ast2-1.1"), 0) == everywhere(
        "s1", NOT_INUSE
    )
    core.feed("ast2", queue_event("AgentCalled", "ast2-1.2"), 0)
    assert core.feed("ast2", queue_event("AgentDump", "ast2-1.2"), 0) == everywhere("s1", NOT_INUSE)


def test_a_refused_ring_on_one_node_does_not_free_an_agent_talking_on_the_other() -> None:
    # node 2 connected the agent; node 1 rang them before the sync reached it and the front
    # answered 486: app_queue on node 1 reports AgentRingNoAnswer, later than node 2's connect
    core = AgentStates(NODES)
    core.feed("ast2", queue_event("AgentCalled", "ast2-5.1", at=100), 0)
    core.feed("ast2", queue_event("AgentConnect", "ast2-5.1", at=101), 0)
    assert core.feed("ast1", queue_event("AgentCalled", "ast1-5.9", at=101.2), 0) == []
    assert core.feed("ast1", queue_event("AgentRingNoAnswer", "ast1-5.9", at=101.3), 0) == []
    assert core.state_of("s1") == INUSE
    assert core.feed("ast2", queue_event("AgentComplete", "ast2-5.1", at=160), 0) == everywhere(
        "s1", NOT_INUSE
    )


def test_ringing_on_one_node_while_up_on_the_other_stays_in_use_until_both_end() -> None:
    core = AgentStates(NODES)
    core.feed("ast1", queue_event("AgentCalled", "ast1-1.1"), 0)
    core.feed("ast1", queue_event("AgentConnect", "ast1-1.1"), 0)
    core.feed("ast2", queue_event("AgentCalled", "ast2-1.1"), 0)
    assert core.state_of("s1") == INUSE
    assert core.feed("ast1", queue_event("AgentComplete", "ast1-1.1"), 0) == everywhere(
        "s1", RINGING
    )
    assert core.feed("ast2", queue_event("AgentRingNoAnswer", "ast2-1.1"), 0) == everywhere(
        "s1", NOT_INUSE
    )


def test_repeated_and_late_events_change_nothing() -> None:
    core = AgentStates(NODES)
    uid = "ast1-9.9"
    core.feed("ast1", queue_event("AgentCalled", uid), 0)
    assert core.feed("ast1", queue_event("AgentCalled", uid), 0) == []
    core.feed("ast1", queue_event("AgentConnect", uid), 0)
    core.feed("ast1", queue_event("AgentComplete", uid), 0)
    # the same call's connect and ring again, late: the call is over and stays over
    assert core.feed("ast1", queue_event("AgentConnect", uid), 0) == []
    assert core.feed("ast1", queue_event("AgentCalled", uid), 0) == []
    assert core.state_of("s1") == NOT_INUSE


def test_a_call_whose_end_arrives_before_its_connect_stays_ended() -> None:
    core = AgentStates(NODES)
    assert core.feed("ast2", queue_event("AgentComplete", "ast2-3.3"), 0) == everywhere(
        "s1", NOT_INUSE
    )
    assert core.feed("ast2", queue_event("AgentConnect", "ast2-3.3"), 0) == []
    assert core.feed("ast2", queue_event("AgentCalled", "ast2-3.3"), 0) == []


def test_two_agents_are_kept_apart() -> None:
    core = AgentStates(NODES)
    core.feed("ast1", queue_event("AgentCalled", "ast1-1.1", seat="s1"), 0)
    core.feed("ast1", queue_event("AgentConnect", "ast1-1.1", seat="s1"), 0)
    assert core.feed("ast2", queue_event("AgentCalled", "ast2-1.1", seat="s2"), 0) == everywhere(
        "s2", RINGING
    )
    assert (core.state_of("s1"), core.state_of("s2")) == (INUSE, RINGING)


def test_events_without_an_agent_are_ignored() -> None:
    core = AgentStates(NODES)
    assert core.feed("ast1", AMIEvent("AgentCalled", {"Interface": "PJSIP/s1"}), 0) == []
    assert core.feed("ast1", AMIEvent("Hangup", {"Uniqueid": "ast1-1.1"}), 0) == []
    odd = queue_event("AgentCalled", "ast1-1.2")
    odd.fields["Interface"] = "IAX2/far"
    assert core.feed("ast1", odd, 0) == []


def test_an_agent_first_callback_holds_the_agent_from_ring_to_hang_up() -> None:
    core = AgentStates(NODES, seat_of_login={"wang": "s4"}.get)
    pop = AMIEvent(
        "VarSet",
        {
            "Variable": "HOTLINE_CALLBACK_POP",
            "Value": "wang|callback-12-1|13800000000",
            "Uniqueid": "ast2-7.1",
            "Channel": "PJSIP/sip-front-00000001",
        },
    )
    assert core.feed("ast2", pop, 0) == everywhere("s4", RINGING)
    up = AMIEvent("Newstate", {"Uniqueid": "ast2-7.1", "ChannelStateDesc": "Up"})
    assert core.feed("ast2", up, 0) == everywhere("s4", INUSE)
    other = AMIEvent("Hangup", {"Uniqueid": "ast2-7.2"})
    assert core.feed("ast2", other, 0) == []
    assert core.feed("ast2", AMIEvent("Hangup", {"Uniqueid": "ast2-7.1"}), 0) == everywhere(
        "s4", NOT_INUSE
    )


def test_a_callback_pop_of_an_unknown_login_is_ignored() -> None:
    core = AgentStates(NODES)
    pop = AMIEvent(
        "VarSet",
        {"Variable": "HOTLINE_CALLBACK_POP", "Value": "nobody|callback-1-1|1380", "Uniqueid": "u"},
    )
    assert core.feed("ast1", pop, 0) == []


def test_a_node_that_comes_back_gets_the_whole_state() -> None:
    core = AgentStates(NODES)
    core.feed("ast1", queue_event("AgentCalled", "ast1-1.1", seat="s1"), 0)
    core.feed("ast1", queue_event("AgentConnect", "ast1-1.1", seat="s1"), 0)
    core.know("s2")
    assert core.replay("ast2") == [
        SetState("ast2", "s1", INUSE),
        SetState("ast2", "s2", NOT_INUSE),
    ]


def test_a_node_back_without_the_channels_it_had_frees_their_agents() -> None:
    core = AgentStates(NODES)
    core.feed("ast2", queue_event("AgentCalled", "ast2-1.1", seat="s1"), 0)
    core.feed("ast2", queue_event("AgentConnect", "ast2-1.1", seat="s1"), 0)
    core.feed("ast2", queue_event("AgentCalled", "ast2-1.2", seat="s2"), 0)
    core.feed("ast2", queue_event("AgentConnect", "ast2-1.2", seat="s2"), 0)
    # the node restarted: only s2's call is still there
    suspects = core.live_on("ast2")
    assert suspects == {"ast2-1.1", "ast2-1.2"}
    # a call that began after the listing is not in it, and is not over
    core.feed("ast2", queue_event("AgentCalled", "ast2-1.3", seat="s3"), 0)
    assert core.keep_live("ast2", suspects, {"ast2-1.2"}, 2000) == everywhere("s1", NOT_INUSE)
    assert (core.state_of("s2"), core.state_of("s3")) == (INUSE, RINGING)


def test_a_lost_node_frees_only_its_own_calls() -> None:
    core = AgentStates(NODES)
    core.feed("ast1", queue_event("AgentCalled", "ast1-1.1", seat="s1"), 0)
    core.feed("ast1", queue_event("AgentConnect", "ast1-1.1", seat="s1"), 0)
    core.feed("ast2", queue_event("AgentCalled", "ast2-1.1", seat="s2"), 0)
    core.feed("ast2", queue_event("AgentConnect", "ast2-1.1", seat="s2"), 0)
    assert core.node_lost("ast2", 2000) == everywhere("s2", NOT_INUSE)
    assert core.state_of("s1") == INUSE


def test_a_ring_that_never_ended_expires_and_old_ends_are_forgotten() -> None:
    core = AgentStates(NODES)
    core.feed("ast1", queue_event("AgentCalled", "ast1-1.1", at=1000), 0)
    assert core.expire(1100) == []
    assert core.expire(1181) == everywhere("s1", NOT_INUSE)
    assert core.legs  # remembered as ended for a while
    core.expire(1181 + 3601)
    assert not core.legs


def test_the_node_time_is_read_and_missing_time_falls_back_to_now() -> None:
    core = AgentStates(NODES)
    event = queue_event("AgentCalled", "ast1-1.1")
    del event.fields["Timestamp"]
    core.feed("ast1", event, now=5000)
    assert core.expire(5000 + 100) == []
    assert core.expire(5000 + 181) == everywhere("s1", NOT_INUSE)


# -- the runner over fake links -------------------------------------------------------------
class FakeLink:
    """A node's AMI client: records Setvars, plays events, goes down and up on demand."""

    def __init__(self, reachable: bool = True) -> None:
        self.connected = asyncio.Event()
        self.on_connect: list[Callable[[], Awaitable[None]]] = []
        self.on_disconnect: list[Callable[[], Awaitable[None]]] = []
        self.reachable = reachable
        self.channels: set[str] = set()
        self.states: dict[str, str] = {}
        self.writes: list[tuple[str, str]] = []
        self.actions: list[tuple[str, dict[str, str]]] = []
        self.queues: list[tuple[tuple[str, ...], asyncio.Queue[AMIEvent]]] = []

    async def connect(self) -> None:
        if not self.reachable:
            raise OSError("connection refused")
        self.connected.set()

    async def action(self, name: str, timeout: float | None = None, **fields: str) -> dict:
        if not self.connected.is_set():
            raise AMIDisconnected(f"{name} not sent")
        self.actions.append((name, fields))
        if name == "Setvar":
            self.states[fields["Variable"]] = fields["Value"]
            self.writes.append((fields["Variable"], fields["Value"]))
        elif name == "CoreShowChannels":
            for uid in sorted(self.channels):
                self.emit(AMIEvent("CoreShowChannel", {"Uniqueid": uid}))
            self.emit(AMIEvent("CoreShowChannelsComplete", {}))
        return {"Response": "Success"}

    def subscribe(self, *names: str, maxsize: int = 10000) -> asyncio.Queue[AMIEvent]:
        queue: asyncio.Queue[AMIEvent] = asyncio.Queue()
        self.queues.append((names, queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AMIEvent]) -> None:
        self.queues = [(n, q) for n, q in self.queues if q is not queue]

    def emit(self, event: AMIEvent) -> None:
        for names, queue in self.queues:
            if event.name in names:
                queue.put_nowait(event)

    async def drop(self) -> None:
        self.connected.clear()
        for hook in self.on_disconnect:
            await hook()

    async def restore(self) -> None:
        self.connected.set()
        for hook in self.on_connect:
            await hook()

    def state(self, seat: str) -> str | None:
        return self.states.get(f"DEVICE_STATE({state_interface(seat)})")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def running(sync: DeviceStateSync, stop: asyncio.Event) -> asyncio.Task[None]:
    task = asyncio.create_task(sync.run(stop))
    await eventually(lambda: all(w.up for w in sync.watch.values()) or None, timeout=5)
    return task


async def test_the_runner_writes_a_call_on_one_node_to_both_nodes() -> None:
    one, two = FakeLink(), FakeLink()
    sync = DeviceStateSync({"ast1": one, "ast2": two}, clock=Clock(), tick_seconds=0.05)
    stop = asyncio.Event()
    task = await running(sync, stop)
    one.emit(queue_event("AgentCalled", "ast1-1.1"))
    await eventually(lambda: one.state("s1") == two.state("s1") == "RINGING", timeout=5)
    one.emit(queue_event("AgentRingNoAnswer", "ast1-1.1"))
    await eventually(lambda: one.state("s1") == two.state("s1") == "NOT_INUSE", timeout=5)
    # every change reached the node that rang, in order: app_queue frees its member on a change
    assert [value for _, value in one.writes] == ["RINGING", "NOT_INUSE"]
    stop.set()
    await task


async def test_the_runner_sends_the_state_to_a_node_that_comes_back() -> None:
    one, two = FakeLink(), FakeLink()
    sync = DeviceStateSync({"ast1": one, "ast2": two}, clock=Clock(), tick_seconds=0.05)
    stop = asyncio.Event()
    task = await running(sync, stop)
    await two.drop()
    one.emit(queue_event("AgentCalled", "ast1-1.1"))
    one.emit(queue_event("AgentConnect", "ast1-1.1"))
    await eventually(lambda: one.state("s1") == "INUSE", timeout=5)
    assert two.state("s1") is None  # away: nothing written, nothing failed loudly
    await two.restore()
    await eventually(lambda: two.state("s1") == "INUSE", timeout=5)
    stop.set()
    await task


async def test_a_node_down_at_the_start_is_retried_and_then_brought_up_to_date() -> None:
    one, two = FakeLink(), FakeLink(reachable=False)
    sync = DeviceStateSync(
        {"ast1": one, "ast2": two},
        clock=Clock(),
        tick_seconds=0.05,
        retry_seconds=0.05,
        grace_seconds=60,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(sync.run(stop))
    await eventually(lambda: sync.watch["ast1"].up or None, timeout=5)
    one.emit(queue_event("AgentCalled", "ast1-1.1"))
    await eventually(lambda: one.state("s1") == "RINGING", timeout=5)
    assert sync.watch["ast2"].warned and not sync.watch["ast2"].up
    two.reachable = True
    await eventually(lambda: two.state("s1") == "RINGING", timeout=5)
    stop.set()
    await task


async def test_a_node_away_past_the_grace_frees_the_agents_it_held() -> None:
    clock = Clock()
    one, two = FakeLink(), FakeLink()
    sync = DeviceStateSync(
        {"ast1": one, "ast2": two}, clock=clock, tick_seconds=0.02, grace_seconds=10
    )
    stop = asyncio.Event()
    task = await running(sync, stop)
    two.emit(queue_event("AgentCalled", "ast2-1.1", at=clock.now))
    two.emit(queue_event("AgentConnect", "ast2-1.1", at=clock.now))
    await eventually(lambda: one.state("s1") == "INUSE", timeout=5)
    await two.drop()
    clock.now += 5
    await asyncio.sleep(0.1)
    assert one.state("s1") == "INUSE"  # within the grace: the node may come back with the call
    clock.now += 6
    await eventually(lambda: one.state("s1") == "NOT_INUSE", timeout=5)
    stop.set()
    await task


async def test_a_node_back_without_the_call_frees_the_agent_on_every_node() -> None:
    one, two = FakeLink(), FakeLink()
    sync = DeviceStateSync({"ast1": one, "ast2": two}, clock=Clock(), tick_seconds=0.05)
    stop = asyncio.Event()
    task = await running(sync, stop)
    two.emit(queue_event("AgentCalled", "ast2-1.1"))
    two.emit(queue_event("AgentConnect", "ast2-1.1"))
    await eventually(lambda: one.state("s1") == "INUSE", timeout=5)
    await two.drop()
    two.channels = set()  # restarted: the call is gone, its AgentComplete never came
    await two.restore()
    await eventually(lambda: one.state("s1") == two.state("s1") == "NOT_INUSE", timeout=5)
    assert (one.state("s1"), two.state("s1")) == ("NOT_INUSE", "NOT_INUSE")
    stop.set()
    await task


async def test_the_runner_spreads_an_auto_pause_to_the_other_node() -> None:
    one, two = FakeLink(), FakeLink()
    sync = DeviceStateSync({"ast1": one, "ast2": two}, clock=Clock(), tick_seconds=0.05)
    stop = asyncio.Event()
    task = await running(sync, stop)
    pause = queue_event("QueueMemberPause", "", at=1000)
    pause.fields |= {"Paused": "1", "PausedReason": "Auto-Pause"}
    one.emit(pause)
    wanted = (
        "QueuePause",
        {"Interface": "PJSIP/s1@sip-front", "Paused": "true", "Reason": "Auto-Pause"},
    )
    await eventually(lambda: wanted in two.actions or None, timeout=5)
    assert not any(name == "QueuePause" for name, _ in one.actions)
    stop.set()
    await task


async def test_a_standby_follows_everything_writes_nothing_and_on_taking_over_sends_it_all() -> (
    None
):
    one, two = FakeLink(), FakeLink()
    sync = DeviceStateSync(
        {"ast1": one, "ast2": two}, clock=Clock(), tick_seconds=0.05, writing=False
    )
    stop = asyncio.Event()
    task = await running(sync, stop)
    one.emit(queue_event("AgentCalled", "ast1-1.1"))
    one.emit(queue_event("AgentConnect", "ast1-1.1"))
    await eventually(lambda: sync.core.state_of("s1") == INUSE or None, timeout=5)
    await asyncio.sleep(0.1)
    assert one.writes == two.writes == []
    sync.lead(True)  # the writer died: this process takes over
    await eventually(lambda: one.state("s1") == two.state("s1") == "INUSE", timeout=5)
    stop.set()
    await task


async def test_an_event_the_core_cannot_read_is_logged_and_the_sync_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, two = FakeLink(), FakeLink()
    sync = DeviceStateSync({"ast1": one, "ast2": two}, clock=Clock(), tick_seconds=0.05)
    stop = asyncio.Event()
    task = await running(sync, stop)
    feed = sync.core.feed

    def fussy(node: str, event: AMIEvent, now: float) -> list[SetState]:
        if event.get("Uniqueid") == "ast1-odd":
            raise ValueError("odd")
        return feed(node, event, now)

    monkeypatch.setattr(sync.core, "feed", fussy)
    one.emit(queue_event("AgentCalled", "ast1-odd"))
    one.emit(queue_event("AgentCalled", "ast1-1.1"))
    await eventually(lambda: two.state("s1") == "RINGING", timeout=5)
    assert two.state("s1") == "RINGING" and not task.done()  # the odd event stopped nothing
    stop.set()
    await task
