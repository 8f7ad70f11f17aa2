"""Three-way calls (三方通话): the citizen, the agent and a unit from the directory, bridged.

A scripted citizen calls line 12300, a scripted agent answers through app_queue,
then the agent brings in a scripted unit (a 1990... number whose AstDB script
plays a 1 kHz tone as its voice). What is asserted comes from Asterisk itself:
the ConfBridge room's members, the leg's recording, the Hangup of the leg, and
the call's ticket written by the hotline's own call-end once everyone hung up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.conference import (
    Leg,
    ThreeWayError,
    agent_channel,
    dial_string,
    leave,
    leg_ended,
    leg_recording,
    recording_base,
    resolve,
    room_of,
    three_way,
)
from agents.follow import ingest_once
from agents.store import SCRIPTED, end_leg, legs_of, open_leg
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.models import CallLeg, Ticket
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIActionError, AMIClient
from tests.support.agents import (
    ScriptedAgent,
    log_in_agent,
    log_out_everyone,
    queue_log_rows,
    scripted_agent,
)
from tests.support.calls import calls_ended, citizen_call, ticket_of_call
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, csrf_of, login, serve_console
from tests.support.console_site import audit_rows
from tests.support.events import eventually, wait_for_event
from tests.support.tones import loudness, tone_wav

AGENTS_LINE = "12300"
UNIT_SCRIPT = "0900001"  # the unit's number 1990 0900001 follows AstDB sim/0900001
UNIT_NUMBER = f"1990{UNIT_SCRIPT}"
UNIT_NAME = "12399测试单位"
UNIT_HZ = 1000


@pytest.fixture
async def floor(hotline: Hotline, ami: AMIClient) -> AsyncIterator[Hotline]:
    yield hotline
    await log_out_everyone(hotline, ami)


async def room_members(ami: AMIClient, room: str) -> list[str]:
    """The channels in the ConfBridge room, as Asterisk lists them (none: no such room)."""
    listed = ami.subscribe("ConfbridgeList", "ConfbridgeListComplete")
    action_id = ami.next_action_id()
    try:
        try:
            await ami.action("ConfbridgeList", Conference=room, ActionID=action_id)
        except AMIActionError:
            return []
        channels: list[str] = []
        while True:
            event = await wait_for_event(listed, lambda e: e.get("ActionID") == action_id, 5)
            if event.name == "ConfbridgeListComplete":
                return channels
            channels.append(event.get("Channel"))
    finally:
        ami.unsubscribe(listed)


async def test_the_agent_brings_a_unit_into_the_call(floor: Hotline, ami: AMIClient) -> None:
    voices = floor.config.state_dir / "voices"
    voices.mkdir(parents=True, exist_ok=True)
    tone = tone_wav(voices / "unit-tone-1000.wav", UNIT_HZ, rate=8000, seconds=8)
    # the unit answers, speaks (8 s of tone) and stays on the line until let go
    await ami.action("DBPut", Family="sim", Key=UNIT_SCRIPT, Val=f"p{tone.with_suffix('')}")
    agent = await scripted_agent(floor, ami, "sun", answer_after="1", talk=40)
    await log_in_agent(floor, ami, agent)
    directory = {**floor.config.agents.directory, UNIT_NAME: UNIT_NUMBER}

    connects = ami.subscribe("AgentConnect")
    joins = ami.subscribe("ConfbridgeJoin")
    try:
        # the citizen stays 35 s from the answer, then hangs up
        placed = asyncio.create_task(citizen_call(ami, AGENTS_LINE, "w35|h", caller="13900139031"))
        connect = await wait_for_event(connects, lambda e: e.get("MemberName") == "sun", timeout=40)
        uniqueid, caller = connect.get("Uniqueid"), connect.get("Channel")
        peer = await agent_channel(ami, caller, f"Local/{agent.endpoint}@sim-agent")
        assert peer == connect.get("DestChannel")

        name, number = resolve(directory, UNIT_NAME)
        room = room_of(uniqueid)
        recording = leg_recording(await recording_base(ami, caller), number)
        leg = await three_way(
            ami,
            caller_channel=caller,
            agent_channel=peer,
            number=number,
            room=room,
            recording=recording,
            outbound_channel=floor.config.asterisk.outbound_channel,
        )
        with unit_of_work(floor.sessions) as session:
            leg_id = open_leg(
                session,
                uniqueid=uniqueid,
                kind="three_way",
                target=name,
                agent_id=agent.agent_id,
                channel=leg.channel,
                recording_path=leg.recording,
            )
        ended = asyncio.create_task(_end_leg(floor, ami, leg, leg_id))

        # three parties in one room: Asterisk's own list, and its three joins
        async def three() -> list[str] | None:
            members = await room_members(ami, room)
            return members if len(members) == 3 else None

        members = await eventually(three, timeout=10, what="three channels in the room")
        assert set(members) == {caller, peer, leg.channel}, members
        joined: set[str] = set()
        while len(joined) < 3:
            event = await wait_for_event(joins, lambda e: e.get("Conference") == room, 5)
            joined.add(event.get("Channel"))
        assert joined == set(members)

        # the agent hands over (warm transfer): the citizen stays with the unit
        await asyncio.sleep(4)
        await leave(ami, peer)

        async def two() -> list[str] | None:
            members = await room_members(ami, room)
            return members if len(members) == 2 else None

        assert set(await eventually(two, timeout=10, what="the agent's leaving")) == {
            caller,
            leg.channel,
        }
        call = await placed
    finally:
        ami.unsubscribe(connects)
        ami.unsubscribe(joins)

    # the citizen hung up: the unit is let go, the leg ends on the record
    await asyncio.wait_for(ended, 20)
    assert call.uniqueid == uniqueid
    await calls_ended(floor, uniqueid)
    with unit_of_work(floor.sessions) as session:
        (row,) = legs_of(session, uniqueid)
        assert (row.kind, row.target, row.agent_id) == ("three_way", UNIT_NAME, agent.agent_id)
        assert row.channel == leg.channel and row.recording_path == recording
        assert row.ended_at is not None and row.ended_at > row.started_at

    # the unit's leg is recorded: its voice (1 kHz) is in it
    path = Path(recording)
    await eventually(lambda: path.exists() and path.stat().st_size > 8000, what="the recording")
    rms, share = loudness(path, UNIT_HZ)
    print(f"leg recording rms {rms:.3f}, {share:.2f} of it {UNIT_HZ} Hz")
    assert rms > 0.01 and share > 0.2, (rms, share)

    # one ticket for the call, and app_queue's queue_log (kept by the reader) says who answered
    def answered() -> Ticket | None:
        ingest_once(floor.sessions, floor.config.queue_log)
        found = ticket_of_call(floor, uniqueid)
        return found if found is not None and found.agent_id is not None else None

    ticket = await eventually(answered, what="the ticket's agent")
    assert ticket.source == "agent" and ticket.agent_id == agent.agent_id
    rows = queue_log_rows(floor, uniqueid)
    assert rows[0][0] == "ENTERQUEUE" and ("CONNECT", "sun") in rows, rows
    print("queue_log:", rows)


async def _end_leg(hotline: Hotline, ami: AMIClient, leg: Leg, leg_id: int) -> None:
    await leg_ended(ami, leg, timeout=120)
    with unit_of_work(hotline.sessions) as session:
        end_leg(session, leg_id, datetime.now(UTC))


# -- refused before any AMI action --------------------------------------------------------
class NoAMI:
    """An AMI client that fails the test if anything at all is asked of it."""

    def __getattr__(self, name: str) -> Any:
        pytest.fail(f"AMI was used ({name}) for a call that should have been refused")


DIRECTORY = {"110报警": "110", "12315市场监管": "12315"}


@pytest.mark.parametrize(
    "target", ["119", "110;1", "12315 ", "Local/110@x", "", "110\r\nAction: Originate"]
)
def test_a_number_outside_the_directory_is_refused(target: str) -> None:
    with pytest.raises(ThreeWayError):
        resolve(DIRECTORY, target)


def test_the_directory_resolves_by_name_or_number() -> None:
    assert resolve(DIRECTORY, "110报警") == ("110报警", "110")
    assert resolve(DIRECTORY, "12315") == ("12315市场监管", "12315")
    with pytest.raises(ThreeWayError):
        resolve({"坏": "11-0"}, "坏")


@pytest.mark.parametrize(
    ("number", "room", "recording"),
    [
        ("11O", "c1x2", "/r/a.wav"),
        ("110&PJSIP/999", "c1x2", "/r/a.wav"),
        ("", "c1x2", "/r/a.wav"),
        ("110", "c1.2", "/r/a.wav"),
        ("110", "c1,x", "/r/a.wav"),
        ("110", "c1x2", "relative.wav"),
        ("110", "c1x2", "/r/../etc/a.wav"),
    ],
)
async def test_three_way_refuses_bad_values_before_any_ami_action(
    number: str, room: str, recording: str
) -> None:
    with pytest.raises(ThreeWayError):
        await three_way(
            NoAMI(),  # type: ignore[arg-type]
            caller_channel="PJSIP/citizen-00000001",
            agent_channel="PJSIP/agent-w001-00000002",
            number=number,
            room=room,
            recording=recording,
            outbound_channel="Local/{number}@hotline-outbound",
        )


def test_rooms_and_dial_strings() -> None:
    assert room_of("1764897600.12") == "c1764897600x12"
    with pytest.raises(ThreeWayError):
        room_of("1764897600.12,x")
    assert dial_string("Local/{number}@hotline-outbound", "110") == "Local/110@hotline-outbound/n"
    assert dial_string("PJSIP/{number}@trunk", "110") == "PJSIP/110@trunk"


# -- through the agent's console ----------------------------------------------------------
def _console_agent(hotline: Hotline, login_name: str, queues: list[str]) -> tuple[int, str]:
    """An agent account with a password on a scripted seat: (agent id, endpoint)."""
    with unit_of_work(hotline.sessions) as session:
        agent = add_agent(
            session, hotline.config, login_name, hash_password(PASSWORD), SCRIPTED, queues
        )
        return agent.id, agent.endpoint


def _signed_in(base: str, login_name: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=60)
    assert login(client, login_name).status_code == 303  # type: ignore[arg-type]
    return client, csrf_of(client, "/agent")  # type: ignore[arg-type]


async def _connected(client: httpx.Client, uniqueid: str) -> bool:
    """The console's desk (fed by AMI) knows the agent is talking on the call."""
    data = (await asyncio.to_thread(client.get, "/agent/current")).json()
    pop = data.get("pop") or {}
    return pop.get("uniqueid") == uniqueid and pop.get("state") == "connected"


async def test_the_console_makes_the_three_way_call(floor: Hotline, ami: AMIClient) -> None:
    voices = floor.config.state_dir / "voices"
    voices.mkdir(parents=True, exist_ok=True)
    tone = tone_wav(voices / "unit-tone-1000.wav", UNIT_HZ, rate=8000, seconds=8)
    await ami.action("DBPut", Family="sim", Key=UNIT_SCRIPT, Val=f"p{tone.with_suffix('')}")
    agent_id, endpoint = _console_agent(floor, "qian", ["hotline-agents"])
    await ami.action("DBPut", Family="simagent", Key=endpoint, Val="1:40")
    agents = floor.config.agents.model_copy(
        update={"directory": {**floor.config.agents.directory, UNIT_NAME: UNIT_NUMBER}}
    )
    config = floor.config.model_copy(update={"agents": agents})
    app = create_app(config, floor.sessions, follow_ami=True)
    connects = ami.subscribe("AgentConnect")
    try:
        with serve_console(app, free_port()) as base:
            client, token = await asyncio.to_thread(_signed_in, base, "qian")
            ready = await asyncio.to_thread(
                client.post, "/agent/state", data={"action": "ready", "csrf": token}
            )
            assert ready.status_code == 200, ready.text
            placed = asyncio.create_task(
                citizen_call(ami, AGENTS_LINE, "w30|h", caller="13900139032")
            )
            connect = await wait_for_event(
                connects, lambda e: e.get("MemberName") == "qian", timeout=40
            )
            uniqueid = connect.get("Uniqueid")
            await eventually(lambda: _connected(client, uniqueid), what="the desk's connect")

            def three_way_to(target: str) -> httpx.Response:
                form = {"uniqueid": uniqueid, "target": target, "csrf": token}
                return client.post("/agent/three-way", data=form)

            refused = await asyncio.to_thread(three_way_to, "119")
            assert refused.status_code == 422, refused.text
            made = await asyncio.to_thread(three_way_to, UNIT_NAME)
            assert made.status_code == 200, made.text
            leg_id = made.json()["leg"]

            async def three() -> list[str] | None:
                members = await room_members(ami, room_of(uniqueid))
                return members if len(members) == 3 else None

            members = await eventually(three, timeout=10, what="three channels in the room")
            assert connect.get("Channel") in members and connect.get("DestChannel") in members
            await placed
            await calls_ended(floor, uniqueid)

            def leg_over() -> CallLeg | None:
                with unit_of_work(floor.sessions) as session:
                    (row,) = legs_of(session, uniqueid)
                    return row if row.ended_at is not None else None

            row = await eventually(leg_over, what="the leg's end, written by the console")
            await asyncio.to_thread(client.close)
    finally:
        ami.unsubscribe(connects)
    assert (row.id, row.kind, row.target, row.agent_id) == (
        leg_id,
        "three_way",
        UNIT_NAME,
        agent_id,
    )
    assert row.recording_path and Path(row.recording_path).exists()
    (audited,) = audit_rows(floor.sessions, "agent_three_way")
    assert audited.username == "qian" and audited.object_id == leg_id
    assert ticket_of_call(floor, uniqueid) is not None


async def test_the_console_transfers_the_caller_to_another_queue(
    floor: Hotline, ami: AMIClient
) -> None:
    """The blind transfer (POST /agent/transfer): the caller is answered in the other queue."""
    zhou_id, zhou = _console_agent(floor, "zhou", ["hotline-agents"])
    wu_id, wu = _console_agent(floor, "wu", ["hotline-agents-en"])
    await ami.action("DBPut", Family="simagent", Key=zhou, Val="1:40")
    await ami.action("DBPut", Family="simagent", Key=wu, Val="1:4")
    await log_in_agent(floor, ami, ScriptedAgent("wu", wu_id, wu))
    app = create_app(floor.config, floor.sessions, follow_ami=True)
    connects = ami.subscribe("AgentConnect")
    try:
        with serve_console(app, free_port()) as base:
            client, token = await asyncio.to_thread(_signed_in, base, "zhou")
            ready = await asyncio.to_thread(
                client.post, "/agent/state", data={"action": "ready", "csrf": token}
            )
            assert ready.status_code == 200, ready.text
            placed = asyncio.create_task(
                citizen_call(ami, AGENTS_LINE, "w40|h", caller="13900139033")
            )
            first = await wait_for_event(
                connects, lambda e: e.get("MemberName") == "zhou", timeout=40
            )
            uniqueid = first.get("Uniqueid")
            await eventually(lambda: _connected(client, uniqueid), what="the desk's connect")
            moved = await asyncio.to_thread(
                client.post,
                "/agent/transfer",
                data={"uniqueid": uniqueid, "queue": "hotline-agents-en", "csrf": token},
            )
            assert moved.status_code == 200, moved.text
            second = await wait_for_event(
                connects, lambda e: e.get("MemberName") == "wu", timeout=20
            )
            assert second.get("Uniqueid") == uniqueid
            assert second.get("Queue") == "hotline-agents-en"
            await asyncio.to_thread(client.close)
        await placed
    finally:
        ami.unsubscribe(connects)
    await calls_ended(floor, uniqueid)
    with unit_of_work(floor.sessions) as session:
        (row,) = legs_of(session, uniqueid)
        assert (row.kind, row.target, row.agent_id) == ("blind", "hotline-agents-en", zhou_id)

    def rows_of_call() -> list[tuple[str, str]] | None:
        ingest_once(floor.sessions, floor.config.queue_log)
        rows = queue_log_rows(floor, uniqueid)
        return rows if ("CONNECT", "wu") in rows else None

    rows = await eventually(rows_of_call, what="the second queue's CONNECT")
    assert ("CONNECT", "zhou") in rows, rows
    assert ticket_of_call(floor, uniqueid) is not None
