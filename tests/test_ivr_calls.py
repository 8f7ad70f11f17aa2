"""Citizen calls through the real Asterisk into the IVR: each path ends in the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.models import EventKind, RequestType, TicketStatus, Urgency
from hotline.app import Hotline
from hotline.asterisk.ami import AMIClient
from hotline.asterisk.local import LocalAsterisk
from tests.ivr_helpers import (
    call_row,
    citizen_call,
    played_digits,
    settle,
    speech_file,
    ticket_of_call,
)

pytestmark = pytest.mark.asterisk


@pytest.fixture(scope="module")
def voice(hotline: Hotline) -> str:
    return speech_file(hotline.config.state_dir / "voices", "네")


def log_size(asterisk: LocalAsterisk) -> int:
    return (asterisk.state / "log" / "messages.log").stat().st_size


async def test_new_request_becomes_a_ticket_read_back_digit_by_digit(
    hotline: Hotline, asterisk: LocalAsterisk, ami: AMIClient, voice: str,
) -> None:
    start = log_size(asterisk)
    # 1 new request (during the greeting), 3 complaint, 2 daily life, speak, # to finish
    result = await citizen_call(ami, "12345", f"w1.5|d1|w1.5|d3|w1.5|d2|w7|p{voice}|w1|d#")
    await settle()
    ticket = ticket_of_call(hotline, result.uniqueid)
    assert ticket is not None
    assert result.variables["HOTLINE_TICKET"] == ticket.number
    assert played_digits(asterisk, result.uniqueid, start).startswith(ticket.number)
    assert ticket.caller_number == "13800138000"
    assert (ticket.request_type, ticket.urgency) == (RequestType.COMPLAINT, Urgency.DAILY_LIFE)
    assert ticket.source == "ivr" and ticket.status == TicketStatus.ACCEPTED
    assert ticket.due_at is not None and ticket.due_at > ticket.accepted_at
    assert ticket.recording_path and ticket.recording_path.endswith("-request.wav")
    assert Path(ticket.recording_path).stat().st_size > 8000  # the citizen's voice, recorded
    call = call_row(hotline, result.uniqueid)
    assert call is not None and call.ticket_id == ticket.id
    assert call.recording_path and Path(call.recording_path).stat().st_size > 16000
    assert f"_12345_13800138000.wav" in call.recording_path
    assert call.ended_at is not None and call.hangup_cause
    assert [e.kind for e in ticket.events] == [EventKind.ACCEPTED]
