"""Which Asterisk node dials the robot's next calls, and when a node is lost (issue 22).

Decisions over snapshots, with no I/O: what one robot sees of each node (its AMI
link, Kamailio's dispatcher state, since when each has been down) is given as
data, and what the store knows (calls in flight per node, draining and lost
nodes) as plain values. The claim (`callback_robot.claim`) and the node watch
(`callback_robot.cluster`) act on the answers, so the rules are tested once here.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class NodeHealth:
    """What one robot sees of one node now.

    `front_active` is Kamailio's view (`kamcmd dispatcher.list`): True active,
    False inactive, None unknown (Kamailio could not be read). The two `since`
    times say since when this robot has seen the AMI link down and the node
    inactive in Kamailio, without a break (None while it is up or active).
    """

    name: str
    ami_up: bool
    front_active: bool | None
    ami_down_since: datetime | None = None
    front_inactive_since: datetime | None = None

    @property
    def healthy(self) -> bool:
        """Reachable both ways: our AMI link is up and Kamailio sends calls to it."""
        return self.ami_up and self.front_active is True


@dataclass(frozen=True)
class NodeView:
    """The nodes as one robot sees them at a claim, and the per-node channel cap."""

    nodes: tuple[NodeHealth, ...]
    per_node: int  # cluster.robot.max_channels_per_node

    def names(self) -> list[str]:
        return [node.name for node in self.nodes]


def free_slots(
    view: NodeView, in_flight: Mapping[str, int], draining: Set[str], lost: Set[str]
) -> dict[str, int]:
    """Each usable node's free channels under the per-node cap, in the config's order.

    Usable: healthy, not draining, not lost. Only nodes with a free slot are listed,
    so an empty answer means nothing may be claimed now.
    """
    slots: dict[str, int] = {}
    for node in view.nodes:
        if not node.healthy or node.name in draining or node.name in lost:
            continue
        free = view.per_node - in_flight.get(node.name, 0)
        if free > 0:
            slots[node.name] = free
    return slots


def assign_nodes(slots: Mapping[str, int], count: int) -> list[str]:
    """The node for each of `count` calls: each goes where the most slots are free.

    The slots are spent as they are given, so calls spread over the nodes instead
    of filling one; a tie goes to the node listed first. Fewer than `count` nodes
    come back when the free slots run out.
    """
    left = dict(slots)
    chosen: list[str] = []
    for _ in range(count):
        if not left or max(left.values()) <= 0:
            break
        best = max(left, key=lambda name: left[name])  # first of the ties: dicts keep order
        chosen.append(best)
        left[best] -= 1
    return chosen


def why_unusable(view: NodeView, draining: Set[str], lost: Set[str]) -> dict[str, str]:
    """Each node that may not take a call, and why (for one log line, not one per tick)."""
    reasons: dict[str, str] = {}
    for node in view.nodes:
        why = []
        if not node.ami_up:
            why.append("AMI down")
        if node.front_active is None:
            why.append("Kamailio unreadable")
        elif not node.front_active:
            why.append("inactive in Kamailio")
        if node.name in draining:
            why.append("draining")
        if node.name in lost:
            why.append("lost")
        if why:
            reasons[node.name] = ", ".join(why)
    return reasons


def is_lost(node: NodeHealth, now: datetime, grace: timedelta) -> bool:
    """AMI unreachable and inactive in Kamailio, both for longer than `grace`.

    Both views must agree. Our AMI link alone may fail for reasons of our own (this
    robot's network, a restart of the manager) while the node still carries calls,
    and Kamailio alone marks a node inactive after two missed OPTIONS, which a busy
    node can miss. When Kamailio cannot be read (`front_active` None) nothing is
    declared lost: the AMI link alone cannot tell a dead node from a cut-off
    robot, and settling a live node's calls as "node lost" would tell citizens'
    surveys in progress that they ended, and let the robot call them again.
    """
    if node.ami_up or node.front_active is not False:
        return False
    if node.ami_down_since is None or node.front_inactive_since is None:
        return False
    return now - node.ami_down_since > grace and now - node.front_inactive_since > grace


def has_rejoined(node: NodeHealth) -> bool:
    """A node answers again: our AMI link is up and Kamailio has it active."""
    return node.healthy
