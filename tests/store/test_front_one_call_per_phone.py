"""The SIP front refuses a second call to a phone that already rings or talks (issue 22).

Nodes share each agent's device state with a lag, so two nodes may ring one
agent at nearly the same moment. The rendered Kamailio counts every call to a
registered phone (dialog profile per AOR) and answers a second INVITE with
`486 Busy Here`, which app_queue takes as busy.

Kamailio runs from `hotline cluster render`'s files on a private address block
(front 127.0.0.210, node 127.0.0.211, phones .212 and .214); the node and the
phones are bare UDP peers, so the second INVITE follows the first as closely as
a test can make it. No store is used: it sits here because it runs a program.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.front import Front, registered, running_front
from tests.support.sip_udp import SipMessage, SipPeer, token

FRONT, NODE, PHONE, OTHER_PHONE, WORKER = (
    "127.0.0.210",
    "127.0.0.211",
    "127.0.0.212",
    "127.0.0.214",
    "127.0.0.213",
)
CLUSTER = {
    "front": {"address": FRONT, "sip_port": 5060, "ws_port": 8090},
    "nodes": [{"name": "ast1", "address": NODE, "rtp_start": 40000, "rtp_end": 40999}],
    "workers": [{"name": "agi1", "address": WORKER}],
}


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    """Kamailio running the rendered kamailio.cfg, test phones s1 and s2 allowed."""
    with running_front(tmp_path, CLUSTER, phones=("s1", "s2")) as running:
        yield running
    # the count and the claim ran under their lock (cfgutils logs an error, not a failure)
    lines = running.log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if "cfgutils" in line and "ERROR" in line]
    assert not errors, errors[:3]
    # a call to a phone is no node's load: its BYE does not ask the dispatcher for one
    unfound = [line for line in lines if "cannot find load" in line]
    assert not unfound, unfound[:3]


def peers(*addresses: str) -> list[SipPeer]:
    return [SipPeer(address, (FRONT, 5060)) for address in addresses]


def invite_reaches(phone: SipPeer, call_id: str) -> SipMessage:
    return phone.wait_for(
        lambda m: m.first.startswith("INVITE ") and m.header("Call-ID") == call_id
    )


def final_reply(node: SipPeer, call_id: str) -> SipMessage:
    return node.wait_for(
        lambda m: m.header("Call-ID") == call_id and (m.status or 0) >= 200 and m.method == "INVITE"
    )


@pytest.fixture
def sip() -> Iterator[list[SipPeer]]:
    made = peers(NODE, PHONE, OTHER_PHONE)
    yield made
    for peer in made:
        peer.close()


def test_a_ringing_phone_gets_no_second_call_until_the_first_fails(
    front: Front, sip: list[SipPeer]
) -> None:
    node, phone, other = sip
    registered(phone, "s1", front)
    registered(other, "s2", front)
    first, second, third = (f"call-{token()}" for _ in range(3))

    node.invite("s1", first)
    ringing = invite_reaches(phone, first)
    phone.reply(ringing, 180, "Ringing", to_tag="ph1")
    node.wait_for(lambda m: m.status == 180 and m.header("Call-ID") == first)

    node.invite("s1", second)  # another node's queue, inside the sync's lag
    busy = final_reply(node, second)
    assert busy.status == 486, busy.first
    node.ack_failure(busy)

    # another agent's phone is not held by s1's call
    elsewhere = f"call-{token()}"
    node.invite("s2", elsewhere)
    invite_reaches(other, elsewhere)

    # the first ring ends unanswered: the phone is free again
    phone.reply(ringing, 486, "Busy Here", to_tag="ph1")
    ended = final_reply(node, first)
    assert ended.status == 486
    node.ack_failure(ended)
    node.invite("s1", third)
    invite_reaches(phone, third)
    assert not any(m.header("Call-ID") == second for m in phone.seen), (
        "the refused INVITE reached the phone"
    )


def test_a_phone_on_a_call_gets_no_second_call_until_the_bye(
    front: Front, sip: list[SipPeer]
) -> None:
    node, phone, _ = sip
    registered(phone, "s1", front)
    talk, refused, after = (f"call-{token()}" for _ in range(3))

    node.invite("s1", talk)
    request = invite_reaches(phone, talk)
    phone.reply(request, 200, "OK", to_tag="ph2")
    ok = final_reply(node, talk)
    assert ok.status == 200
    node.ack(ok)

    node.invite("s1", refused)
    busy = final_reply(node, refused)
    assert busy.status == 486, busy.first
    node.ack_failure(busy)

    node.bye(ok)
    bye = phone.wait_for(lambda m: m.first.startswith("BYE ") and m.header("Call-ID") == talk)
    phone.reply(bye, 200, "OK")
    node.wait_for(lambda m: m.status == 200 and m.method == "BYE")
    node.invite("s1", after)
    invite_reaches(phone, after)


def test_two_invites_at_once_ring_the_phone_once(front: Front, sip: list[SipPeer]) -> None:
    node, phone, _ = sip
    registered(phone, "s1", front)
    calls = [f"call-{token()}" for _ in range(2)]
    for call in calls:  # back to back: Kamailio's processes take them at the same moment
        node.invite("s1", call)
    rung = phone.wait_for(lambda m: m.first.startswith("INVITE ") and m.header("Call-ID") in calls)
    refused = next(call for call in calls if call != rung.header("Call-ID"))
    busy = final_reply(node, refused)
    assert busy.status == 486, busy.first
    node.ack_failure(busy)
    with pytest.raises(TimeoutError):
        phone.wait_for(lambda m: m.header("Call-ID") == refused, timeout=1)
