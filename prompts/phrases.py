"""Spoken phrases that are not in the catalog (a unit's name, a date), cached on disk.

Rendered on first use with the same engine as the catalog (pyttsx3 on
espeak-ng) in one dedicated thread, because the engine is not thread-safe and
must never block the event loop; the file name is a hash of language and
text, so each phrase is rendered once per machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.config import HotlineConfig
from prompts.build import Synthesizer, convert


class PhraseCache:
    def __init__(self, config: HotlineConfig) -> None:
        self.config = config
        self.folder = config.sounds_dir / "phrases"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._synth: Synthesizer | None = None

    def _render(self, text: str, lang: str, target: Path) -> None:
        if target.exists():
            return
        self._synth = self._synth or Synthesizer(self.config.prompts.words_per_minute)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.wav"
            self._synth.to_wav(text, self.config.prompts.voices.get(lang, lang), raw)
            convert(raw, target, self.config.prompts.sample_rate)

    async def path(self, text: str, lang: str) -> str:
        """The STREAM FILE path (no extension) of text spoken in lang, rendering it if new."""
        digest = hashlib.sha1(f"{lang}\0{text}".encode()).hexdigest()[:16]
        target = self.folder / lang / f"{digest}.wav"
        if not target.exists():
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._render, text, lang, target)
        return str(target.with_suffix(""))
