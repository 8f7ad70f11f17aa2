"""Phones register at the SIP front with their own password, and only as themselves (issue 22).

Every agent's seat and every configured test phone has a SIP password (the
seats' are the ones their phones already use with Asterisk); the front
challenges each REGISTER (digest) and keeps none it cannot check. Before,
anyone on the phones' network could register any seat and take its calls.

Kamailio runs from `hotline cluster render`'s files on a private address
block (front .230, node .231, phones .232/.233, worker .234): the node and
the phones are bare UDP peers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.front import Front, registered, running_front
from tests.support.sip_udp import SipMessage, SipPeer, token

FRONT, NODE, PHONE, OTHER_PHONE, WORKER = (f"127.0.0.{n}" for n in (230, 231, 232, 233, 234))
CLUSTER = {
    "front": {"address": FRONT, "sip_port": 5060, "ws_port": 8091},
    "nodes": [{"name": "ast1", "address": NODE, "rtp_start": 40000, "rtp_end": 40999}],
    "workers": [{"name": "agi1", "address": WORKER}],
}
SEAT = "agent-d001"  # a desk seat of the default config


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    with running_front(tmp_path, CLUSTER, phones=("6101",)) as running:
        yield running


@pytest.fixture
def sip() -> Iterator[list[SipPeer]]:
    peers = [SipPeer(address, (FRONT, 5060)) for address in (NODE, PHONE, OTHER_PHONE)]
    yield peers
    for peer in peers:
        peer.close()


def call_from_node(node: SipPeer, user: str) -> SipMessage:
    """The node rings user through the front: the front's final answer to it, or the phone's."""
    call_id = f"call-{token()}"
    node.invite(user, call_id)
    return node.wait_for(
        lambda m: m.header("Call-ID") == call_id and m.status is not None and m.status >= 200
    )


def test_a_seat_registers_with_its_password_and_then_is_reached(
    front: Front, sip: list[SipPeer]
) -> None:
    node, phone, _other = sip
    registered(phone, SEAT, front)  # 401 challenge answered, 200
    call_id = f"call-{token()}"
    node.invite(SEAT, call_id)
    invite = phone.wait_for(
        lambda m: m.first.startswith("INVITE ") and m.header("Call-ID") == call_id
    )
    assert invite.first.startswith(f"INVITE sip:{SEAT}@{PHONE}")
    test_phone = sip[2]
    registered(test_phone, "6101", front)  # a configured test phone, with its own password


def test_no_password_or_a_wrong_one_registers_nothing(front: Front, sip: list[SipPeer]) -> None:
    node, phone, _other = sip
    registered(sip[2], "6101", front)  # the front is up and answering
    challenged = phone.register(SEAT, timeout=5)
    assert challenged.status == 401 and "Digest" in challenged.header("WWW-Authenticate")
    wrong = phone.register(SEAT, timeout=5, password="not-the-password")
    assert wrong.status == 401, wrong.first
    assert call_from_node(node, SEAT).status == 404  # no phone registered for the seat


def test_a_seat_cannot_register_another_seat_or_an_unknown_name(
    front: Front, sip: list[SipPeer]
) -> None:
    node, phone, other = sip
    registered(other, "6101", front)
    # the test phone's own credentials do not open the seat's registration
    borrowed = phone.register(SEAT, timeout=5, password=front.secrets["6101"], auth_user="6101")
    assert borrowed.status in (401, 403), borrowed.first
    # the seat's password given under another name: refused as not its phone
    renamed = phone.register(SEAT, timeout=5, password=front.secrets[SEAT], auth_user="6101")
    assert renamed.status in (401, 403), renamed.first
    unknown = phone.register("agent-x999", timeout=5, password="anything")
    assert unknown.status == 403, unknown.first
    assert call_from_node(node, SEAT).status == 404
    # and 6101 still reaches 6101's phone, not the one that tried
    call_id = f"call-{token()}"
    node.invite("6101", call_id)
    assert other.wait_for(lambda m: m.header("Call-ID") == call_id).first.startswith("INVITE ")
