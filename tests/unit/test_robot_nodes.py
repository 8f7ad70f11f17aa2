"""The cluster robot's node rules as data: which node takes a call, when a node is lost.

No Asterisk and no Kamailio: a node's health is given as a snapshot (issue 22).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from callback_robot.front import front_states
from callback_robot.nodes import (
    NodeHealth,
    NodeView,
    assign_nodes,
    free_slots,
    has_rejoined,
    is_lost,
    why_unusable,
)
from callback_robot.watch import NodeWatch
from core.config import ClusterConfig
from telephony.kamailio import FrontNode

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
GRACE = timedelta(seconds=10)


def healthy(name: str) -> NodeHealth:
    return NodeHealth(name, ami_up=True, front_active=True)


def view(*nodes: NodeHealth, per_node: int = 3) -> NodeView:
    return NodeView(nodes=nodes, per_node=per_node)


def test_only_healthy_nodes_neither_draining_nor_lost_have_slots() -> None:
    nodes = view(
        healthy("ast1"),
        NodeHealth("ast2", ami_up=False, front_active=True),  # our AMI link is down
        NodeHealth("ast3", ami_up=True, front_active=False),  # Kamailio sends it nothing
        NodeHealth("ast4", ami_up=True, front_active=None),  # Kamailio unreadable
        healthy("ast5"),
        healthy("ast6"),
    )
    slots = free_slots(nodes, {"ast1": 1}, draining={"ast5"}, lost={"ast6"})
    assert slots == {"ast1": 2}


def test_a_full_node_has_no_slot_and_an_overfull_one_no_negative_slot() -> None:
    nodes = view(healthy("ast1"), healthy("ast2"), per_node=2)
    assert free_slots(nodes, {"ast1": 2, "ast2": 5}, set(), set()) == {}


def test_calls_go_to_the_node_with_the_most_free_slots_and_spread() -> None:
    assert assign_nodes({"ast1": 1, "ast2": 3}, 3) == ["ast2", "ast2", "ast1"]
    assert assign_nodes({"ast1": 2, "ast2": 2}, 3) == ["ast1", "ast2", "ast1"]  # ties: first
    assert assign_nodes({"ast1": 1, "ast2": 1}, 5) == ["ast1", "ast2"]  # slots run out
    assert assign_nodes({}, 2) == []


@given(
    st.dictionaries(st.sampled_from(["ast1", "ast2", "ast3"]), st.integers(1, 20)),
    st.integers(0, 60),
)
def test_no_node_gets_more_calls_than_its_free_slots(slots: dict[str, int], count: int) -> None:
    chosen = assign_nodes(slots, count)
    assert len(chosen) == min(count, sum(slots.values()))
    for name, free in slots.items():
        assert chosen.count(name) <= free
    # spread: a node that got a call had the most free slots then, so no node is
    # left with more than one slot above it
    left = {name: free - chosen.count(name) for name, free in slots.items()}
    for busy in set(chosen):
        assert max(left.values()) <= left[busy] + 1


def test_the_reasons_name_every_unusable_node_once() -> None:
    nodes = view(
        healthy("ast1"),
        NodeHealth("ast2", ami_up=False, front_active=False),
        NodeHealth("ast3", ami_up=True, front_active=None),
    )
    reasons = why_unusable(nodes, draining={"ast1"}, lost={"ast2"})
    assert reasons == {
        "ast1": "draining",
        "ast2": "AMI down, inactive in Kamailio, lost",
        "ast3": "Kamailio unreadable",
    }


def down(ami_for: float, inactive_for: float | None, front: bool | None = False) -> NodeHealth:
    return NodeHealth(
        "ast2",
        ami_up=False,
        front_active=front,
        ami_down_since=NOW - timedelta(seconds=ami_for),
        front_inactive_since=None
        if inactive_for is None
        else NOW - timedelta(seconds=inactive_for),
    )


def test_a_node_is_lost_only_when_both_views_are_down_beyond_the_grace() -> None:
    assert is_lost(down(11, 11), NOW, GRACE)
    assert not is_lost(down(11, 9), NOW, GRACE)  # Kamailio has had it inactive only 9 s
    assert not is_lost(down(9, 11), NOW, GRACE)  # our AMI link dropped only 9 s ago
    assert not is_lost(down(60, None, front=True), NOW, GRACE)  # Kamailio still sends it calls
    up = NodeHealth("ast2", ami_up=True, front_active=False, front_inactive_since=NOW - GRACE * 9)
    assert not is_lost(up, NOW, GRACE)  # the AMI answers: only the front's probes missed


def test_kamailio_unreadable_never_makes_a_node_lost() -> None:
    assert not is_lost(down(600, 600, front=None), NOW, GRACE)


def test_a_node_rejoins_when_both_see_it_again() -> None:
    assert has_rejoined(healthy("ast2"))
    assert not has_rejoined(NodeHealth("ast2", ami_up=True, front_active=False))
    assert not has_rejoined(NodeHealth("ast2", ami_up=False, front_active=True))


class Link:
    """What the watch reads of a node's AMI link."""

    def __init__(self, up: bool, down_since: datetime | None = None) -> None:
        self.up = up
        self.down_since = down_since


def test_the_watch_remembers_since_when_a_node_is_inactive_and_forgets_on_a_gap() -> None:
    links = {"ast1": Link(True), "ast2": Link(False, NOW)}
    watch = NodeWatch(links, lambda: {}, per_node=4, clock=lambda: NOW)  # type: ignore[arg-type]
    watch.observe({"ast1": True, "ast2": False}, NOW)
    watch.observe({"ast1": True, "ast2": False}, NOW + timedelta(seconds=5))
    first, second = watch.view().nodes
    assert first == NodeHealth("ast1", True, True)
    assert second.front_inactive_since == NOW and second.ami_down_since == NOW
    watch.observe(None, NOW + timedelta(seconds=6))  # Kamailio unreadable
    assert watch.view().nodes[1].front_active is None
    watch.observe({"ast1": True}, NOW + timedelta(seconds=7))  # a node it no longer lists
    assert watch.view().nodes[1].front_inactive_since == NOW + timedelta(seconds=7)
    assert watch.view().per_node == 4


def test_front_states_match_nodes_by_name_then_by_address() -> None:
    cluster = ClusterConfig()
    listed = [
        FrontNode("sip:127.0.0.11:5060", "127.0.0.11", 5060, True, True, "AP", duid="ast1"),
        FrontNode("sip:127.0.0.12:5060", "127.0.0.12", 5060, False, True, "IP"),
    ]
    assert front_states(cluster, listed) == {"ast1": True, "ast2": False}
    assert front_states(cluster, listed[:1]) == {"ast1": True, "ast2": False}  # not listed
