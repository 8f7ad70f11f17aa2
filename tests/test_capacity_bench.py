"""The capacity bench, small: 30 citizens at once through both forms, nothing lost.

The citizens are Local-channel legs: the SIPp form (`--citizens sipp`) carries
its keys and calls end to end but does not yet leave the request recording
(see the README's Benchmarks section), so it is not what this test runs.

Runs `python -m bench.ivr_capacity` as a user would (its own private Asterisk,
state folder and ports) and reads its output with the bench's own parser. It
asserts what the calls left behind, never how fast they were.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.ivr_capacity import format_table, headline, parse_table

pytestmark = pytest.mark.asterisk
ROOT = Path(__file__).resolve().parent.parent


def test_thirty_calls_through_both_forms_lose_nothing(tmp_path: Path) -> None:
    before = set(Path(tempfile_dir()).glob("hotline-bench-*"))
    done = subprocess.run(
        [sys.executable, "-m", "bench.ivr_capacity", "--levels", "30", "--citizens", "local",
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


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()
