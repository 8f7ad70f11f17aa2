"""The call path first, batch work last: `hotline serve`'s threads at their nice values.

Each check runs in a child process, so the test process keeps its own priority.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.config import load_config
from hotline.app import prepare_store
from hotline.priority import AUTOGROUP_ENABLED
from tests.support.config import write_config

ROOT = Path(__file__).resolve().parents[2]

THREADS = """
import json, os, threading
from concurrent.futures import ThreadPoolExecutor
from hotline.priority import as_background, as_ordinary, favour_call_path, session_group_nice
os.setsid()  # a session (scheduling group) of its own, as a service has: not the test run's
if DROP:
    os.setgid(65534); os.setuid(65534)  # nobody: no CAP_SYS_NICE
refused = favour_call_path(-5)
nice = lambda: os.getpriority(os.PRIO_PROCESS, 0)
seen = {"main": nice(), "refused": refused, "group": session_group_nice()}
seen["inherited"] = ThreadPoolExecutor(1).submit(nice).result()
seen["batch"] = ThreadPoolExecutor(1, initializer=as_background).submit(nice).result()
def web():
    as_ordinary()
    seen["web"] = nice()
t = threading.Thread(target=web); t.start(); t.join()
print(json.dumps(seen))
"""


def autogroup() -> bool:
    return AUTOGROUP_ENABLED.exists() and AUTOGROUP_ENABLED.read_text().strip() == "1"


def run_child(code: str, drop_privileges: bool = False) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", f"DROP = {drop_privileges}\n" + code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_threads_started_after_the_call_path_is_favoured_inherit_it_batch_and_web_step_back() -> (
    None
):
    seen = run_child(THREADS)
    group = seen.pop("group")
    assert seen == {"main": -5, "refused": None, "inherited": -5, "batch": 10, "web": 0}
    # the session's scheduling group too: Asterisk's threads are in another group
    assert group == (-5 if autogroup() else None)


def test_without_the_right_to_raise_it_says_how_and_runs_on(tmp_path: Path) -> None:
    seen = run_child(THREADS, drop_privileges=True)
    assert seen["main"] == 0 and seen["inherited"] == 0 and seen["batch"] == 10
    assert seen["group"] == (0 if autogroup() else None)
    assert "CAP_SYS_NICE" in str(seen["refused"]) and "Nice=-5" in str(seen["refused"])


def nice_values(pid: int) -> list[int]:
    values = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        values.append(int(stat[stat.rindex(")") + 2 :].split()[16]))  # field 19: nice
    return values


def test_hotline_serve_runs_its_call_path_at_agi_nice_and_its_pages_and_batch_behind(
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path, agi={"nice": -7}))
    prepare_store(config)
    serve = subprocess.Popen(
        [sys.executable, "-m", "hotline.cli", "serve", "--config", str(config.source)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own scheduling group, as under `hotline up` or a service
    )
    try:
        deadline = time.monotonic() + 30
        values: list[int] = []
        while time.monotonic() < deadline:
            values = nice_values(serve.pid)
            if {-7, 0, 10} <= set(values):
                break
            time.sleep(0.2)
        assert {-7, 0, 10} <= set(values), values
        stat = Path(f"/proc/{serve.pid}/stat").read_text()
        assert int(stat[stat.rindex(")") + 2 :].split()[16]) == -7  # the main thread: the loop
        if autogroup():
            assert Path(f"/proc/{serve.pid}/autogroup").read_text().split()[-1] == "-7"
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
