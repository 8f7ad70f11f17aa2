"""Whom the scheduler serves first on a full machine: the call path, Asterisk, then batch work.

Every call waits on the FastAGI server's one event loop and its store thread,
while Asterisk runs a thread per channel, and Linux shares the CPU per thread.
At 600 callers on two cores the loop used 2 % of a core yet spent 17 of 20
seconds runnable but waiting for a CPU (`/proc/<pid>/task/*/schedstat`, the
capacity bench): prompts started seconds late, callers' keys fell between
them, and the store's queue grew to most of a minute. The call path costs
about 15 ms of CPU per call, so preferring it takes almost nothing from
Asterisk and takes that wait away. Batch work (transcription, retention, the
disk check) goes the other way: it may wait; calls may not.

Linux keeps the nice value per thread, and a thread starts with its creator's:
`hotline serve` raises its main thread first, so the store thread and the
robot inherit it; the web app's thread and the batch threads lower themselves.

A thread's nice orders it only among the threads of its scheduling group.
With autogroup (Debian's default) each session is one group, and the CPU is
shared between groups first: Asterisk, in a session of its own (`hotline up`,
or a service), is one group, `hotline serve` another, whatever their threads'
nice. The bench showed it: at 500 callers the call path at nice -10 still
waited as long as at 0, its store work took 430 ms (p99) for 3 ms of CPU and
spooled 288 tickets; with its group at -10 as well, 16 ms and none. So the
session's group gets `agi.nice` too. Under systemd with the cpu controller a
unit is its own group and `CPUWeight=` is the same lever.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

BACKGROUND_NICE = 10  # batch work: behind Asterisk's channels
AUTOGROUP = Path("/proc/self/autogroup")
AUTOGROUP_ENABLED = Path("/proc/sys/kernel/sched_autogroup_enabled")


def session_group_nice() -> int | None:
    """The nice value of this session's scheduling group; None without autogroup."""
    try:
        if AUTOGROUP_ENABLED.read_text().strip() != "1":
            return None
        return int(AUTOGROUP.read_text().split("nice")[1])
    except (OSError, IndexError, ValueError):
        return None


def set_session_group(nice: int) -> None:
    """This session's scheduling group at `nice` (raises PermissionError like setpriority)."""
    if session_group_nice() is not None:
        AUTOGROUP.write_text(str(nice))


def favour_call_path(nice: int) -> str | None:
    """This thread (and those it starts later) and its session's group at `nice`; or why not."""
    if nice >= os.getpriority(os.PRIO_PROCESS, 0):
        with contextlib.suppress(OSError):  # a higher nice value is always allowed
            os.setpriority(os.PRIO_PROCESS, 0, nice)
            set_session_group(nice)
        return None
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)  # Linux: the calling thread
        set_session_group(nice)
    except PermissionError:
        return (
            f"agi.nice {nice} not applied: raising a priority needs root or CAP_SYS_NICE "
            f"(systemd: Nice={nice}, or AmbientCapabilities=CAP_SYS_NICE, and CPUWeight= above "
            "Asterisk's); calls wait behind Asterisk's channel threads when the machine is full"
        )
    return None


def as_ordinary() -> None:
    """This thread back at nice 0 (the web app: pages are not the call path)."""
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, 0) < 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)


def as_background() -> None:
    """This thread behind Asterisk (an initializer for batch threads)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, max(BACKGROUND_NICE, os.getpriority(os.PRIO_PROCESS, 0)))
