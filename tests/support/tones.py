"""Tones as voices, and how loud a tone is in a recording (both sides of a call heard)."""

from __future__ import annotations

import math
import sys
import wave
from array import array
from pathlib import Path


def tone_wav(path: Path, hz: int, rate: int = 48000, seconds: float = 10.0) -> Path:
    """A mono 16-bit sine at hz: the browser's fake microphone."""
    samples = array(
        "h",
        (
            int(0.4 * 32767 * math.sin(2 * math.pi * hz * n / rate))
            for n in range(int(rate * seconds))
        ),
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def loudness(path: Path, hz: int) -> tuple[float, float]:
    """(RMS of the sound in full-scale units, the share of it that is a tone at hz) of a WAV.

    The share is Goertzel's power at hz over each 20 ms block's power (1.0: a pure
    tone at hz), averaged over the blocks that carry sound: silence before the
    answer and a block's phase jumps do not count against it.
    """
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1
        samples = array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    size = rate // 50
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    total = shares = 0.0
    voiced = 0
    for start in range(0, len(samples) - size + 1, size):
        block = [s / 32768.0 for s in samples[start : start + size]]
        power = sum(x * x for x in block)
        total += power
        if power / size < 1e-5:  # quieter than -50 dBFS: silence
            continue
        s1 = s2 = 0.0
        for x in block:
            s1, s2 = x + coeff * s1 - s2, s1
        tone = s1 * s1 + s2 * s2 - coeff * s1 * s2
        shares += min(1.0, 2 * tone / (size * power))
        voiced += 1
    rms = math.sqrt(total / max(1, len(samples)))
    return rms, (shares / voiced if voiced else 0.0)
