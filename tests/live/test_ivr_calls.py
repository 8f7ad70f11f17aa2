"""Citizen calls through the real Asterisk into the IVR: each path ends in the store.

The calls of this module are placed all at once (as a real hotline receives
them), one scripted citizen per path; each test then checks its own call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from core.vocabulary import EventKind, Level, RequestType, TicketStatus, Urgency
from db.departments import create_department
from db.session import unit_of_work
from db.tickets import create_ticket, ticket_by_number
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.calls import (
    CallResult,
    call_row,
    calls_ended,
    channel_log,
    citizen_call,
    played_digits,
    prompt_seconds,
    speech_file,
    ticket_of_call,
)
from tools.local_asterisk.local import LocalAsterisk


@dataclass
class Scenario:
    did: str
    caller: str
    script: Callable[[str, str], str]  # (voice file, prepared ticket number) -> script
    prepare: Callable[[Hotline], str] | None = None


def make_ticket(caller: str, status: TicketStatus, unit: str | None = None):  # type: ignore[no-untyped-def]
    """A prepared ticket of caller in status (optionally dispatched to a unit)."""

    def prepare(hotline: Hotline) -> str:
        with unit_of_work(hotline.sessions) as session:
            department = None
            if unit:
                city = create_department(session, f"city-{caller}", "鄂尔多斯市", Level.CITY)
                department = create_department(
                    session, f"unit-{caller}", unit, Level.DISTRICT, city
                )
            ticket = create_ticket(
                session,
                caller_number=caller,
                local_day=date(2026, 11, 20),
                accepted_at=datetime(2026, 11, 20, 2, tzinfo=UTC),
                due_at=datetime(2026, 11, 25, 2, tzinfo=UTC),
            )
            ticket.status = status
            ticket.department = department
            return ticket.number

    return prepare


SCENARIOS: dict[str, Scenario] = {
    # 1 new request (pressed during the greeting), 3 complaint, 2 daily life, speak, #
    "new_request": Scenario(
        "12345", "13800138000", lambda v, _: f"w1.5|d1|w1.5|d3|w1.5|d2|w7|p{v}|w1|d#"
    ),
    # 2 progress: first an unknown number, then the right one
    "progress": Scenario(
        "12345",
        "13700137000",
        lambda _, n: f"w1.5|d2|w2|d99999#|w8|d{n}#|w2",
        make_ticket("13700137000", TicketStatus.DISPATCHED, "东胜区住建局"),
    ),
    "urge": Scenario(
        "12345",
        "13600136000",
        lambda _, n: "w1.5|d3|w2",
        make_ticket("13600136000", TicketStatus.IN_PROGRESS),
    ),
    # 0 agent: nobody in the queue, so a message after the tone (its wait: the two prompts)
    "agent": Scenario(
        "12345",
        "13500135000",
        lambda v, wait: f"w1.5|d0|w{wait}|p{v}|w1|d#",
        lambda hotline: "{:.1f}".format(
            prompt_seconds(hotline.config, "zh", "queue_message_offer", "message_no_agents") + 0.8
        ),
    ),
    # an invalid key in the menu, then silence until the menu gives up and records
    "menu_timeout": Scenario("12345", "13300133000", lambda v, _: f"w10|d7|w42|p{v}|w1|d#"),
    **{
        f"line_{did}": Scenario(did, "13400134000", lambda _v, _n: "w3|h")
        for did in ("12345001", "12345002", "12345003", "12345004")
    },
    # 9 during the greeting: the menu and the rest of the call in English
    "english": Scenario("12345", "13900139009", lambda _v, _n: "w1.5|d9|w4|h"),
    # hang-ups at every step of the flow
    "hangup_greeting": Scenario("12345", "13100131001", lambda _v, _n: "w2|h"),
    "hangup_menu": Scenario("12345", "13100131002", lambda _v, _n: "w11|h"),
    "hangup_type": Scenario("12345", "13100131003", lambda _v, _n: "w1.5|d1|w2|h"),
    "hangup_recording": Scenario(
        "12345", "13100131004", lambda v, _: f"w1.5|d1|w1.5|d1|w1.5|d1|w7|p{v}|h"
    ),
    "hangup_readback": Scenario(
        "12345", "13100131005", lambda v, _: f"w1.5|d1|w1.5|d1|w1.5|d1|w7|p{v}|w1|d#|w5|h"
    ),
}


@dataclass
class Placed:
    result: CallResult
    prepared: str
    log_start: int


@pytest.fixture(scope="module")
async def hotline(start_hotline) -> AsyncIterator[Hotline]:  # type: ignore[no-untyped-def]
    """One store for this module: its calls are placed together, once, and each test
    below reads its own call's rows from it (none writes)."""
    async with start_hotline() as app:
        yield app


@pytest.fixture(scope="module")
async def calls(hotline: Hotline, asterisk: LocalAsterisk, ami: AMIClient) -> dict[str, Placed]:
    """Every scenario's call, placed concurrently; results by scenario name."""
    voice = speech_file(hotline.config.state_dir / "voices", "네")
    log_start = (asterisk.state / "log" / "messages.log").stat().st_size

    async def place(scenario: Scenario) -> Placed:
        prepared = scenario.prepare(hotline) if scenario.prepare else ""
        result = await citizen_call(
            ami, scenario.did, scenario.script(voice, prepared), caller=scenario.caller, timeout=180
        )
        return Placed(result, prepared, log_start)

    placed = await asyncio.gather(*(place(s) for s in SCENARIOS.values()))
    await calls_ended(hotline, *(p.result.uniqueid for p in placed))
    return dict(zip(SCENARIOS, placed, strict=True))


def played(asterisk: LocalAsterisk, placed: Placed, prompt: str) -> bool:
    """Asterisk's own log shows the prompt played on this call's channel."""
    lines = channel_log(asterisk, placed.result.channel, placed.log_start)
    return any(f"/{prompt}." in line and "Playing" in line for line in lines)


def test_new_request_becomes_a_ticket_read_back_digit_by_digit(
    calls: dict[str, Placed],
    hotline: Hotline,
    asterisk: LocalAsterisk,
) -> None:
    placed = calls["new_request"]
    ticket = ticket_of_call(hotline, placed.result.uniqueid)
    assert ticket is not None
    assert placed.result.variables["HOTLINE_TICKET"] == ticket.number
    spoken = played_digits(asterisk, placed.result.channel, placed.log_start)
    assert spoken.startswith(ticket.number)  # read back digit by digit (and once more)
    assert ticket.caller_number == "13800138000"
    assert (ticket.request_type, ticket.urgency) == (RequestType.COMPLAINT, Urgency.DAILY_LIFE)
    assert ticket.source == "ivr" and ticket.status == TicketStatus.ACCEPTED
    assert ticket.due_at is not None and ticket.due_at > ticket.accepted_at
    assert ticket.recording_path and ticket.recording_path.endswith("-request.wav")
    assert Path(ticket.recording_path).stat().st_size > 8000  # the citizen's voice, recorded
    call = call_row(hotline, placed.result.uniqueid)
    assert call is not None and call.ticket_id == ticket.id
    assert call.recording_path and Path(call.recording_path).stat().st_size > 16000
    assert call.recording_path.endswith("_12345_13800138000.wav")
    assert call.ended_at is not None and call.hangup_cause == "16"
    assert call.linkedid and call.started_at <= call.answered_at <= call.ended_at  # type: ignore[operator]
    assert [e.kind for e in ticket.events] == [EventKind.ACCEPTED]


def test_progress_query_speaks_status_after_an_unknown_number(
    calls: dict[str, Placed],
    asterisk: LocalAsterisk,
) -> None:
    placed = calls["progress"]
    assert placed.result.variables["HOTLINE_SPOKEN_STATUS"] == "dispatched"
    for prompt in ("unknown_ticket", "status_dispatched", "handling_unit_is", "due_date_is"):
        assert played(asterisk, placed, prompt), prompt


def test_urge_counts_and_records_an_event(calls: dict[str, Placed], hotline: Hotline) -> None:
    placed = calls["urge"]
    assert placed.result.variables["HOTLINE_URGED"] == placed.prepared
    with unit_of_work(hotline.sessions) as session:
        ticket = ticket_by_number(session, placed.prepared)
        assert ticket is not None and ticket.urge_count == 1
        assert [e.kind for e in ticket.events][-1] == EventKind.URGED


def test_agent_queue_without_agents_takes_a_message(
    calls: dict[str, Placed],
    hotline: Hotline,
) -> None:
    ticket = ticket_of_call(hotline, calls["agent"].result.uniqueid)
    assert ticket is not None and ticket.source == "queue-no_agents"
    assert ticket.caller_number == "13500135000"
    assert Path(str(ticket.recording_path)).stat().st_size > 8000


def test_nine_at_the_greeting_switches_to_english(
    calls: dict[str, Placed],
    asterisk: LocalAsterisk,
) -> None:
    placed = calls["english"]
    assert played(asterisk, placed, "en/main_menu")
    assert not played(asterisk, placed, "zh/main_menu")


@pytest.mark.parametrize("did", ["12345001", "12345002", "12345003", "12345004"])
def test_each_dedicated_line_has_its_greeting_and_category(
    calls: dict[str, Placed],
    hotline: Hotline,
    asterisk: LocalAsterisk,
    did: str,
) -> None:
    line = next(line for line in hotline.config.lines if line.did == did)
    placed = calls[f"line_{did}"]
    assert played(asterisk, placed, line.greeting)
    ticket = ticket_of_call(hotline, placed.result.uniqueid)
    assert ticket is not None and ticket.category == line.default_category


def test_invalid_and_missing_keys_repeat_the_menu_then_record(
    calls: dict[str, Placed],
    hotline: Hotline,
    asterisk: LocalAsterisk,
) -> None:
    placed = calls["menu_timeout"]
    assert played(asterisk, placed, "invalid_key")
    ticket = ticket_of_call(hotline, placed.result.uniqueid)
    assert ticket is not None and ticket.source == "ivr-menu-timeout"
    assert placed.result.variables["HOTLINE_TICKET"] == ticket.number
    assert Path(str(ticket.recording_path)).stat().st_size > 8000


@pytest.mark.parametrize(
    ("name", "step", "has_request"),
    [
        ("hangup_greeting", "greeting", False),
        ("hangup_menu", "menu", False),
        ("hangup_type", "type", False),
        ("hangup_recording", "recording", True),
        ("hangup_readback", "readback", True),
    ],
)
def test_hanging_up_at_any_step_still_leaves_a_ticket_with_audio(
    calls: dict[str, Placed],
    hotline: Hotline,
    name: str,
    step: str,
    has_request: bool,
) -> None:
    placed = calls[name]
    ticket = ticket_of_call(hotline, placed.result.uniqueid)
    call = call_row(hotline, placed.result.uniqueid)
    assert ticket is not None and call is not None
    assert ticket.caller_number == SCENARIOS[name].caller
    assert call.last_step == step and call.ended_at is not None
    assert ticket.recording_path and Path(ticket.recording_path).stat().st_size > 44
    assert ticket.recording_path.endswith("-request.wav") == has_request
    if step == "readback":  # the ticket was made before the hang-up: the IVR's own
        assert ticket.source == "ivr"
    else:
        assert ticket.source == "ivr-hangup"
        assert f"hung up at step: {step}" in str(ticket.description)
