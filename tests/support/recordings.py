"""Recording files as Asterisk would leave them, for the reconciler and spool tests."""

from __future__ import annotations

import os
import time
import wave
from datetime import datetime
from pathlib import Path

from core.config import HotlineConfig
from ivr import recordings


def write_wav(path: Path, seconds: float) -> Path:
    """An 8 kHz mono WAV of `seconds` of faint noise at path (folders made), written now.

    Its times are set from the clock the code reads (the kernel stamps files with
    the real one, which a frozen or shifted clock in a test does not move).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x10\x00" * int(8000 * seconds))
    now = time.time()
    os.utime(path, (now, now))
    return path


def day_dir(config: HotlineConfig) -> Path:
    """Today's recordings folder (the reconciler looks at today's and yesterday's only)."""
    return recordings.day_folder(config.recordings_dir, datetime.now(config.tz).date())
