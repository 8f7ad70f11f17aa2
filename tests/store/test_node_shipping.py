"""A node's finished recordings reach the store, headers rebuilt, and the rows name their keys.

Each test lays out a cluster's node disk (`hotline cluster render`'s layout,
through the daemon's own `node_parts`) and runs passes with a fixed clock:
file times are set from it, never from today's date.
"""

from __future__ import annotations

import asyncio
import io
import os
import struct
import time
import wave
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig, load_config
from core.recording_keys import resolve
from core.vocabulary import TranscriptStatus
from db.calls import upsert_call_start
from db.jobs import locks_with_open_jobs
from db.models import Call, Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket
from hotline.jobs import jobs_enabled
from hotline.node_daemon import node_parts, serve_node, ship_once
from ivr import shipping, transcribe
from ivr.jobs import ticket_lock
from ivr.shipping import NodeDisk, ShipReport, ship_node
from tests.support.config import free_port, write_config
from tests.support.events import eventually

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC).timestamp()
DAY = "2026/12/05"
UID = "ast1-1796464800.7"
CALL_KEY = f"{DAY}/{UID}_12345_13800138000.wav"
REQUEST_KEY = f"{DAY}/{UID}_12345_13800138000-request.wav"


def cluster_config(folder: Path, **overrides: object) -> HotlineConfig:
    """A cluster config whose node ast1's AMI port nobody listens on."""
    node = {
        "name": "ast1",
        "address": "127.0.0.11",
        "ami_port": free_port(),
        "rtp_start": 10000,
        "rtp_end": 10999,
    }
    cluster = {"nodes": [node], "recordings_store": "var/store"}
    return load_config(write_config(folder, cluster=cluster, **overrides))


@pytest.fixture
def disk(tmp_path: Path) -> NodeDisk:
    return node_parts(cluster_config(tmp_path), "ast1").disk


def wav_as_asterisk_left_it(frames: int) -> bytes:
    """An 8 kHz mono recording whose header sizes are still 0 (never closed)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(i % 199 for i in range(frames * 2)))
    data = bytearray(out.getvalue())
    struct.pack_into("<I", data, 4, 0)
    struct.pack_into("<I", data, 40, 0)
    return bytes(data)


def put(disk: NodeDisk, key: str, data: bytes, age: float = 60.0) -> Path:
    """A recording on the node's disk, last written `age` seconds before NOW."""
    path = disk.recordings_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (NOW - age, NOW - age))
    return path


def call_with_ticket(sessions: sessionmaker[Session], call: Path, request: Path) -> int:
    """The rows the FastAGI worker wrote: the call and its ticket name the node's paths."""
    with unit_of_work(sessions) as session:
        row = upsert_call_start(
            session,
            uniqueid=UID,
            caller_number="13800138000",
            did="12345",
            started_at=datetime.fromtimestamp(NOW - 120, UTC),
            recording_path=str(call),
        )
        ticket = create_ticket(
            session,
            caller_number="13800138000",
            local_day=date(2026, 12, 5),
            accepted_at=datetime.fromtimestamp(NOW - 60, UTC),
            recording_path=str(request),
            origin_uniqueid=UID,
            transcript_status=TranscriptStatus.PENDING,
        )
        row.ticket_id = ticket.id
        return ticket.id


def frames(path: Path) -> int:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes()


def heard(
    sessions: sessionmaker[Session], ticket: int, root: Path, monkeypatch: pytest.MonkeyPatch
) -> str | None:
    """What the transcriber hears of the ticket's recording (a model that counts frames)."""
    monkeypatch.setattr(transcribe, "recognize", lambda _model, path: f"{frames(path)} frames")
    transcribe.transcribe_ticket(sessions, object(), ticket, root=root)
    with unit_of_work(sessions) as session:
        row = session.get(Ticket, ticket)
        return row.transcript if row else None


def rows(sessions: sessionmaker[Session], ticket_id: int) -> tuple[str | None, str | None]:
    with unit_of_work(sessions) as session:
        ticket = session.get(Ticket, ticket_id)
        call = session.query(Call).filter_by(uniqueid=UID).one()
        return (ticket.recording_path if ticket else None), call.recording_path


def test_a_finished_call_is_shipped_repaired_and_its_rows_name_the_keys(
    store: sessionmaker[Session], disk: NodeDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = put(disk, CALL_KEY, wav_as_asterisk_left_it(16000))
    request = put(disk, REQUEST_KEY, wav_as_asterisk_left_it(8000))
    call.chmod(0o640)
    ticket = call_with_ticket(store, call, request)

    report = ship_node(store, disk, live=set(), now=NOW)

    assert sorted(report.shipped) == sorted([CALL_KEY, REQUEST_KEY])
    assert sorted(report.repaired) == sorted([CALL_KEY, REQUEST_KEY])
    assert report.failed == [] and report.tickets == [ticket]
    assert not call.exists() and not request.exists()
    assert frames(disk.store_dir / CALL_KEY) == 16000
    assert (disk.store_dir / CALL_KEY).stat().st_mode & 0o777 == 0o640  # the node file's mode
    assert frames(disk.store_dir / REQUEST_KEY) == 8000
    assert rows(store, ticket) == (REQUEST_KEY, CALL_KEY)
    # the transcriber finds the ticket's recording under the store's root, and hears it all
    assert heard(store, ticket, disk.store_dir, monkeypatch) == "8000 frames"
    assert list(disk.store_dir.rglob(".*")) == []  # no copy left half-way


def test_a_live_channel_or_a_growing_file_waits(
    store: sessionmaker[Session], disk: NodeDisk
) -> None:
    live = put(disk, REQUEST_KEY, wav_as_asterisk_left_it(800))  # settled, the call goes on
    other = f"{DAY}/ast1-1796464800.9_12345_13900139000.wav"
    growing = put(disk, other, wav_as_asterisk_left_it(800), age=2.0)

    report = ship_node(store, disk, live={UID}, now=NOW)

    assert report.shipped == [] and report.live == [REQUEST_KEY] and report.growing == [other]
    assert live.exists() and growing.exists()
    # the call ended and the file settled: both go
    later = ship_node(store, disk, live=set(), now=NOW + 30)
    assert sorted(later.shipped) == sorted([REQUEST_KEY, other])


def test_a_node_whose_ami_is_down_ships_what_has_settled(
    store: sessionmaker[Session], disk: NodeDisk
) -> None:
    put(disk, REQUEST_KEY, wav_as_asterisk_left_it(800))  # its channel would be live...
    put(disk, CALL_KEY, wav_as_asterisk_left_it(800), age=1.0)

    report = ship_node(store, disk, live=None, now=NOW)  # ...but the node is dead

    assert not report.ami_up
    assert report.shipped == [REQUEST_KEY] and report.growing == [CALL_KEY]


def test_a_copy_that_differs_leaves_the_nodes_file_and_says_why(
    store: sessionmaker[Session], disk: NodeDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = put(disk, CALL_KEY, wav_as_asterisk_left_it(4000))
    request = put(disk, REQUEST_KEY, wav_as_asterisk_left_it(800))
    ticket = call_with_ticket(store, call, request)
    original = call.read_bytes()
    real_write = shipping.write_copy

    def flipping_write(
        source: Path, plan: shipping.CopyPlan, part: Path, mode: int
    ) -> shipping.Digest:
        meant = real_write(source, plan, part, mode)
        with part.open("r+b") as out:  # the store's disk returns another byte
            out.seek(100)
            byte = out.read(1)
            out.seek(100)
            out.write(bytes([byte[0] ^ 0xFF]))
        return meant

    monkeypatch.setattr(shipping, "write_copy", flipping_write)
    report = ship_node(store, disk, live=set(), now=NOW)

    assert report.shipped == []
    assert {key for key, _ in report.failed} == {CALL_KEY, REQUEST_KEY}
    assert all("differs" in why and "kept" in why for _, why in report.failed)
    assert call.read_bytes() == original
    assert not (disk.store_dir / CALL_KEY).exists()
    assert list(disk.store_dir.rglob("*.part")) == []
    assert rows(store, ticket) == (str(request), str(call))

    monkeypatch.setattr(shipping, "write_copy", real_write)
    again = ship_node(store, disk, live=set(), now=NOW)
    assert sorted(again.shipped) == sorted([CALL_KEY, REQUEST_KEY])


def test_a_second_pass_is_a_no_op(store: sessionmaker[Session], disk: NodeDisk) -> None:
    put(disk, CALL_KEY, wav_as_asterisk_left_it(800))
    assert ship_node(store, disk, live=set(), now=NOW).shipped == [CALL_KEY]
    before = (disk.store_dir / CALL_KEY).read_bytes()

    again = ship_node(store, disk, live=set(), now=NOW)

    assert again == ShipReport("ast1", ami_up=True)
    assert (disk.store_dir / CALL_KEY).read_bytes() == before


def test_a_pass_killed_after_the_copy_is_finished_by_the_next(
    store: sessionmaker[Session], disk: NodeDisk
) -> None:
    call = put(disk, CALL_KEY, wav_as_asterisk_left_it(4000))
    request = put(disk, REQUEST_KEY, wav_as_asterisk_left_it(800))
    ticket = call_with_ticket(store, call, request)
    # the copy was renamed into the store, then the daemon died: rows and node file as before
    plan = shipping.copy_plan(call, call.stat().st_size)
    (disk.store_dir / CALL_KEY).parent.mkdir(parents=True)
    shipping.write_copy(call, plan, disk.store_dir / CALL_KEY)

    report = ship_node(store, disk, live=set(), now=NOW)

    assert sorted(report.shipped) == sorted([CALL_KEY, REQUEST_KEY]) and report.failed == []
    assert not call.exists()
    assert rows(store, ticket) == (REQUEST_KEY, CALL_KEY)
    assert frames(disk.store_dir / CALL_KEY) == 4000


def test_another_file_under_the_same_key_is_never_overwritten(
    store: sessionmaker[Session], disk: NodeDisk
) -> None:
    call = put(disk, CALL_KEY, wav_as_asterisk_left_it(4000))
    other = disk.store_dir / CALL_KEY
    other.parent.mkdir(parents=True)
    other.write_bytes(b"RIFF and something else")

    report = ship_node(store, disk, live=set(), now=NOW)

    assert report.shipped == [] and "different file" in report.failed[0][1]
    assert call.exists() and other.read_bytes() == b"RIFF and something else"


def test_a_row_written_after_the_file_was_shipped_still_finds_it(
    store: sessionmaker[Session], disk: NodeDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = put(disk, CALL_KEY, wav_as_asterisk_left_it(800))
    request = put(disk, REQUEST_KEY, wav_as_asterisk_left_it(800))
    ship_node(store, disk, live=set(), now=NOW)
    ticket = call_with_ticket(store, call, request)  # a spooled call end, replayed late

    assert rows(store, ticket) == (str(request), str(call))
    assert resolve(str(request), disk.store_dir) == disk.store_dir / REQUEST_KEY
    assert heard(store, ticket, disk.store_dir, monkeypatch) == "800 frames"


def test_a_file_that_is_not_a_wav_is_shipped_as_written(
    store: sessionmaker[Session], disk: NodeDisk
) -> None:
    odd = put(disk, CALL_KEY, b"not a wave at all")
    report = ship_node(store, disk, live=set(), now=NOW)
    assert report.shipped == [CALL_KEY] and report.repaired == []
    assert (disk.store_dir / CALL_KEY).read_bytes() == b"not a wave at all"
    assert not odd.exists()


async def test_one_pass_of_the_daemon_with_its_node_unreachable(
    store: sessionmaker[Session], disk: NodeDisk
) -> None:
    put(disk, CALL_KEY, wav_as_asterisk_left_it(800))
    report = await ship_once(store, disk, ami=None, now=NOW)
    assert report.shipped == [CALL_KEY] and not report.ami_up


async def test_the_daemon_ships_and_defers_the_transcription_until_it_is_stopped(
    migrated_url: str, tmp_path: Path
) -> None:
    config = cluster_config(tmp_path, database={"url": migrated_url})
    parts = node_parts(config, "ast1")
    engine = make_engine(migrated_url)
    sessions = make_session_factory(engine)
    call = put(parts.disk, CALL_KEY, wav_as_asterisk_left_it(800), age=0)
    request = put(parts.disk, REQUEST_KEY, wav_as_asterisk_left_it(800), age=0)
    for path in (call, request):  # settled by the clock the daemon reads (faketime's too)
        os.utime(path, (time.time() - 60, time.time() - 60))
    ticket = call_with_ticket(sessions, call, request)
    stop = asyncio.Event()
    daemon = asyncio.create_task(serve_node(config, parts, stop, pass_seconds=0.2))
    try:
        await eventually(
            lambda: not request.exists() and not call.exists(), timeout=60, what="both shipped"
        )
        assert rows(sessions, ticket) == (REQUEST_KEY, CALL_KEY)
        if jobs_enabled(config):  # PostgreSQL: the job queue gets the ticket's transcription

            def queued() -> bool:
                with unit_of_work(sessions) as session:
                    return bool(locks_with_open_jobs(session, [ticket_lock(ticket)]))

            await eventually(queued, timeout=60, what="the transcription job")
    finally:
        stop.set()
        await asyncio.wait_for(daemon, 60)
        engine.dispose()
    assert frames(parts.disk.store_dir / REQUEST_KEY) == 800


def test_the_log_never_shows_a_callers_whole_number(
    store: sessionmaker[Session], disk: NodeDisk, caplog: pytest.LogCaptureFixture
) -> None:
    put(disk, CALL_KEY, wav_as_asterisk_left_it(800))
    put(disk, REQUEST_KEY, b"RIFF", age=60)
    (disk.store_dir / REQUEST_KEY).parent.mkdir(parents=True)
    (disk.store_dir / REQUEST_KEY).write_bytes(b"something else")  # a failure, logged too
    with caplog.at_level("INFO", logger="ivr.shipping"):
        report = ship_node(store, disk, live=set(), now=NOW)
    assert report.shipped == [CALL_KEY] and len(report.failed) == 1
    assert "13800138000" not in caplog.text
    assert "138****8000" in caplog.text
