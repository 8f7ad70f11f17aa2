"""Waveform peaks of a recording: computed once on the server, cached beside the other caches.

The cache key is the file's path, size and modification time, so a rewritten
file gets new peaks. The peaks draw as a small inline SVG: no JavaScript.
"""

from __future__ import annotations

import hashlib
import json
import wave
from array import array
from pathlib import Path

BUCKETS = 240


def compute_peaks(path: Path, buckets: int = BUCKETS) -> list[float]:
    """Max absolute amplitude (0..1) per bucket of a 16-bit PCM WAV file (first channel)."""
    with wave.open(str(path), "rb") as audio:
        if audio.getsampwidth() != 2:
            return []
        channels = audio.getnchannels()
        samples = array("h")
        samples.frombytes(audio.readframes(audio.getnframes()))
    if channels > 1:
        samples = samples[::channels]
    if not samples:
        return []
    size = max(1, len(samples) // buckets)
    peaks = []
    for start in range(0, len(samples), size):
        chunk = samples[start : start + size]
        peaks.append(max(max(chunk), -min(chunk)) / 32768)
    return peaks[:buckets]


def cached_peaks(path: Path, cache_dir: Path) -> list[float]:
    """Peaks of path, from the cache when it has them for this version of the file."""
    stat = path.stat()
    key = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    cached = cache_dir / "peaks" / f"{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    peaks = compute_peaks(path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    temporary = cached.with_suffix(".tmp")
    temporary.write_text(json.dumps([round(p, 4) for p in peaks]))
    temporary.replace(cached)
    return peaks


def peaks_svg(peaks: list[float], width: int = 640, height: int = 60) -> str:
    """The peaks as mirrored bars in an SVG."""
    if not peaks:
        return ""
    step = width / len(peaks)
    middle = height / 2
    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{middle - p * middle:.1f}" '
        f'width="{max(step - 0.5, 0.5):.1f}" '
        f'height="{max(p * height, 0.5):.1f}"/>'
        for i, p in enumerate(peaks)
    )
    return (
        f'<svg class="wave" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="waveform"><g fill="#b71c1c">{bars}</g></svg>'
    )
