"""Asterisk's queue_log lines read as events, and the agent states they record."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from agents.queue_log import parse_line, read_from
from agents.store import states_of
from core.config import CallWindow, LineConfig
from core.seats import seat_password, seats
from core.vocabulary import AgentState

CONNECT = "1796430000|1796429990.12|hotline-agents|wang|CONNECT|7|1796429997.13|2\n"


def test_a_connect_line_is_read_with_its_fields() -> None:
    event = parse_line(CONNECT)
    assert event is not None
    assert event.at == datetime.fromtimestamp(1796430000, UTC)
    assert (event.callid, event.queue, event.agent, event.event) == (
        "1796429990.12",
        "hotline-agents",
        "wang",
        "CONNECT",
    )
    assert (event.field(1), event.field(3), event.field(9)) == ("7", "2", "")


def test_lines_that_are_not_events_are_skipped() -> None:
    assert parse_line("garbage") is None
    assert parse_line("abc|x|q|a|EVENT") is None
    assert parse_line("") is None


def test_reading_resumes_after_the_last_whole_line_and_restarts_on_a_new_file(
    tmp_path: Path,
) -> None:
    log = tmp_path / "queue_log"
    log.write_text(CONNECT + "1796430001|1796429990.12|hotline-agents|wang|COMPLETE")
    first = read_from(log, 0, 0)
    assert [e.event for e in first.events] == ["CONNECT"]  # the half line waits
    with log.open("a") as handle:
        handle.write("AGENT|7|20|1\n")
    second = read_from(log, first.inode, first.offset)
    assert [e.event for e in second.events] == ["COMPLETEAGENT"]
    assert read_from(log, second.inode, second.offset).events == []
    log.unlink()
    log.write_text(CONNECT)  # rotated: another inode, read from its start
    assert [e.event for e in read_from(log, second.inode, second.offset).events] == ["CONNECT"]


def test_an_answered_call_rang_then_talked_then_wrapped_up() -> None:
    connect = parse_line(CONNECT)
    assert connect is not None
    (ringing, rang_at, _), (on_call, at, _) = states_of(connect)
    assert (ringing, on_call) == (AgentState.RINGING, AgentState.ON_CALL)
    assert at - rang_at == timedelta(seconds=2)
    done = parse_line("1796430020|1796429990.12|hotline-agents|wang|COMPLETECALLER|7|20|1")
    assert done is not None and states_of(done) == [(AgentState.WRAP_UP, done.at, None)]


def test_a_pause_keeps_its_reason_and_a_ring_out_returns_to_ready() -> None:
    pause = parse_line("1796430000|NONE|hotline-agents|li|PAUSE|break")
    assert pause is not None and states_of(pause) == [(AgentState.PAUSED, pause.at, "break")]
    rona = parse_line("1796430000|1796429990.12|hotline-agents|li|RINGNOANSWER|5000")
    assert rona is not None
    assert [s for s, _, _ in states_of(rona)] == [AgentState.RINGING, AgentState.READY]


def test_staffed_hours_across_midnight_and_around_the_clock() -> None:
    night = LineConfig(
        did="123",
        name="n",
        greeting="greeting_main",
        staffed_hours=[CallWindow(start=time(22), end=time(6))],
    )
    assert night.staffed(time(23, 30)) and night.staffed(time(5, 59))
    assert not night.staffed(time(6)) and not night.staffed(time(12))
    always = LineConfig(did="124", name="a", greeting="greeting_main")
    assert always.staffed(time(3)) and always.answer == "agents"


def test_seats_have_distinct_stable_passwords() -> None:
    every = seats(3, 2)
    assert [s.endpoint for s in every] == [
        "agent-w001",
        "agent-w002",
        "agent-w003",
        "agent-d001",
        "agent-d002",
    ]
    passwords = {seat_password("k" * 32, s.endpoint) for s in every}
    assert len(passwords) == 5 and all(len(p) == 24 for p in passwords)
    assert seat_password("k" * 32, "agent-w001") == seat_password("k" * 32, "agent-w001")
    assert seat_password("other-key" * 4, "agent-w001") not in passwords
