"""A real call's recording, shipped by the node daemon's pass once its channel is gone.

The session's Asterisk runs as node ast1; its recordings folder plays the
node's disk. While the citizen is on the line the pass leaves the recording
(AMI lists the channel); a snapshot of it taken mid-call has the sizes
Asterisk writes only on close still at 0, the state a crashed node leaves,
and is shipped with its header rebuilt. After the hang-up the recording
goes, the call row names its store key, and the node's call records are in
the store.
"""

from __future__ import annotations

import asyncio
import shutil
import wave
from pathlib import Path

from core.recording_keys import resolve
from db.cdr import cdr_records_of
from db.session import unit_of_work
from hotline.app import Hotline
from hotline.node_daemon import ship_once
from ivr.shipping import NodeDisk
from ivr.wav_header import HEAD_BYTES, read_header
from telephony.ami import AMIClient
from tests.support.calls import call_row, calls_ended, citizen_call
from tests.support.events import eventually

SETTLE = 1.0  # seconds without a write: a live MixMonitor file grows all the time
CUT_NAME = "ast1-1700000000.1_12345_13300133000.wav"  # a call of a node that died


def recording_of(hotline: Hotline, caller: str) -> Path | None:
    found = [p for p in hotline.config.recordings_dir.rglob(f"*_{caller}.wav")]
    return found[0] if found and found[0].stat().st_size > HEAD_BYTES else None


async def test_a_real_recording_waits_for_its_channel_then_goes_to_the_store(
    hotline: Hotline, ami: AMIClient, tmp_path: Path
) -> None:
    caller = "13300133011"
    disk = NodeDisk(
        node="ast1",
        recordings_dir=hotline.config.recordings_dir,
        master_csv=hotline.config.cdr_csv,
        store_dir=tmp_path / "store",
    )
    call = asyncio.create_task(citizen_call(ami, "12345", "w20|h", caller=caller, timeout=180))
    recording = await eventually(
        lambda: recording_of(hotline, caller), timeout=60, what="the call's recording"
    )
    await asyncio.sleep(SETTLE + 1)  # it has audio; the channel is still up
    cut = recording.with_name(CUT_NAME)
    shutil.copyfile(recording, cut)  # what a crash leaves: the header's sizes still 0
    assert read_header(cut.read_bytes()[:HEAD_BYTES]).data_size == 0
    await asyncio.sleep(SETTLE + 1)

    during = await ship_once(hotline.sessions, disk, ami, settle=SETTLE)

    assert during.ami_up
    key = recording.relative_to(disk.recordings_dir).as_posix()
    assert key in during.live, during
    assert recording.exists()
    cut_key = cut.relative_to(disk.recordings_dir).as_posix()
    assert during.shipped == [cut_key] and during.repaired == [cut_key]
    with wave.open(str(disk.store_dir / cut_key)) as shipped:
        assert shipped.getnframes() > 8000  # the audio a crash would have hidden

    result = await call
    await calls_ended(hotline, result.uniqueid, timeout=60)
    await asyncio.sleep(SETTLE + 1)
    after = await ship_once(hotline.sessions, disk, ami, settle=SETTLE)

    assert key in after.shipped, after
    assert key not in after.repaired  # Asterisk closed it: its header was right
    assert not recording.exists()
    row = call_row(hotline, result.uniqueid)
    assert row is not None and row.recording_path == key
    with wave.open(str(resolve(key, disk.store_dir))) as shipped:
        assert shipped.getnframes() > 8000 * 10  # the whole call, about 20 s
    with unit_of_work(hotline.sessions) as session:
        records = cdr_records_of(session, result.uniqueid)
    assert records and records[0].node == "ast1"
