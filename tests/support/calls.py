"""Helpers for placing scripted citizen calls into the real Asterisk and reading the outcome."""

from __future__ import annotations

import itertools
import re
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.config import HotlineConfig
from db.models import Call, Ticket
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient, AMIEvent
from tests.support.events import eventually, wait_for_event
from tools.local_asterisk.local import LocalAsterisk

_script_ids = itertools.count(1)


@dataclass
class CallResult:
    uniqueid: str
    channel: str  # the hotline's leg, e.g. Local/script7@sim-citizen-0000000a;1
    variables: dict[str, str] = field(default_factory=dict)
    events: list[AMIEvent] = field(default_factory=list)

    def user_events(self, name: str) -> list[AMIEvent]:
        return [e for e in self.events if e.name == "UserEvent" and e.get("UserEvent") == name]


async def citizen_call(
    ami: AMIClient, did: str, script: str, caller: str = "13800138000", timeout: float = 120
) -> CallResult:
    """Call a hotline line as a scripted citizen; return once the hotline's leg is gone."""
    script_id = next(_script_ids)
    await ami.action("DBPut", Family="sim", Key=str(script_id), Val=script)
    queue = ami.subscribe("VarSet", "UserEvent", "Hangup")
    try:
        origin = await ami.originate(
            f"Local/script{script_id}@sim-citizen",
            context="hotline-in",
            exten=did,
            caller_id=caller,
            timeout_ms=10000,
        )
        assert origin.success, origin.fields
        result = CallResult(origin.uniqueid, origin.channel)

        def finished(event: AMIEvent) -> bool:
            result.events.append(event)
            if event.name == "VarSet" and event.get("Uniqueid") == origin.uniqueid:
                result.variables[event.get("Variable")] = event.get("Value")
            return event.name == "Hangup" and event.get("Uniqueid") == origin.uniqueid

        await wait_for_event(queue, finished, timeout)
        return result
    finally:
        ami.unsubscribe(queue)


def ticket_of_call(hotline: Hotline, uniqueid: str) -> Ticket | None:
    with unit_of_work(hotline.sessions) as session:
        return session.scalars(
            select(Ticket)
            .where(Ticket.origin_uniqueid == uniqueid)
            .options(selectinload(Ticket.events), selectinload(Ticket.calls))
        ).one_or_none()


def call_row(hotline: Hotline, uniqueid: str) -> Call | None:
    with unit_of_work(hotline.sessions) as session:
        return session.scalars(select(Call).where(Call.uniqueid == uniqueid)).one_or_none()


def channel_log(asterisk: LocalAsterisk, channel: str, after: int = 0) -> list[str]:
    """The lines of Asterisk's log about one channel (from byte offset `after`)."""
    log = (asterisk.state / "log" / "messages.log").read_bytes()[after:].decode("utf-8", "replace")
    return [line for line in log.splitlines() if f"<{channel}>" in line or f'"{channel}"' in line]


def played_digits(asterisk: LocalAsterisk, channel: str, after: int = 0) -> str:
    """The digit prompts Asterisk played on a channel, in order, from its own log."""
    lines = channel_log(asterisk, channel, after)
    return "".join(
        m.group(1) for line in lines if (m := re.search(r"Playing '[^']*/digit_(\d)\.\w+'", line))
    )


def speech_file(folder: Path, text: str, voice: str = "ko") -> str:
    """A citizen's voice: espeak-ng speaking text, 8 kHz WAV, path without extension."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"speech-{abs(hash((text, voice))) % 10**8}"
    raw = stem.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "120", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(stem) + ".wav"], check=True
    )
    raw.unlink()
    return str(stem)


def _ended(hotline: Hotline, uniqueid: str, spooled: str) -> bool:
    row = call_row(hotline, uniqueid)
    return (row is not None and row.ended_at is not None) or uniqueid in spooled


async def calls_ended(hotline: Hotline, *uniqueids: str, timeout: float = 30) -> None:
    """Wait until the call-end handler has written each call's end (or spooled it).

    Asterisk's Hangup event comes before the `call-end` FastAGI request it runs
    in the hang-up handler has landed; this waits for the row, not for a guess.
    """

    def all_ended() -> bool:
        spool = hotline.store.spool.pending()
        spooled = "".join(p.read_text(errors="replace") for p in spool if "call_end" in p.name)
        return all(_ended(hotline, u, spooled) for u in uniqueids)

    await eventually(all_ended, timeout=timeout, what=f"the end of {len(uniqueids)} call(s)")


def prompt_seconds(config: HotlineConfig, lang: str, *prompts: str) -> float:
    """How long the built prompts play one after another (a scripted citizen's timing)."""
    total = 0.0
    for prompt in prompts:
        with wave.open(str(config.sounds_dir / lang / f"{prompt}.wav")) as audio:
            total += audio.getnframes() / audio.getframerate()
    return total
