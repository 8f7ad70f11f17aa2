"""Listening in (监听 / 耳语 / 强插): a supervisor's phone joined to a live agent call.

The supervisor's phone is originated into the dialplan's `[hotline-listen]`
(dialplans/monitoring.conf), whose extension is the mode: `listen`, `whisper`
(the agent hears the supervisor, the citizen does not) or `barge` (both do).
There `ChanSpy(HOTLINE_SPY, u E S ...)` spies on exactly one channel: the
agent's, found from the citizen's by BRIDGEPEER (`agents.conference.agent_channel`)
and given whole with `u` (a full channel name, not a prefix, so no other call is
ever heard); `E` ends the session when the agent's channel hangs up, `S` when
there is nothing to spy on. `q` (no beep) unless `monitoring.tell_agent`.

The phone is one of the installation's seats (`core.seats`: PJSIP/agent-w001…),
or, with `asterisk.include_simulators`, a scripted supervisor
`Local/NAME@sim-supervisor` (tests). Everything is checked before the first AMI
action: the mode from a fixed set, the phone, the channel names.

Every session is a `listen_sessions` row: opened once the supervisor's phone
answered, ended on that leg's Hangup (`agents.conference.leg_ended` waits for it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.conference import AMI, CHANNEL
from db.models import ListenSession
from telephony.ami import AMIEvent

CONTEXT = "hotline-listen"
MODES = ("listen", "whisper", "barge")
MODE_NAMES = {"listen": "监听", "whisper": "耳语", "barge": "强插"}
SEAT = re.compile(r"agent-[wd][0-9]{3,4}")
SIM_PHONE = re.compile(r"sim-([a-z0-9]{1,16})")
SIM_CONTEXT = "sim-supervisor"


class ListenError(Exception):
    """Listening in was refused or failed (the message says which and why)."""


@dataclass
class Leg:
    """The supervisor's leg, answered and spying."""

    mode: str
    phone: str
    channel: str
    uniqueid: str
    hangups: asyncio.Queue[AMIEvent] = field(repr=False)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ListenError(f"{mode[:20]!r} is not a mode ({', '.join(MODES)})")
    return mode


def phone_channel(
    phone: str, seats: Iterable[str], simulators: bool = False, through: str = ""
) -> str:
    """The dial string of a supervisor's phone: a seat of seats, or a scripted supervisor.

    through: the endpoint a seat is reached by (a cluster's node rings phones
    through the SIP front, where they register: PJSIP/agent-w001@sip-front).
    """
    if phone in set(seats) and SEAT.fullmatch(phone):
        return f"PJSIP/{phone}@{through}" if through else f"PJSIP/{phone}"
    found = SIM_PHONE.fullmatch(phone)
    if simulators and found:
        return f"Local/{found.group(1)}@{SIM_CONTEXT}/n"
    raise ListenError(f"{phone[:40]!r} is not a supervisor's phone (a seat of agents.*_seats)")


def _check_channel(what: str, channel: str) -> None:
    if not CHANNEL.fullmatch(channel):
        raise ListenError(f"{what} {channel[:60]!r} is not a channel name")


async def listen_in(
    ami: AMI,
    *,
    agent_channel: str,
    mode: str,
    phone: str,
    dial: str,
    tell_agent: bool = False,
    caller_id: str = "12345",
    timeout_ms: int = 30000,
) -> Leg:
    """Ring dial (the phone's dial string) and join it to agent_channel in mode.

    Returns once the phone answered; the Hangup queue is opened before the dial,
    so `leg_ended` misses no hang-up.
    """
    check_mode(mode)
    _check_channel("the agent's channel", agent_channel)
    if not (dial.startswith("PJSIP/agent-") or dial.endswith(f"@{SIM_CONTEXT}/n")):
        raise ListenError(f"{dial[:60]!r} is not a supervisor's phone")
    hangups = ami.subscribe("Hangup")
    try:
        result = await ami.originate(
            dial,
            context=CONTEXT,
            exten=mode,
            variables={
                "HOTLINE_SPY": agent_channel,
                "HOTLINE_SPY_QUIET": "" if tell_agent else "q",
            },
            caller_id=caller_id,
            timeout_ms=timeout_ms,
        )
    except BaseException:
        ami.unsubscribe(hangups)
        raise
    if not result.success:
        ami.unsubscribe(hangups)
        raise ListenError(f"the phone {phone} did not answer (reason {result.reason})")
    return Leg(mode, phone, result.channel, result.uniqueid, hangups)


async def stop(ami: AMI, channel: str) -> None:
    """Hang up the supervisor's leg (the session's end is written by its Hangup)."""
    _check_channel("the supervisor's channel", channel)
    await ami.action("Hangup", Channel=channel)


# -- the store ---------------------------------------------------------------------------
def open_session(
    session: Session,
    *,
    supervisor: str,
    uniqueid: str,
    agent_id: int | None,
    mode: str,
    phone: str,
    channel: str,
) -> int:
    row = ListenSession(
        supervisor=supervisor,
        uniqueid=uniqueid,
        agent_id=agent_id,
        mode=check_mode(mode),
        phone=phone,
        channel=channel,
    )
    session.add(row)
    session.flush()
    return row.id


def end_session(session: Session, session_id: int, at: datetime) -> None:
    row = session.get(ListenSession, session_id)
    if row is not None and row.ended_at is None:
        row.ended_at = at


def open_sessions(session: Session) -> list[ListenSession]:
    return list(
        session.scalars(
            select(ListenSession).where(ListenSession.ended_at.is_(None)).order_by(ListenSession.id)
        )
    )


def sessions_of(session: Session, uniqueid: str) -> list[ListenSession]:
    return list(
        session.scalars(
            select(ListenSession)
            .where(ListenSession.uniqueid == uniqueid)
            .order_by(ListenSession.id)
        )
    )
