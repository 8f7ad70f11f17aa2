"""Speech recognition with vosk: load a model once, hear a WAV file (optionally under a grammar).

The IVR's transcriber and the survey's spoken answers share this module and one
loaded model. vosk is imported lazily: it is a heavy optional dependency, and
a hotline without `speech.model_path` never loads it.
"""

from __future__ import annotations

import json
import threading
import wave
from pathlib import Path


class SpeechModelError(Exception):
    """The configured model folder is not a vosk model."""


def recognize(model: object, path: Path, grammar: list[str] | None = None) -> str:
    """The text vosk hears in a mono 16-bit WAV file (optionally limited to a grammar)."""
    from vosk import KaldiRecognizer  # heavy optional dependency: only when speech is on

    with wave.open(str(path)) as audio:
        if audio.getnchannels() != 1 or audio.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit audio")
        args = [json.dumps(grammar, ensure_ascii=False)] if grammar else []
        recognizer = KaldiRecognizer(model, audio.getframerate(), *args)
        while chunk := audio.readframes(4000):
            recognizer.AcceptWaveform(chunk)
    return str(json.loads(recognizer.FinalResult()).get("text", "")).strip()


class SpeechModel:
    """The configured vosk model, loaded on first use and shared by every caller."""

    def __init__(self, path: Path | None, source: object = "config") -> None:
        self.path = path
        self.source = source
        self._model: object | None = None
        self._loading = threading.Lock()  # survey calls may ask for the model at once

    def __call__(self) -> object | None:
        """The loaded model, or None when no model is configured."""
        if self.path is None:
            return None
        with self._loading:
            if self._model is None:
                self._model = self._load(self.path)
            return self._model

    def _load(self, path: Path) -> object:
        if not (path / "am").is_dir() and not (path / "conf").is_dir():
            raise SpeechModelError(
                f"{self.source}: speech.model_path: {path} is not a vosk model folder"
            )
        from vosk import Model, SetLogLevel  # heavy optional dependency: only when speech is on

        SetLogLevel(-1)
        return Model(str(path))
