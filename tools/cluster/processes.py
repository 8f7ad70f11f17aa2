"""What `hotline cluster up` started: one record per process, in state_dir/cluster/processes.json.

`down` stops only what is recorded there, and only while the process is still
the one recorded: its pid, its start time since boot, and the tell-tale words
of its command line must all match (a pid the kernel has since given to
another program is left alone). The folders a node's Asterisk needed
bind-mounted into its root are recorded too, but only those this `up`
mounted: `down` unmounts them after the last process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "processes.json"


@dataclass(frozen=True)
class ProcessRecord:
    """One started process: enough to find it again, and to tell it from a stranger."""

    role: str  # postgres, kamailio, asterisk, haproxy, worker, robot, transcriber, node-daemon
    name: str  # ast1, agi1, robot1 ...: unique within its role
    pid: int
    tell: tuple[str, ...]  # words its /proc/<pid>/cmdline must hold (a config path, a name)
    start_ticks: int  # /proc/<pid>/stat field 22: a reused pid starts at another time
    started_at: float  # wall clock, for people
    log: str  # the file to read when it fails
    stop_signal: int = int(signal.SIGTERM)  # PostgreSQL: SIGINT, its fast shutdown

    @property
    def key(self) -> str:
        return f"{self.role}:{self.name}"


@dataclass
class ProcessBook:
    """The state file's content: the processes in start order and this up's mounts."""

    path: Path
    processes: list[ProcessRecord] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> ProcessBook:
        """The book at path (empty when there is none yet)."""
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        records = [
            ProcessRecord(**{**item, "tell": tuple(item["tell"])})
            for item in data.get("processes", [])
        ]
        return cls(path, records, list(data.get("mounts", [])))

    def save(self) -> None:
        """Write the book atomically: a crash mid-write never loses what runs."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "processes": [{**asdict(p), "tell": list(p.tell)} for p in self.processes],
            "mounts": self.mounts,
        }
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
        partial.replace(self.path)

    def find(self, role: str, name: str) -> ProcessRecord | None:
        return next((p for p in self.processes if p.role == role and p.name == name), None)

    def record(self, entry: ProcessRecord) -> None:
        """Add (or replace) a process, and save at once: a later failure still stops it."""
        self.processes = [p for p in self.processes if p.key != entry.key] + [entry]
        self.save()

    def forget(self, entry: ProcessRecord) -> None:
        self.processes = [p for p in self.processes if p.key != entry.key]
        self.save()

    def add_mounts(self, targets: list[Path]) -> None:
        self.mounts = list(dict.fromkeys([*self.mounts, *(str(t) for t in targets)]))
        self.save()


def cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None when there is none (or only a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:  # a zombie's cmdline is empty
        return None
    return [word.decode("utf-8", "replace") for word in raw.rstrip(b"\0").split(b"\0")]


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child that ended: reap it
        return None
    return int(fields[19])


def matches(argv: list[str], tell: tuple[str, ...]) -> bool:
    """Every tell-tale word is one of argv's words, or part of one (`-Dfoo`, `a=b`)."""
    return all(any(word == arg or word in arg for arg in argv) for word in tell)


def is_ours(entry: ProcessRecord) -> bool:
    """The recorded process still runs, and it is still the one we started."""
    argv = cmdline(entry.pid)
    if argv is None or not matches(argv, entry.tell):
        return False
    return start_ticks(entry.pid) == entry.start_ticks


def record_for(
    role: str,
    name: str,
    pid: int,
    tell: tuple[str, ...],
    log: Path,
    stop_signal: int = int(signal.SIGTERM),
) -> ProcessRecord:
    """The record of a process just started (its start time read from /proc now)."""
    ticks = start_ticks(pid)
    return ProcessRecord(role, name, pid, tell, ticks or 0, time.time(), str(log), stop_signal)


def wait_gone(entry: ProcessRecord, timeout: float) -> bool:
    """Wait until the process is gone (or is no longer ours); whether it went in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_ours(entry):
            return True
        time.sleep(0.1)
    return not is_ours(entry)


def left_behind(entry: ProcessRecord) -> list[int]:
    """Processes of the session the recorded one led, still running, with its command line.

    Every process is started in a session of its own (pid = session id = group id).
    Kamailio forks its workers into it; when its main process dies first (killed,
    or crashed) they live on under init, holding the front's ports, and ignore
    SIGTERM. Session and group equal to the recorded pid and the same tell-tale
    words: the session's own children, not a stranger that reuses the pid.
    """
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid, group, session = int(stat.parent.name), int(fields[2]), int(fields[3])
        if pid == entry.pid or group != entry.pid or session != entry.pid or fields[0] == "Z":
            continue
        argv = cmdline(pid)
        if argv is not None and matches(argv, entry.tell):
            found.append(pid)
    return found


def stop_left_behind(entry: ProcessRecord, grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL, what the recorded process's session left running; how many."""
    pids = left_behind(entry)
    found = len(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = left_behind(entry)
        if not pids:
            break
    return found


def stop(entry: ProcessRecord, grace: float = 15.0) -> bool:
    """Stop one recorded process if it is still ours: its stop signal, wait, then SIGKILL;
    then whatever its session left behind (Kamailio's workers).

    Returns whether a process was signalled (False: it was gone, or is a stranger now).
    """
    if not is_ours(entry):
        return stop_left_behind(entry) > 0
    with contextlib.suppress(ProcessLookupError):
        os.kill(entry.pid, entry.stop_signal)
    if not wait_gone(entry, grace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry.pid, signal.SIGKILL)
        wait_gone(entry, 5.0)
    stop_left_behind(entry)
    return True


def stop_all(
    book: ProcessBook,
    unmount: Callable[[list[Path]], None],
    progress: Callable[[str], None] = lambda _line: None,
) -> list[ProcessRecord]:
    """Stop every recorded process, last started first, then release the recorded mounts.

    The book is emptied as it goes, so a second `down` finds nothing to do.
    """
    stopped = []
    for entry in reversed(list(book.processes)):
        if stop(entry):
            progress(f"stopped {entry.role} {entry.name} (pid {entry.pid})")
            stopped.append(entry)
        else:
            progress(f"{entry.role} {entry.name} was not running (pid {entry.pid})")
        book.forget(entry)
    if book.mounts:
        unmount([Path(m) for m in reversed(book.mounts)])
        book.mounts = []
        book.save()
    return stopped
