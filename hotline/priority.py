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
"""

from __future__ import annotations

import contextlib
import os

BACKGROUND_NICE = 10  # batch work: behind Asterisk's channels


def favour_call_path(nice: int) -> str | None:
    """This thread (and those it starts later) at `nice`; why not, when it may not."""
    if nice >= os.getpriority(os.PRIO_PROCESS, 0):
        with contextlib.suppress(OSError):  # a higher nice value is always allowed
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        return None
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)  # Linux: the calling thread
    except PermissionError:
        return (
            f"agi.nice {nice} not applied: raising a priority needs root or CAP_SYS_NICE "
            f"(systemd: Nice={nice}, or AmbientCapabilities=CAP_SYS_NICE); calls wait "
            "behind Asterisk's channel threads when the machine is full"
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
