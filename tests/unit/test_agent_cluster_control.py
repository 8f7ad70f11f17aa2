"""Agents' log in, pause and log out reach every node at once; a node down is reported."""

from __future__ import annotations

import asyncio

import pytest

from agents import cluster_control
from agents.cluster_control import (
    front_membership,
    log_in_everywhere,
    log_out_everywhere,
    pause_everywhere,
)
from agents.control import Membership, log_in
from telephony.ami import AMIActionError, AMIDisconnected

MEMBER = front_membership("wang", "s3", ("hotline-agents", "hotline-english"))


class FakeNode:
    """A node's manager: records actions, keeps device states, can be down or slow."""

    def __init__(self, down: bool = False, hang: bool = False) -> None:
        self.down, self.hang = down, hang
        self.actions: list[tuple[str, dict[str, str]]] = []
        self.states: dict[str, str] = {}

    async def action(self, name: str, timeout: float | None = None, **fields: str) -> dict:
        if self.down:
            raise AMIDisconnected(f"{name} not sent: the AMI link is down")
        if self.hang:
            await asyncio.sleep(3600)
        self.actions.append((name, fields))
        if name == "Getvar":
            return {"Value": self.states.get(fields["Variable"], "UNKNOWN")}
        if name == "Setvar":
            self.states[fields["Variable"]] = fields["Value"]
        if name == "QueueRemove" and fields["Queue"] == "hotline-english":
            raise AMIActionError("Not there")
        return {"Response": "Success"}

    def named(self, name: str) -> list[dict[str, str]]:
        return [fields for action, fields in self.actions if action == name]


def test_a_cluster_member_rings_through_the_front_and_watches_the_shared_state() -> None:
    assert MEMBER.interface == "PJSIP/s3@sip-front"
    assert MEMBER.state_interface == "Custom:agent-s3"


async def test_one_box_log_in_still_watches_the_phone_itself() -> None:
    node = FakeNode()
    await log_in(node, Membership("li", "PJSIP/s9", ("hotline-agents",)))  # type: ignore[arg-type]
    assert node.named("QueueAdd")[0]["StateInterface"] == "PJSIP/s9"


async def test_log_in_adds_the_agent_on_every_node_with_the_shared_state() -> None:
    one, two = FakeNode(), FakeNode()
    two.states["DEVICE_STATE(Custom:agent-s3)"] = "INUSE"  # the sync's, on a call
    outcome = await log_in_everywhere({"ast1": one, "ast2": two}, MEMBER)  # type: ignore[dict-item]
    assert outcome.done == ("ast1", "ast2") and not outcome.failed
    for node in (one, two):
        adds = node.named("QueueAdd")
        assert [add["Queue"] for add in adds] == ["hotline-agents", "hotline-english"]
        assert {(a["Interface"], a["StateInterface"], a["MemberName"]) for a in adds} == {
            ("PJSIP/s3@sip-front", "Custom:agent-s3", "wang")
        }
        assert node.named("QueuePause")[-1]["Paused"] == "false"
    # a state never set becomes NOT_INUSE; one the sync set is left alone
    assert one.states["DEVICE_STATE(Custom:agent-s3)"] == "NOT_INUSE"
    assert two.states["DEVICE_STATE(Custom:agent-s3)"] == "INUSE"
    assert not two.named("Setvar")


async def test_a_node_down_or_silent_is_reported_and_the_others_still_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cluster_control, "NODE_SECONDS", 0.2)
    up, down, silent = FakeNode(), FakeNode(down=True), FakeNode(hang=True)
    links = {"ast1": up, "ast2": down, "ast3": silent}
    outcome = await pause_everywhere(links, MEMBER, "training")  # type: ignore[arg-type]
    assert outcome.done == ("ast1",) and outcome.anywhere
    assert set(outcome.failed) == {"ast2", "ast3"}
    assert "link is down" in outcome.failed["ast2"]
    assert outcome.failed["ast3"] == "no answer in time"
    assert "ast2:" in outcome.summary() and "ast3:" in outcome.summary()
    assert up.named("QueuePause") == [
        {"Interface": "PJSIP/s3@sip-front", "Paused": "true", "Reason": "training"}
    ]


async def test_log_in_paused_and_log_out_on_every_node() -> None:
    one, two = FakeNode(), FakeNode()
    links = {"ast1": one, "ast2": two}
    await log_in_everywhere(links, MEMBER, paused_for="meeting")  # type: ignore[arg-type]
    for node in (one, two):
        assert {add["Paused"] for add in node.named("QueueAdd")} == {"true"}
        assert node.named("QueuePause")[-1]["Reason"] == "meeting"
    outcome = await log_out_everywhere(links, MEMBER)  # type: ignore[arg-type]
    assert outcome.done == ("ast1", "ast2")  # "Not there" in one queue is not a failure
    assert [r["Queue"] for r in one.named("QueueRemove")] == ["hotline-agents", "hotline-english"]
