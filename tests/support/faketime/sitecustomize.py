"""Loaded (through PYTHONPATH) only by the test run under Debian's `faketime`.

libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC passes a negative time to
the kernel for Python 3.11's `time.sleep` (clock_nanosleep with TIMER_ABSTIME on
CLOCK_MONOTONIC: EINVAL, libfaketime issue 426), and without it every timed
thread wait hangs (sem_clockwait is not intercepted, issue 390). So the wall
clock moves and the monotonic clock stays real, and `time.sleep` waits with a
relative timeout the library leaves alone.
"""

import os
import select
import time

if os.environ.get("FAKETIME"):
    _monotonic = time.monotonic

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = _monotonic() + seconds
        while (left := deadline - _monotonic()) > 0:
            select.select([], [], [], left)

    time.sleep = _sleep
