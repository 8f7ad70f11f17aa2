"""Wait for a quiet machine before a heavy benchmark (the machine is shared).

Other engineers' Asterisk test suites have timing-sensitive tests: a bench
above 50 concurrent calls, or a soak, first waits until the 1-minute load
average has stayed below a threshold for a while, and says so when it gave up
waiting and ran under load anyway.
"""

from __future__ import annotations

import time
from pathlib import Path


def load_1min() -> float:
    """The 1-minute load average from /proc/loadavg."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def wait_for_quiet(
    threshold: float = 1.0, hold: float = 30.0, timeout: float = 900.0, say=print
) -> bool:
    """Block until load < threshold for `hold` seconds; False (ran under load) after timeout."""
    start = time.monotonic()
    quiet_since: float | None = None
    said = 0.0
    while True:
        now = time.monotonic()
        load = load_1min()
        if load < threshold:
            quiet_since = quiet_since if quiet_since is not None else now
            if now - quiet_since >= hold:
                return True
        else:
            quiet_since = None
        if now - start >= timeout:
            say(f"machine not quiet after {timeout:.0f} s (load {load:.2f}): RUNNING UNDER LOAD")
            return False
        if now - said >= 30:
            say(f"waiting for a quiet machine: load {load:.2f} (< {threshold} for {hold:.0f} s)")
            said = now
        time.sleep(2)
