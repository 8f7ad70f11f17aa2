"""The console across a cluster's nodes: which node a call is acted on, every node followed.

No Asterisk: the config alone decides the node of a call, and fake AMI links
stand for the nodes' managers when the console follows them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.conference import ThreeWayError, agent_channel
from agents.listen import phone_channel
from core.config import ClusterConfig, HotlineConfig, load_config
from core.vocabulary import AgentState
from dashboard.agent_pop import AgentDesk
from dashboard.live import LiveCalls
from dashboard.wallboard import NodesWaiting
from links import ami as links
from links.ami import (
    ONE_BOX,
    LinkStates,
    NoSuchNode,
    ami_for_call,
    follow_link,
    follow_links,
    link_names,
)
from telephony.ami import AMIConnectError, AMIEvent
from tests.support.config import write_config


@pytest.fixture
def one_box(tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path))


@pytest.fixture
def cluster(one_box: HotlineConfig) -> HotlineConfig:
    return one_box.model_copy(update={"cluster": ClusterConfig()})  # ast1 .11, ast2 .12


# -- which node a call is acted on -------------------------------------------------------
def test_a_call_is_acted_on_through_the_node_its_uniqueid_names(cluster: HotlineConfig) -> None:
    two = ami_for_call(cluster, "ast2-1764900000.7")
    assert (two.host, two.port) == ("127.0.0.12", 5038)
    assert two.username == cluster.asterisk.ami.username
    # a callback's own id names no node: its Linkedid (the agent's channel) does
    one = ami_for_call(cluster, "callback-4-1", "ast1-1764900000.9")
    assert one.host == "127.0.0.11"
    assert link_names(cluster) == ("ast1", "ast2")


def test_a_cluster_call_naming_no_known_node_is_refused(cluster: HotlineConfig) -> None:
    with pytest.raises(NoSuchNode, match="ast7"):
        ami_for_call(cluster, "ast7-1764900000.7")
    with pytest.raises(NoSuchNode, match="no node named"):
        ami_for_call(cluster, "1764900000.7", "callback-4-1")


def test_one_box_acts_on_its_one_asterisk_whatever_the_id_says(one_box: HotlineConfig) -> None:
    for uniqueid in ("ast1-1764900000.7", "1764900000.7", "callback-4-1"):
        client = ami_for_call(one_box, uniqueid)
        assert (client.host, client.port) == (one_box.asterisk.ami.host, one_box.asterisk.ami.port)
    assert link_names(one_box) == (ONE_BOX,)


def test_connected_means_every_link_and_the_note_names_the_nodes_down() -> None:
    states = LinkStates(("ast1", "ast2"))
    assert not states.connected and states.down() == ["ast1", "ast2"]
    assert states.set("ast1", True) and not states.set("ast1", True)
    states.set("ast2", True)
    assert states.connected and states.note() == ""
    states.set("ast2", False)
    assert not states.connected and states.down() == ["ast2"]
    assert "ast2" in states.note() and "ast1" not in states.note()
    assert LinkStates().note() == ""  # one box: the page's own "not connected" says it


# -- every node followed -----------------------------------------------------------------
class FakeLink:
    """A node's AMI link: connects (or refuses), hands out queued events."""

    def __init__(self, events: list[AMIEvent], refuse: bool = False) -> None:
        self.events, self.refuse = events, refuse
        self.connected = asyncio.Event()
        self.queue: asyncio.Queue[AMIEvent] = asyncio.Queue()
        self.actions: list[str] = []
        self.closed = False

    async def connect(self) -> None:
        if self.refuse:
            raise AMIConnectError("connection refused")
        self.connected.set()

    def subscribe(self, *names: str) -> asyncio.Queue[AMIEvent]:
        for event in self.events:
            self.queue.put_nowait(event)
        return self.queue

    def unsubscribe(self, queue: asyncio.Queue[AMIEvent]) -> None:
        pass

    async def action(self, name: str, **fields: str) -> dict[str, str]:
        self.actions.append(name)
        return {"Response": "Success"}

    async def close(self) -> None:
        self.closed = True
        self.connected.clear()


def event(name: str, **fields: str) -> AMIEvent:
    return AMIEvent(name, fields)


async def test_every_node_feeds_one_table_and_a_node_down_is_named(
    cluster: HotlineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = {
        "ast1": FakeLink([event("Hangup", Uniqueid="ast1-1.1")]),
        "ast2": FakeLink([], refuse=True),
    }
    monkeypatch.setattr(links, "link_client", lambda config, name: fakes[name])
    fed: list[tuple[str, str]] = []
    states = LinkStates(link_names(cluster))
    connected: list[str] = []

    async def on_connect(name: str, client: object) -> None:
        connected.append(name)

    stop = asyncio.Event()
    following = asyncio.create_task(
        follow_links(
            cluster,
            stop,
            ("Hangup",),
            lambda node, e: fed.append((node, e.get("Uniqueid"))),
            states.set,
            "test",
            on_connect,
        )
    )
    async with asyncio.timeout(20):
        while not (fed and connected and states.down() == ["ast2"]):
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(following, 10)
    assert fed == [("ast1", "ast1-1.1")]
    assert connected == ["ast1"]
    assert fakes["ast1"].closed and not states.connected


async def test_a_link_that_comes_back_by_itself_is_asked_again() -> None:
    fake = FakeLink([])
    asked: list[str] = []
    states: list[bool] = []
    stop = asyncio.Event()

    async def on_connect(name: str, client: object) -> None:
        asked.append(name)

    async def until(check: Callable[[], bool]) -> None:
        async with asyncio.timeout(20):
            while not check():
                await asyncio.sleep(0.01)

    task = asyncio.create_task(
        follow_link(
            lambda: fake,  # type: ignore[arg-type,return-value]
            "ast1",
            stop,
            (),
            lambda *_: None,
            lambda _name, up: states.append(up),
            "t",
            on_connect,
        )
    )
    await until(lambda: asked == ["ast1"])
    fake.connected.clear()  # the client lost its link and reconnects by itself
    await until(lambda: states[-1] is False)
    fake.connected.set()
    await until(lambda: len(asked) == 2)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert asked == ["ast1", "ast1"]


# -- the agent's desk across nodes -------------------------------------------------------
def called(uniqueid: str, login: str = "wang", **more: str) -> AMIEvent:
    fields = {
        "MemberName": login,
        "Uniqueid": uniqueid,
        "Linkedid": uniqueid,
        "Channel": f"PJSIP/sip-front-{uniqueid[-1]}",
        "CallerIDNum": "13800138000",
        "Queue": "hotline-agents",
        "Interface": "PJSIP/agent-w001@sip-front",
        **more,
    }
    return AMIEvent("AgentCalled", fields)


def member(name: str, uniqueid: str, login: str = "wang", **more: str) -> AMIEvent:
    return AMIEvent(name, {"MemberName": login, "Uniqueid": uniqueid, **more})


def test_another_nodes_refused_ring_never_replaces_the_call_the_agent_is_on() -> None:
    desk = AgentDesk()
    desk.feed(called("ast1-1764900000.1"))
    desk.feed(member("AgentConnect", "ast1-1764900000.1", DestChannel="PJSIP/sip-front-0000a"))
    # ast2 rang them anyway (its state not yet synced); the front refused it with 486
    desk.feed(called("ast2-1764900000.1"))
    desk.feed(member("AgentRingNoAnswer", "ast2-1764900000.1"))
    ring = desk.ring("wang")
    assert ring is not None and ring.uniqueid == "ast1-1764900000.1"
    assert (ring.state, ring.agent_channel) == ("connected", "PJSIP/sip-front-0000a")
    assert "agent_channel" not in ring.public()
    state = desk.state("wang")
    assert state is not None and state[0] == AgentState.ON_CALL
    assert desk.rung_for("wang", "ast2-1764900000.1") is None  # rung out: not fileable


def test_the_ring_the_agent_answers_becomes_their_call_whichever_came_last() -> None:
    desk = AgentDesk()
    desk.feed(called("ast1-1764900000.1"))
    desk.feed(called("ast2-1764900000.1"))  # both ringing at once, ast2's shown
    desk.feed(member("AgentRingNoAnswer", "ast2-1764900000.1"))
    desk.feed(member("AgentConnect", "ast1-1764900000.1", DestChannel="PJSIP/sip-front-0000b"))
    ring = desk.ring("wang")
    assert ring is not None and (ring.uniqueid, ring.state) == ("ast1-1764900000.1", "connected")
    state = desk.state("wang")
    assert state is not None and state[0] == AgentState.ON_CALL


def test_a_lost_nodes_calls_end_and_its_agents_are_free() -> None:
    desk = AgentDesk()
    desk.links = LinkStates(("ast1", "ast2"))
    desk._linked("ast1", True)
    desk._linked("ast2", True)
    desk.feed(called("ast2-1764900000.1"))
    desk.feed(member("AgentConnect", "ast2-1764900000.1"))
    desk.feed(called("ast1-1764900000.2", login="li"))
    desk.feed(member("AgentConnect", "ast1-1764900000.2", login="li"))
    desk._linked("ast2", False)  # node 2 killed: no Hangup will ever come
    assert desk.down() == ["ast2"] and not desk.connected
    wang, li = desk.ring("wang"), desk.ring("li")
    assert wang is not None and wang.state == "ended"
    assert li is not None and li.state == "connected"
    state = desk.state("wang")
    assert state is not None and state[0] == AgentState.READY
    assert desk.rung_for("wang", "ast2-1764900000.1") is not None  # still fileable


# -- live calls and the board across nodes -----------------------------------------------
def test_a_node_down_takes_only_its_own_calls_off_the_live_table() -> None:
    live = LiveCalls()
    live.links = LinkStates(("ast1", "ast2"))
    for uniqueid in ("ast1-1764900000.1", "ast2-1764900000.1"):
        live.feed(
            event("Newchannel", Uniqueid=uniqueid, Channel="PJSIP/sip-front-1", Exten="12345")
        )
    live._linked("ast1", True)
    live._linked("ast2", True)
    seen = live.version
    live._linked("ast2", False)
    assert [c.uniqueid for c in live.snapshot()] == ["ast1-1764900000.1"]
    assert live.version > seen and not live.connected


def test_the_board_counts_every_nodes_waiting_callers_and_forgets_a_nodes_alone() -> None:
    waiting = NodesWaiting()
    waiting.feed("ast1", "QueueCallerJoin", {"Uniqueid": "ast1-1.1", "Queue": "q"})
    waiting.feed("ast2", "QueueEntry", {"Uniqueid": "ast2-1.1", "Queue": "q", "Wait": "30"})
    waiting.feed("ast2", "QueueCallerJoin", {"Uniqueid": "ast2-1.2", "Queue": "r"})
    now = waiting.now(["q", "r"])
    assert (now["q"]["waiting"], now["r"]["waiting"]) == (2, 1)
    assert now["q"]["longest"] >= 30
    waiting.clear("ast2")
    assert waiting.now(["q", "r"])["q"]["waiting"] == 1
    assert waiting.now(["q", "r"])["r"] == {"waiting": 0, "longest": 0, "since": None}


# -- the agent's channel and the supervisor's phone through the front --------------------
class Bridged:
    def __init__(self, peer: str) -> None:
        self.peer = peer

    async def action(self, name: str, **fields: str) -> dict[str, str]:
        return {"Value": self.peer}


async def test_through_the_front_only_the_connected_agent_channel_is_the_agents() -> None:
    front = "PJSIP/agent-w001@sip-front"
    found = await agent_channel(
        Bridged("PJSIP/sip-front-0000a"),  # type: ignore[arg-type]
        "PJSIP/sip-front-00001",
        front,
        "PJSIP/sip-front-0000a",
    )
    assert found == "PJSIP/sip-front-0000a"
    with pytest.raises(ThreeWayError):  # bridged to someone else through the front
        await agent_channel(
            Bridged("PJSIP/sip-front-0000c"),  # type: ignore[arg-type]
            "PJSIP/sip-front-00001",
            front,
            "PJSIP/sip-front-0000a",
        )
    one_box = await agent_channel(Bridged("PJSIP/agent-w001-0001"), "PJSIP/x-1", "PJSIP/agent-w001")  # type: ignore[arg-type]
    assert one_box == "PJSIP/agent-w001-0001"


def test_a_supervisors_seat_is_rung_through_the_front_in_a_cluster() -> None:
    assert phone_channel("agent-w002", ["agent-w002"]) == "PJSIP/agent-w002"
    assert (
        phone_channel("agent-w002", ["agent-w002"], through="sip-front")
        == "PJSIP/agent-w002@sip-front"
    )
