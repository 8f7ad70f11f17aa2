"""Three-way calls (三方通话, 国办发〔2022〕12号): the citizen, the agent and a third party.

The agent picks a name from `agents.directory` (110报警 -> 110); nothing else is
ever dialled. AMI `Redirect` moves the citizen's channel and, as its
`ExtraChannel`, the agent's channel out of the queue's bridge into the
dialplan's `[hotline-conference]` (ConfBridge room HOTLINE_ROOM, a name of
letters and digits made from the call's Uniqueid); AMI `Originate` then dials
the third party through `asterisk.outbound_channel` into the same room, where
the dialplan records that leg (MixMonitor, both directions) into a file next
to the call's own recording. The citizen's MixMonitor goes on recording the
whole call from the citizen's side.

The citizen is the room's marked user (confbridge.conf): when the citizen
hangs up the others are let go; when the agent leaves (`leave`), the citizen
stays with the third party: a warm transfer.

Everything is checked before the first AMI action: the number (digits only and
in the directory), the room, the channel names.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Protocol

from core.uniqueid import number_of
from telephony.ami import AMIEvent, OriginateResult

CONTEXT = "hotline-conference"
ROOM = re.compile(r"[0-9A-Za-z]{1,64}")
NUMBER = re.compile(r"[0-9]{1,20}")
# a channel name as Asterisk makes them: tech/resource-sequence, Local's ;1 or ;2
CHANNEL = re.compile(r"[A-Za-z]+/[^\s,|;]{1,120}(;[12])?")


class ThreeWayError(Exception):
    """The three-way call was refused or failed (the message says which and why)."""


class AMI(Protocol):
    """What this module needs of `telephony.ami.AMIClient`."""

    async def action(
        self,
        name: str,
        timeout: float | None = None,
        variables: dict[str, str] | None = None,
        **fields: str,
    ) -> dict[str, str]: ...

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        variables: dict[str, str] | None = None,
        caller_id: str = "",
        timeout_ms: int = 30000,
        action_id: str | None = None,
        result_timeout: float | None = None,
    ) -> OriginateResult: ...

    def subscribe(self, *names: str, maxsize: int = 10000) -> asyncio.Queue[AMIEvent]: ...

    def unsubscribe(self, queue: asyncio.Queue[AMIEvent]) -> None: ...


@dataclass
class Leg:
    """The third party's leg, answered and in the room."""

    room: str
    number: str
    channel: str
    uniqueid: str
    recording: str
    hangups: asyncio.Queue[AMIEvent] = field(repr=False)


def resolve(directory: dict[str, str], target: str) -> tuple[str, str]:
    """(name, number) of a directory entry, by its name or its number; anything else refused."""
    if target in directory:
        name, number = target, directory[target]
    else:
        names = [n for n, num in directory.items() if num == target]
        if not names:
            raise ThreeWayError(f"{target[:40]!r} is not in the directory (agents.directory)")
        name, number = names[0], target
    if not NUMBER.fullmatch(number):
        raise ThreeWayError(f"{name}: {number[:40]!r} is not a number (digits only)")
    return name, number


def room_of(uniqueid: str) -> str:
    """The call's room: its Uniqueid in letters and digits (1764897600.12 -> c1764897600x12).

    A node's name in front (ast1-1764897600.12) is left out: a room lives on the
    node that carries the call, where the number part alone is unique.
    """
    room = "c" + (number_of(uniqueid) or "").replace(".", "x")
    if not ROOM.fullmatch(room) or room == "c":
        raise ThreeWayError(f"{uniqueid[:40]!r} is not an Asterisk Uniqueid")
    return room


def dial_string(outbound_channel: str, number: str) -> str:
    """The channel to originate for number; a Local channel is kept whole (/n).

    Without /n, Asterisk optimizes a Local channel out of the room once the far
    end answers, and the leg's recording and its hang-up would go with it.
    """
    if not NUMBER.fullmatch(number):
        raise ThreeWayError(f"{number[:40]!r} is not a number (digits only)")
    channel = outbound_channel.format(number=number)
    if channel.startswith("Local/") and "/" not in channel.split("@", 1)[-1]:
        channel += "/n"
    return channel


def _check_channel(what: str, channel: str) -> None:
    if not CHANNEL.fullmatch(channel):
        raise ThreeWayError(f"{what} {channel[:60]!r} is not a channel name")


BRIDGE_SETTLE_TRIES = 20  # x 0.1 s


async def agent_channel(ami: AMI, caller_channel: str, interface: str, known: str = "") -> str:
    """The agent's channel bridged to the citizen's (BRIDGEPEER), checked to be the agent's.

    interface is what app_queue rang (PJSIP/agent-w001, Local/sa3@sim-agent): the
    peer must be one of its channels, so that no other call is ever pulled in.
    known is the agent's channel as app_queue connected it (AgentConnect's
    DestChannel): in a cluster a node rings the agent through the front
    (PJSIP/agent-w001@sip-front), and the channel is named after the front's
    endpoint (PJSIP/sip-front-0000002a), so only that exact name proves it.
    """
    _check_channel("the citizen's channel", caller_channel)
    peer = ""
    # AgentConnect may come before the bridge has set BRIDGEPEER: give it a moment
    for _ in range(BRIDGE_SETTLE_TRIES):
        reply = await ami.action("Getvar", Channel=caller_channel, Variable="BRIDGEPEER")
        peer = reply.get("Value", "")
        if peer:
            break
        await asyncio.sleep(0.1)
    ours = peer.startswith(f"{interface}-") or (bool(known) and peer == known)
    if not ours or "," in peer:
        raise ThreeWayError(f"the citizen is not talking with {interface} (bridged to {peer!r})")
    return peer


async def recording_base(ami: AMI, caller_channel: str) -> str:
    """The call's recording path without .wav (HOTLINE_BASE, set by the dialplan)."""
    _check_channel("the citizen's channel", caller_channel)
    reply = await ami.action("Getvar", Channel=caller_channel, Variable="HOTLINE_BASE")
    base = reply.get("Value", "")
    if not base.startswith("/") or ".." in base:
        raise ThreeWayError("the call has no recording folder (HOTLINE_BASE)")
    return base


def leg_recording(base: str, number: str) -> str:
    """The third party's recording, next to the call's: BASE-3way-NUMBER-EPOCH.wav."""
    return f"{base}-3way-{number}-{int(time.time())}.wav"


async def three_way(
    ami: AMI,
    *,
    caller_channel: str,
    agent_channel: str,
    number: str,
    room: str,
    recording: str,
    outbound_channel: str,
    caller_id: str = "",
    timeout_ms: int = 30000,
) -> Leg:
    """Bridge the citizen, the agent and number in room; return once number answered.

    The caller watches the leg's end with `leg_ended` (the Hangup queue is
    opened before the dial so that no hang-up is missed) or drops it with `forget`.
    """
    channel = dial_string(outbound_channel, number)
    if not ROOM.fullmatch(room):
        raise ThreeWayError(f"{room[:40]!r} is not a room name (letters and digits)")
    _check_channel("the citizen's channel", caller_channel)
    _check_channel("the agent's channel", agent_channel)
    if not recording.startswith("/") or ".." in recording or "," in recording:
        raise ThreeWayError(f"{recording[:60]!r} is not a recording path")
    for who in (caller_channel, agent_channel):
        await ami.action("Setvar", Channel=who, Variable="HOTLINE_ROOM", Value=room)
    await ami.action(
        "Redirect",
        Channel=caller_channel,
        Context=CONTEXT,
        Exten="citizen",
        Priority="1",
        ExtraChannel=agent_channel,
        ExtraContext=CONTEXT,
        ExtraExten="agent",
        ExtraPriority="1",
    )
    hangups = ami.subscribe("Hangup")
    try:
        result = await ami.originate(
            channel,
            context=CONTEXT,
            exten="party",
            variables={"HOTLINE_ROOM": room, "HOTLINE_LEG_FILE": recording},
            caller_id=caller_id,
            timeout_ms=timeout_ms,
        )
    except BaseException:
        ami.unsubscribe(hangups)
        raise
    if not result.success:
        ami.unsubscribe(hangups)
        raise ThreeWayError(
            f"{number} did not answer (reason {result.reason}); "
            "the citizen and the agent stay together in the room"
        )
    return Leg(room, number, result.channel, result.uniqueid, recording, hangups)


class Watched(Protocol):
    """A leg the hotline originated, with the Hangup events subscribed before it was dialled."""

    uniqueid: str
    hangups: asyncio.Queue[AMIEvent]


async def leg_ended(ami: AMI, leg: Watched, timeout: float | None = None) -> AMIEvent:
    """Wait for the leg's Hangup (None timeout: as long as it takes): a third party's, a
    listening supervisor's."""
    try:
        while True:
            event = await asyncio.wait_for(leg.hangups.get(), timeout)
            if event.get("Uniqueid") == leg.uniqueid:
                return event
    finally:
        ami.unsubscribe(leg.hangups)


def forget(ami: AMI, leg: Leg) -> None:
    """Stop watching the leg's end."""
    ami.unsubscribe(leg.hangups)


async def leave(ami: AMI, agent_channel: str) -> None:
    """The agent leaves the room; the citizen stays with the third party (warm transfer)."""
    _check_channel("the agent's channel", agent_channel)
    await ami.action("Hangup", Channel=agent_channel)
