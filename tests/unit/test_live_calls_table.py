"""/live's table: one row per citizen call, whatever legs Asterisk opens for it."""

from __future__ import annotations

from dashboard.live import LiveCalls
from telephony.ami import AMIEvent


def event(name: str, **fields: str) -> AMIEvent:
    return AMIEvent(name, fields)


def test_an_agent_leg_of_a_queued_call_is_not_a_second_call() -> None:
    """The queue rings the agent's phone on a channel of its own, linked to the citizen's
    call: it is that call's leg, and the row stays one (it failed before: two rows)."""
    calls = LiveCalls()
    calls.feed(
        event(
            "Newchannel",
            Uniqueid="1795.1",
            Linkedid="1795.1",
            Channel="PJSIP/trunk-01",
            Exten="12300",
            CallerIDNum="13800000001",
        )
    )
    calls.feed(event("QueueCallerJoin", Uniqueid="1795.1", CallerIDNum="13800000001"))
    calls.feed(
        event(
            "Newchannel",
            Uniqueid="1795.2",
            Linkedid="1795.1",
            Channel="PJSIP/agent-w001-02",
            Exten="s",
            CallerIDNum="13800000001",
        )
    )
    rows = calls.snapshot()
    assert [(row.uniqueid, row.number, row.where) for row in rows] == [
        ("1795.1", "13800000001", "queue")
    ]
    calls.feed(event("Hangup", Uniqueid="1795.2"))
    calls.feed(event("Hangup", Uniqueid="1795.1"))
    assert calls.snapshot() == []


def test_a_call_the_robot_places_is_a_call_of_its_own() -> None:
    calls = LiveCalls()
    calls.feed(
        event(
            "Newchannel",
            Uniqueid="1795.7",
            Linkedid="1795.7",
            Channel="PJSIP/13900000002@trunk-03",
            Exten="s",
            CallerIDNum="12345",
        )
    )
    assert [row.uniqueid for row in calls.snapshot()] == ["1795.7"]
