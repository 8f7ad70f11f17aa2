"""The reconciler on both databases: long caller numbers, old folders left alone, live calls.

Every test runs on SQLite and on PostgreSQL (the `ivr_store` fixture of
tests/store/conftest.py).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from db.session import unit_of_work
from db.tickets import ticket_for_call
from ivr import recordings
from ivr.reconcile import reconcile
from ivr.store import CallStart, IvrStore
from tests.support.recordings import day_dir, write_wav


def test_a_recording_named_with_an_overlong_caller_still_becomes_a_ticket(
    ivr_store: IvrStore,
) -> None:
    caller = "8" * 55  # longer than calls.caller_number's 40 characters
    write_wav(day_dir(ivr_store.config) / f"1700000300.1_12345_{caller}-message.wav", 2)
    report = reconcile(ivr_store, settle_seconds=0)
    assert len(report.tickets_for_orphan_recordings) == 1
    with unit_of_work(ivr_store.sessions) as session:
        ticket = ticket_for_call(session, "1700000300.1")
        assert ticket is not None and caller.startswith(ticket.caller_number)


def test_a_pass_looks_only_at_today_and_yesterday(ivr_store: IvrStore) -> None:
    config = ivr_store.config
    old_day = datetime.now(config.tz).date() - timedelta(days=3)
    old = write_wav(
        recordings.day_folder(config.recordings_dir, old_day) / "1600000000.1_12345_1.wav", 1
    )
    past = time.time() - 3 * 86400
    os.utime(old, (past, past))
    report = reconcile(ivr_store, settle_seconds=0)
    assert report.tickets_for_orphan_recordings == []  # not even looked at
    assert report.recordings_without_call == []


def test_a_call_whose_channel_asterisk_still_has_is_left_alone(ivr_store: IvrStore) -> None:
    started = datetime.now(UTC) - timedelta(minutes=6)  # a six-minute queue call
    ivr_store.apply(
        "call_start", vars(CallStart("1700000400.1", "13800000400", "12345", None, None, started))
    )
    live = reconcile(ivr_store, settle_seconds=300, live={"1700000400.1"})
    assert live.tickets_for_calls == []
    unknown = reconcile(ivr_store, settle_seconds=300, live=None)  # AMI away: an hour is the limit
    assert unknown.tickets_for_calls == []
    gone = reconcile(ivr_store, settle_seconds=300, live=set())  # Asterisk no longer has it
    assert len(gone.tickets_for_calls) == 1
