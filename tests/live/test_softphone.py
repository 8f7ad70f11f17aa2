"""Real SIP from the pyVoIP softphone: registration, RFC 4733 keys, RTP audio recorded."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Ticket
from db.session import unit_of_work
from hotline.app import Hotline
from ivr import recordings
from telephony.ami import AMIClient
from tests.support.calls import speech_file
from tests.support.events import wait_for_event
from tools.softphone.softphone import CitizenPhone, PhoneError, PhoneSettings, parse_script


def test_script_language_is_checked() -> None:
    assert parse_script("w1.5|d12#|p/x.wav|h") == [
        ("w", "1.5"),
        ("d", "12#"),
        ("p", "/x.wav"),
        ("h", ""),
    ]
    with pytest.raises(PhoneError, match="use wSECONDS, dKEYS, pFILE or h"):
        parse_script("x1")


async def test_keys_sent_by_the_softphone_reach_asterisk(hotline: Hotline, ami: AMIClient) -> None:
    settings = PhoneSettings.from_config(hotline.config, "6002")
    queue = ami.subscribe("VarSet")
    with CitizenPhone(settings) as phone:
        answering = asyncio.create_task(
            asyncio.to_thread(lambda: phone.run_script(phone.answer(20), "w2.5|d7", hold=15))
        )
        origin = await ami.originate(
            "PJSIP/6002", context="hotline-diag", exten="echo", timeout_ms=15000
        )
        assert origin.success
        digit = await wait_for_event(
            queue, lambda e: e.get("Variable") == "HOTLINE_ECHO_DIGIT", timeout=30
        )
        await answering
    ami.unsubscribe(queue)
    assert digit.get("Value") == "7"


async def test_a_sip_call_to_12345_becomes_a_ticket_with_recorded_rtp_audio(
    hotline: Hotline,
) -> None:
    voice = speech_file(hotline.config.state_dir / "voices", "네")
    script = f"w1.5|d1|w1.5|d5|w1.5|d1|w7|p{voice}.wav|w1|d#|w20|h"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotline.cli",
        "phone",
        "call",
        "12345",
        "--script",
        script,
        "--as",
        "6001",
        "--config",
        str(hotline.config.source),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "6001 registered" in out.decode()
    await asyncio.sleep(1)
    with unit_of_work(hotline.sessions) as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.caller_number == "6001").order_by(Ticket.id.desc())
        ).first()
        assert ticket is not None
        assert ticket.source == "ivr" and ticket.request_type is not None
        assert ticket.request_type.value == "suggestion"  # key 5, sent over RTP as an event
        recording = Path(str(ticket.recording_path))
        call = ticket.calls[0]
        call_recording = call.recording_path
        # the sandbox's Asterisk is node ast1 (asterisk.systemname): issue 22's distinct nodes
        assert call.uniqueid.startswith("ast1-") and call.node == "ast1"
        assert call.sip_call_id  # the INVITE's Call-ID, read by the dialplan
        assert recordings.parse(Path(str(call_recording))).node == "ast1"  # type: ignore[union-attr]
    assert recording.stat().st_size > 8000  # the softphone's voice, recorded from RTP
    assert call_recording and Path(call_recording).stat().st_size > 16000
