"""A real node's app_queue meets the front's 486: the busy agent is skipped at once, not paused.

The session's Asterisk stands for a node behind the rendered Kamailio (front
127.0.0.235; the Asterisk's own SIP address is the dispatcher's node, so the
front takes its INVITEs as a node's). An agent's phone (a bare UDP peer at
127.0.0.237) is registered at the front as a test phone and already rings for another
node's call. The agent's shared state still reads NOT_INUSE (the sync's lag),
so app_queue rings them through the front: the front answers 486 and app_queue
gives up on the member within a second (no 15 s ring); the phone never sees the
second INVITE. app_queue reads the refusal as no answer and auto-pauses the
member; the sync, which knows the agent talks on the other node, un-pauses them
on this node and spreads nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.control import Membership, log_in, log_out
from agents.state_sync import DeviceStateSync
from core.seats import seats
from hotline.app import Hotline
from links.ami import ami_client
from telephony.ami import AMIClient, AMIEvent
from tests.support.calls import citizen_call
from tests.support.events import wait_for_event
from tests.support.front import Front, registered, running_front
from tests.support.sip_udp import SipPeer, token
from tools.local_asterisk.local import LocalAsterisk

# a block of its own (test_front_one_call_per_phone has .210-.214)
FRONT, OTHER_NODE, PHONE, WORKER = "127.0.0.235", "127.0.0.236", "127.0.0.237", "127.0.0.238"
QUEUE = "hotline-agents"
SEAT = f"t{token()[:8]}"  # a test phone of its own, allowed to register at the front


@pytest.fixture
def front_before_the_node(tmp_path: Path, asterisk: LocalAsterisk) -> Iterator[Front]:
    """Kamailio whose nodes are a bare peer (.236) and the session's Asterisk."""
    port = asterisk.config.asterisk.sip.port
    cluster = {
        "front": {"address": FRONT, "sip_port": 5060, "ws_port": 8090},
        "nodes": [
            {"name": "ast1", "address": OTHER_NODE, "rtp_start": 40000, "rtp_end": 40999},
            {
                "name": "ast2",
                "address": asterisk.config.asterisk.sip.bind,
                "sip_port": port,
                "rtp_start": 41000,
                "rtp_end": 41999,
            },
        ],
        "workers": [{"name": "agi1", "address": WORKER}],
    }
    with running_front(tmp_path / "front", cluster, phones=(SEAT,)) as running:
        yield running


async def test_the_fronts_486_skips_the_agent_at_once_and_the_sync_undoes_the_auto_pause(
    front_before_the_node: Front, hotline: Hotline, ami: AMIClient
) -> None:
    seat = SEAT
    node, phone = SipPeer(OTHER_NODE, (FRONT, 5060)), SipPeer(PHONE, (FRONT, 5060))
    link = ami_client(hotline.config)  # the sync on the robot's user, this Asterisk as ast2
    sync = DeviceStateSync({"ast2": link})
    stop = asyncio.Event()
    syncing = asyncio.create_task(sync.run(stop))
    try:
        registered(phone, seat, front_before_the_node)
        first = f"call-{token()}"
        node.invite(seat, first)  # the other node's queue rings the agent, who answers
        ringing = phone.wait_for(lambda m: m.header("Call-ID") == first)
        phone.reply(ringing, 200, "OK", to_tag="p1")
        for name in ("AgentCalled", "AgentConnect"):  # what ast1's AMI tells the sync
            sync.take("ast1", AMIEvent(name, {"Interface": f"PJSIP/{seat}@sip-front"} | UID))

        config = hotline.config
        endpoint = seats(config.agents.webrtc_seats, config.agents.desk_seats)[-1].endpoint
        member = Membership(
            f"front-{seat}",
            f"PJSIP/{endpoint}/sip:{seat}@{FRONT}:5060",  # as a node's PJSIP/<seat>@sip-front
            (QUEUE,),
            f"Custom:agent-lag{seat}",  # the shared state, not written here yet: the sync's lag
        )
        await ami.action(
            "Setvar", Variable=f"DEVICE_STATE({member.state_interface})", Value="NOT_INUSE"
        )
        await log_in(ami, member)
        events = ami.subscribe(
            "QueueCallerJoin", "AgentCalled", "AgentRingNoAnswer", "QueueMemberPause"
        )
        placed = asyncio.create_task(citizen_call(ami, "12300", "w60", caller="13900139031"))
        joined = None
        try:
            joined = await wait_for_event(events, lambda e: e.name == "QueueCallerJoin", 60)
            called = await wait_for_event(events, lambda e: e.name == "AgentCalled", 30)
            assert called.get("MemberName") == member.login
            busy = await wait_for_event(events, lambda e: e.name == "AgentRingNoAnswer", 10)
            assert int(busy.get("RingTime") or 0) <= 2000, busy.fields  # a 486, not a ring out
            mine = lambda e: e.name == "QueueMemberPause" and e.get("MemberName") == member.login  # noqa: E731
            auto = await wait_for_event(events, mine, 10)
            assert (auto.get("Paused"), auto.get("PausedReason")) == ("1", "Auto-Pause")
            undone = await wait_for_event(events, lambda e: mine(e) and e.get("Paused") == "0", 10)
            assert undone.get("MemberName") == member.login
            invites = [m for m in phone.seen if m.first.startswith("INVITE ")]
            assert [m.header("Call-ID") for m in invites] == [first]
        finally:
            ami.unsubscribe(events)
            await log_out(ami, member)
            if not placed.done() and joined is not None:
                await ami.action("Hangup", Channel=joined.get("Channel"))
            await asyncio.wait_for(placed, 90)
    finally:
        stop.set()
        await syncing
        await link.close()
        node.close()
        phone.close()


UID = {"Uniqueid": "ast1-1700000000.1", "Queue": QUEUE}
