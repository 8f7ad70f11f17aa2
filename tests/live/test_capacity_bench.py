"""The capacity bench, small: 30 citizens at once through both forms, nothing lost.

The citizens are SIPp phones (`--citizens sipp`, Debian's `sip-tester`): real
SIP over UDP on loopback with digest auth, PCMA RTP and RFC 4733 keys, one RTP
stream per citizen written by bench/sipp/media.py. A second run places the
same calls as Local-channel legs (`sim-citizen`), the bench's default and the
citizens of the README's figures.

Runs `python -m bench.ivr_capacity` as a user would (its own private Asterisk,
state folder and ports) and reads its output with the bench's own parser. It
asserts what the calls left behind, never how fast they were. The media track
is checked alone too: Asterisk ignores a key whose RTP timestamp goes back,
which is how the SIPp calls once lost their urgency key and their recording.
"""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from bench.ivr_capacity import format_table, headline, parse_table
from bench.sipp.media import EVENT_PT, PCMA, SSRC, citizen_packets, read_pcma, write_pcap

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("asterisk_install")  # the bench starts an Asterisk of its own
@pytest.mark.parametrize("citizens", ["sipp", "local"])
def test_thirty_calls_through_both_forms_lose_nothing(tmp_path: Path, citizens: str) -> None:
    before = set(Path(tempfile_dir()).glob("hotline-bench-*"))
    done = subprocess.run(
        [sys.executable, "-m", "bench.ivr_capacity", "--levels", "30", "--citizens", citizens,
         "--no-wait", "--ramp", "3", "--chart", str(tmp_path / "chart.svg")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = parse_table(done.stdout)
    assert {(r.form, r.n) for r in rows} == {("fastagi", 30), ("dialplan", 30)}, done.stdout
    assert all(r.completed == 30 and r.lost == 0 for r in rows), done.stdout
    fastagi = next(r for r in rows if r.form == "fastagi")
    assert fastagi.agi_per_call > 0 and fastagi.db_p99_ms > 0  # the server measured its calls
    assert headline(rows).clean_max == {"fastagi": 30, "dialplan": 30}
    assert format_table(rows) in done.stdout  # the parser reads back exactly what was printed
    assert (tmp_path / "chart.svg").read_text().startswith("<svg")
    # the bench removed its private state folder (database, recordings) on the way out
    assert set(Path(tempfile_dir()).glob("hotline-bench-*")) <= before


def test_the_sipp_citizen_is_one_stream_whose_clock_only_goes_forward(tmp_path: Path) -> None:
    voice = bytes(range(256)) * 20  # 5120 bytes of PCMA: 0.64 s
    packets = citizen_packets(voice)
    keys = [p.payload[0] for p in packets if p.payload_type == EVENT_PT and p.marker]
    assert keys == [1, 3, 2, 11]  # new request, complaint, daily life, # (RFC 4733 codes)
    ends = [p for p in packets if p.payload_type == EVENT_PT and p.payload[1] & 0x80]
    assert len(ends) == 3 * 4 and len({(p.seq, p.timestamp) for p in ends}) == 4
    assert sum(p.payload_type == PCMA for p in packets) == 5120 // 160
    distinct = [p for i, p in enumerate(packets) if i == 0 or p.seq != packets[i - 1].seq]
    assert all(b.seq == a.seq + 1 for a, b in pairwise(distinct))
    assert all(b.timestamp >= a.timestamp for a, b in pairwise(packets))
    assert all(b.at_ms >= a.at_ms for a, b in pairwise(packets))
    # each key starts after the last one ended, on the stream's clock (8 samples a ms)
    starts = [p for p in packets if p.payload_type == EVENT_PT and p.marker]
    assert all(b.timestamp > a.timestamp for a, b in pairwise(starts))
    assert all(p.timestamp - packets[0].timestamp == 8 * p.at_ms for p in starts)
    # the pcap SIPp replays: Ethernet/IPv4/UDP frames of one SSRC carrying that voice
    pcap = write_pcap(packets, tmp_path / "citizen.pcap")
    assert read_pcma(pcap) == voice
    assert pcap.read_bytes().count(SSRC.to_bytes(4, "big")) >= len(packets)


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()
