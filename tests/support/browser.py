"""Chromium for the browser tests, on the real clock even in CI's faketime pass.

Under libfaketime Chromium crawls: a page that loads in 5 s took 80 s, and a
login page timed out. The dates under test are the console's, which runs in
the test's own process on the faked clock, so the browser is started without
libfaketime (no LD_PRELOAD, no FAKETIME settings).
"""

from __future__ import annotations

import os

CHROMIUM = "/usr/bin/chromium"
REAL_CLOCK_ENV = {
    key: value
    for key, value in os.environ.items()
    if key != "LD_PRELOAD" and not key.startswith("FAKETIME")
}
