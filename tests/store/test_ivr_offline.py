"""The reconciler, the spool and the ticket commands on a real store and real files.

Every test that takes `ivr_store` runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from core.config import HotlineConfig, load_config
from core.vocabulary import RequestType, Urgency
from db.migrate import upgrade
from db.session import unit_of_work
from db.tickets import ticket_by_number, ticket_for_call
from ivr import recordings
from ivr.reconcile import reconcile
from ivr.store import CallStart, IvrStore, TicketRequest
from tests.support.config import write_config
from tests.support.recordings import day_dir, write_wav


def cli(config: HotlineConfig, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args, "--config", str(config.source)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": str(columns)},
        start_new_session=True,  # `serve` would set its session's scheduling group: not ours
    )


def test_recording_names_carry_call_line_and_caller(tmp_path: Path) -> None:
    parsed = recordings.parse(tmp_path / "1795635757.12_12345003_13200132001-message.wav")
    assert parsed is not None
    assert (parsed.uniqueid, parsed.did, parsed.caller, parsed.is_request) == (
        "1795635757.12",
        "12345003",
        "13200132001",
        True,
    )
    assert recordings.parse(tmp_path / "1.2__.wav").caller == "unknown"  # type: ignore[union-attr]
    assert recordings.parse(tmp_path / "notes.wav") is None
    # a node with a systemname (issue 22) puts its name in front of the Uniqueid
    named = recordings.parse(tmp_path / "ast1-1700000000.12_12345_13800000000.wav")
    assert named is not None and not named.is_request
    assert (named.uniqueid, named.node, named.did, named.caller) == (
        "ast1-1700000000.12",
        "ast1",
        "12345",
        "13800000000",
    )
    assert parsed.node is None


def test_reconciler_turns_orphans_into_tickets_and_cleans_empty_files(ivr_store: IvrStore) -> None:
    config = ivr_store.config
    # 1. a recording nobody knows (FastAGI was down for the whole call)
    orphan = write_wav(day_dir(config) / "1700000001.1_12345004_13900000001.wav", 3)
    write_wav(day_dir(config) / "1700000001.1_12345004_13900000001-message.wav", 2)
    # 2. a call row without a ticket whose call ended
    call_file = write_wav(day_dir(config) / "1700000002.1_12345_13900000002.wav", 2)
    ivr_store.apply(
        "call_start",
        {
            "uniqueid": "1700000002.1",
            "caller": "13900000002",
            "did": "12345",
            "recording": str(call_file),
            "started_at": datetime(2026, 11, 25, 1, tzinfo=UTC),
        },
    )
    # 3. a header-only recording of a call that ended before any audio
    empty = day_dir(config) / "1700000003.1_12345_13900000003.wav"
    write_wav(empty, 0)
    ivr_store.apply(
        "call_start",
        {
            "uniqueid": "1700000003.1",
            "caller": "13900000003",
            "did": "12345",
            "recording": str(empty),
            "started_at": datetime(2026, 11, 25, 1, tzinfo=UTC),
        },
    )
    report = reconcile(ivr_store, settle_seconds=0)
    assert len(report.tickets_for_orphan_recordings) == 1
    assert report.empty_recordings_removed == [str(empty)] and not empty.exists()
    with unit_of_work(ivr_store.sessions) as session:
        from_orphan = ticket_for_call(session, "1700000001.1")
        assert from_orphan is not None and from_orphan.caller_number == "13900000001"
        assert from_orphan.category == "医疗保障"
        assert str(from_orphan.recording_path).endswith("-message.wav")
        assert from_orphan.calls[0].recording_path == str(orphan)
        from_call = ticket_for_call(session, "1700000002.1")
        assert from_call is not None and from_call.recording_path == str(call_file)
        emptied = ticket_for_call(session, "1700000003.1")
        assert emptied is not None and emptied.recording_path is None
        assert "no audio" in str(emptied.calls[0].note)
    assert report.recordings_without_call == [] and report.calls_missing_recording == []
    again = reconcile(ivr_store, settle_seconds=0)
    assert not again.tickets_for_calls and not again.tickets_for_orphan_recordings


def test_reconciler_reports_a_call_whose_recording_vanished(ivr_store: IvrStore) -> None:
    gone = day_dir(ivr_store.config) / "1700000009.1_12345_1.wav"
    ivr_store.apply(
        "call_start",
        {
            "uniqueid": "1700000009.1",
            "caller": "1",
            "did": "12345",
            "recording": str(gone),
            "started_at": datetime.now(UTC),
        },
    )
    report = reconcile(ivr_store, settle_seconds=0)
    assert report.calls_missing_recording == [("1700000009.1", str(gone))]
    assert not report.clean


def test_young_recordings_are_left_for_later(ivr_store: IvrStore) -> None:
    write_wav(day_dir(ivr_store.config) / "1700000010.1_12345_5.wav", 1)
    report = reconcile(ivr_store, settle_seconds=600)
    assert report.tickets_for_orphan_recordings == []


def test_spool_replays_in_order_and_keeps_unreadable_entries(ivr_store: IvrStore) -> None:
    spool = ivr_store.spool
    request = write_wav(day_dir(ivr_store.config) / "1700000020.1_12345_13800000020-request.wav", 2)
    spool.put("call_start", vars(CallStart("1700000020.1", "13800000020", "12345", None)))
    spool.put(
        "ticket",
        vars(
            TicketRequest(
                "1700000020.1",
                "13800000020",
                "12345",
                str(request),
                RequestType.HELP,
                Urgency.EMERGENCY,
            )
        ),
    )
    (spool.folder / "00000000000000000000-ticket-broken.json").write_text("{not json")
    applied, left = spool.replay(ivr_store.apply)
    assert (applied, left) == (2, 0)
    assert [p.name for p in spool.quarantined()] == ["00000000000000000000-ticket-broken.json"]
    with unit_of_work(ivr_store.sessions) as session:
        ticket = ticket_for_call(session, "1700000020.1")
        assert ticket is not None and ticket.urgency.value == "emergency"
        assert ticket.transcript_status is not None and ticket.transcript_status.value == "pending"
    assert spool.replay(ivr_store.apply) == (0, 0)


def test_ticket_commands_list_and_show(ivr_store: IvrStore) -> None:
    request = write_wav(
        day_dir(ivr_store.config) / "1700000030.1_12345001_13700000030-request.wav", 2
    )
    with unit_of_work(ivr_store.sessions) as session:
        number = ivr_store.apply_ticket(
            session,
            TicketRequest(
                "1700000030.1", "13700000030", "12345001", str(request), RequestType.COMPLAINT
            ),
        )
    listed = cli(ivr_store.config, "tickets", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows[0]["number"] == number and rows[0]["category"] == "营商环境"
    narrow = cli(ivr_store.config, "tickets", "list", columns=80)
    assert narrow.returncode == 0, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    row = next(line for line in narrow.stdout.splitlines() if number in line)
    assert "13700000030" in row  # the ticket number and the caller are never cut
    shown = cli(ivr_store.config, "tickets", "show", number)
    assert shown.returncode == 0
    assert "13700000030" in shown.stdout and "accepted" in shown.stdout
    assert str(request) in shown.stdout and "1700000030.1" in shown.stdout
    missing = cli(ivr_store.config, "tickets", "show", "999")
    assert missing.returncode == 2 and "no ticket numbered 999" in missing.stderr


def test_transcribe_without_a_model_reports_and_skips(ivr_store: IvrStore) -> None:
    request = write_wav(day_dir(ivr_store.config) / "1700000040.1_12345_1-request.wav", 2)
    with unit_of_work(ivr_store.sessions) as session:
        number = ivr_store.apply_ticket(
            session, TicketRequest("1700000040.1", "1", "12345", str(request))
        )
    done = cli(ivr_store.config, "transcribe")
    assert done.returncode == 0
    assert (
        "no speech.model_path configured" in done.stdout and "1 request recordings" in done.stdout
    )
    with unit_of_work(ivr_store.sessions) as session:
        ticket = ticket_by_number(session, number)
        assert ticket is not None and ticket.transcript is None
        assert ticket.transcript_status is not None and ticket.transcript_status.value == "pending"


def test_bad_model_path_is_one_clear_error(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, speech={"model_path": str(tmp_path)}))
    upgrade(config.database_url)
    done = cli(config, "transcribe")
    assert done.returncode == 2
    assert f"speech.model_path: {tmp_path} is not a vosk model folder" in done.stderr


def test_serve_refuses_a_database_behind_the_code(tmp_path: Path) -> None:
    from db.migrate import upgrade as migrate

    config = load_config(write_config(tmp_path))
    migrate(config.database_url, "0001")
    done = cli(config, "serve")
    assert done.returncode == 2
    assert "is at revision 0001" in done.stderr and "run `hotline db upgrade`" in done.stderr
