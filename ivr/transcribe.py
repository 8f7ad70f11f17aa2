"""Transcribe citizens' request recordings into their tickets with vosk.

A background worker in `hotline serve` (and `hotline transcribe` on demand).
Without a configured model it reports how many recordings are waiting and
does nothing else: they are transcribed once a model is configured.
"""

from __future__ import annotations

import json
import logging
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db.models import TranscriptStatus
from db.session import unit_of_work
from db.tickets import count_needing_transcript, set_transcript, tickets_needing_transcript
from hotline.config import HotlineConfig

log = logging.getLogger(__name__)


class SpeechModelError(Exception):
    """The configured model folder is not a vosk model."""


@dataclass
class TranscribeReport:
    done: int = 0
    failed: int = 0
    waiting: int = 0
    model: str | None = None


def recognize(model: object, path: Path, grammar: list[str] | None = None) -> str:
    """The text vosk hears in a mono 16-bit WAV file (optionally limited to a grammar)."""
    from vosk import KaldiRecognizer

    with wave.open(str(path)) as audio:
        if audio.getnchannels() != 1 or audio.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit audio")
        args = [json.dumps(grammar, ensure_ascii=False)] if grammar else []
        recognizer = KaldiRecognizer(model, audio.getframerate(), *args)
        while chunk := audio.readframes(4000):
            recognizer.AcceptWaveform(chunk)
    return str(json.loads(recognizer.FinalResult()).get("text", "")).strip()


class Transcriber:
    def __init__(self, config: HotlineConfig, sessions: sessionmaker[Session]) -> None:
        self.config = config
        self.sessions = sessions
        self._model: object | None = None
        self._loading = threading.Lock()  # survey calls may ask for the model at once

    def model(self) -> object | None:
        path = self.config.speech_model
        if path is None:
            return None
        with self._loading:
            return self._load(path)

    def _load(self, path: Path) -> object:
        if self._model is None:
            if not (path / "am").is_dir() and not (path / "conf").is_dir():
                raise SpeechModelError(
                    f"{self.config.source}: speech.model_path: {path} is not a vosk model folder"
                )
            from vosk import Model, SetLogLevel

            SetLogLevel(-1)
            self._model = Model(str(path))
        return self._model

    def run_once(self, limit: int = 20) -> TranscribeReport:
        report = TranscribeReport()
        model = self.model()
        with unit_of_work(self.sessions) as session:
            if model is None:
                report.waiting = count_needing_transcript(session)
                if report.waiting:
                    log.info(
                        "no speech.model_path configured: %d request recordings wait "
                        "for transcription",
                        report.waiting,
                    )
                return report
            work = [
                (t.id, t.number, t.recording_path)
                for t in tickets_needing_transcript(session, limit)
            ]
        report.model = str(self.config.speech_model)
        for ticket_id, number, path in work:
            try:
                text = recognize(model, Path(str(path)))
                status = TranscriptStatus.DONE
                report.done += 1
            except (OSError, ValueError, EOFError, wave.Error) as exc:
                log.error("ticket %s: cannot transcribe %s: %s", number, path, exc)
                text, status = None, TranscriptStatus.FAILED
                report.failed += 1
            with unit_of_work(self.sessions) as session:
                set_transcript(session, ticket_id, text, status)
        with unit_of_work(self.sessions) as session:
            report.waiting = count_needing_transcript(session)
        return report
