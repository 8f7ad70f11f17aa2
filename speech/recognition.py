"""Speech recognition with vosk: load a model once, hear a WAV file (optionally under a grammar).

The IVR's transcriber and the survey's spoken answers share this module and one
loaded model. vosk is imported lazily: it is a heavy optional dependency, and
a hotline without `speech.model_path` never loads it.
"""

from __future__ import annotations

import json
import tempfile
import threading
import wave
from collections.abc import Mapping
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


def decoder_overlay(model: Path, options: Mapping[str, str], folder: Path) -> Path:
    """The model in folder with its decoder options replaced, every other file linked.

    vosk reads a model's decoder options (beam, max-active) only from its
    conf/model.conf and has no call to set them, so a folder of links with
    its own model.conf is how a hotline picks speed over accuracy without
    copying a model of hundreds of MB. vosk reads everything while loading,
    so the folder can go once the model is loaded.
    """
    for entry in model.iterdir():
        if entry.name != "conf":
            (folder / entry.name).symlink_to(entry.resolve())
    conf = folder / "conf"
    conf.mkdir()
    for entry in (model / "conf").iterdir():
        if entry.name != "model.conf":
            (conf / entry.name).symlink_to(entry.resolve())
    lines = (model / "conf" / "model.conf").read_text().splitlines()
    kept = [line for line in lines if line.split("=", 1)[0].lstrip("-") not in options]
    given = [f"--{name}={value}" for name, value in options.items()]
    (conf / "model.conf").write_text("\n".join(kept + given) + "\n")
    return folder


class SpeechModel:
    """The configured vosk model, loaded on first use and shared by every caller.

    `decoder` replaces options of the model's own conf/model.conf (e.g.
    {"beam": "8.0", "max-active": "1500"}): fewer hypotheses kept per frame
    decode faster and hear a little less.
    """

    def __init__(
        self,
        path: Path | None,
        source: object = "config",
        decoder: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.source = source
        self.decoder = dict(decoder or {})
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
        if not self.decoder or not (path / "conf" / "model.conf").is_file():
            return Model(str(path))
        with tempfile.TemporaryDirectory(prefix="hotline-model-") as folder:
            return Model(str(decoder_overlay(path, self.decoder, Path(folder))))
