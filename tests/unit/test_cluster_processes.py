"""tools.cluster.processes: the record of what `cluster up` started, and who may be stopped.

Real processes (sleep, started here) stand in for the cluster's: `down` must
stop a recorded process that is still the one recorded, leave alone a pid
whose command line or start time no longer match, and empty the book so a
second `down` does nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.cluster.processes import (
    ProcessBook,
    ProcessRecord,
    cmdline,
    is_ours,
    left_behind,
    matches,
    record_for,
    start_ticks,
    stop_all,
)

SLEEPER = "import sys, time; time.sleep(float(sys.argv[1]))"


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes to stop; whatever a test leaves running is killed after it."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def sleeper(started: list[subprocess.Popen[bytes]], tag: str) -> subprocess.Popen[bytes]:
    """A sleeping process, returned once it runs its own command line.

    Between fork and exec a child still carries pytest's command line, so `is_ours`
    asked at once could say no (`cluster up` asks only later, at `down` or the next
    `up`; the start time it records is the same before and after exec).
    """
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, "300", tag])
    started.append(proc)
    deadline = time.monotonic() + 30
    while tag not in (cmdline(proc.pid) or []) and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc


def test_the_book_survives_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "processes.json"
    book = ProcessBook(path)
    entry = ProcessRecord("worker", "agi1", 4242, ("serve", "agi1"), 99, 1.5, "/var/log/agi1")
    book.record(entry)
    book.add_mounts([Path("/root/a"), Path("/root/a"), Path("/root/b")])
    again = ProcessBook.load(path)
    assert again.processes == [entry]
    assert again.mounts == ["/root/a", "/root/b"]
    assert ProcessBook.load(tmp_path / "none.json").processes == []


def test_recording_a_name_again_replaces_it(tmp_path: Path) -> None:
    book = ProcessBook(tmp_path / "processes.json")
    first = ProcessRecord("asterisk", "ast1", 1, ("a",), 1, 0.0, "log")
    book.record(first)
    book.record(ProcessRecord("kamailio", "front", 2, ("k",), 2, 0.0, "log"))
    book.record(first.__class__(**{**first.__dict__, "pid": 3}))
    assert [(p.key, p.pid) for p in book.processes] == [("kamailio:front", 2), ("asterisk:ast1", 3)]


def test_tell_tale_words() -> None:
    argv = ["/usr/sbin/kamailio", "-DD", "-f", "/state/etc/kamailio/kamailio.cfg"]
    assert matches(argv, ("/state/etc/kamailio/kamailio.cfg",))
    assert matches(argv, ("kamailio.cfg", "-DD"))  # part of a word counts
    assert not matches(argv, ("/other/kamailio.cfg",))


def test_a_live_process_is_ours_until_it_ends(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    proc = sleeper(sleepers, "ours")
    entry = record_for("robot", "robot1", proc.pid, (SLEEPER, "ours"), tmp_path / "log")
    assert entry.start_ticks == start_ticks(proc.pid)
    assert is_ours(entry)
    assert cmdline(proc.pid) is not None
    proc.kill()
    proc.wait()
    assert not is_ours(entry)


def test_a_pid_now_running_something_else_is_not_ours(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    proc = sleeper(sleepers, "stranger")
    entry = record_for("robot", "robot1", proc.pid, (SLEEPER, "stranger"), tmp_path / "log")
    other_words = entry.__class__(**{**entry.__dict__, "tell": ("hotline.cli", "serve")})
    reused = entry.__class__(**{**entry.__dict__, "start_ticks": entry.start_ticks - 1})
    assert not is_ours(other_words)
    assert not is_ours(reused)  # the same pid and words, started at another time


def test_down_stops_ours_last_first_and_leaves_a_stranger(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    book = ProcessBook(tmp_path / "processes.json")
    first, second, stranger = (sleeper(sleepers, t) for t in ("first", "second", "stranger"))
    for name, proc in (("first", first), ("second", second)):
        book.record(record_for("worker", name, proc.pid, (SLEEPER, name), tmp_path / "log"))
    # a record whose pid belongs to a process `up` did not start (its words differ)
    book.record(record_for("worker", "gone", stranger.pid, (SLEEPER, "nobody"), tmp_path / "x"))
    book.add_mounts([tmp_path / "mnt"])
    lines: list[str] = []
    unmounted: list[list[Path]] = []
    stopped = stop_all(book, unmounted.append, lines.append)
    assert [e.name for e in stopped] == ["second", "first"]
    assert first.wait(10) is not None and second.wait(10) is not None
    assert stranger.poll() is None  # left alone
    assert unmounted == [[tmp_path / "mnt"]]
    assert "worker gone was not running" in lines[0]
    again = ProcessBook.load(tmp_path / "processes.json")
    assert again.processes == [] and again.mounts == []
    assert stop_all(again, unmounted.append) == []  # a second down is a no-op
    assert len(unmounted) == 1


FORKER = (
    "import os, signal, sys, time\n"
    "for _ in range(2):\n"
    "    if os.fork() == 0:\n"
    "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "        time.sleep(300)\n"
    "        os._exit(0)\n"
    "time.sleep(300)\n"
)


def test_down_also_stops_what_a_dead_leader_left_in_its_session(tmp_path: Path) -> None:
    """Kamailio's workers outlive a killed main process and ignore SIGTERM: down ends them."""
    leader = subprocess.Popen([sys.executable, "-c", FORKER, "forker"], start_new_session=True)
    entry = record_for("kamailio", "front", leader.pid, ("forker",), tmp_path / "log")
    book = ProcessBook(tmp_path / "processes.json")
    book.record(entry)
    try:
        deadline = time.monotonic() + 10
        while len(left_behind(entry)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = left_behind(entry)
        assert len(children) == 2
        leader.kill()  # the main process dies first, as under a crash or SIGKILL
        leader.wait()
        assert not is_ours(entry) and left_behind(entry) == children
        stop_all(book, lambda _mounts: None)
        assert left_behind(entry) == []
        for pid in children:
            assert start_ticks(pid) is None  # gone (or a zombie reaped by init)
    finally:
        for pid in left_behind(entry):
            os.kill(pid, signal.SIGKILL)
