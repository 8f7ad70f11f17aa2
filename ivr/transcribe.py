"""Transcribe citizens' request recordings into their tickets with vosk.

A background worker in `hotline serve` (and `hotline transcribe` on demand).
Without a configured model it reports how many recordings are waiting and
does nothing else: they are transcribed once a model is configured.
"""

from __future__ import annotations

import logging
import wave
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.phone_numbers import mask_in_text
from core.vocabulary import TranscriptStatus
from db.session import unit_of_work
from db.tickets import count_needing_transcript, set_transcript, tickets_needing_transcript
from speech.recognition import SpeechModel, recognize

log = logging.getLogger(__name__)


@dataclass
class TranscribeReport:
    done: int = 0
    failed: int = 0
    waiting: int = 0
    model: str | None = None


class Transcriber:
    def __init__(
        self, config: HotlineConfig, sessions: sessionmaker[Session], model: SpeechModel
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.model = model

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
                log.error(
                    "ticket %s: cannot transcribe %s: %s",
                    number,
                    mask_in_text(str(path)),
                    mask_in_text(str(exc)),
                )
                text, status = None, TranscriptStatus.FAILED
                report.failed += 1
            with unit_of_work(self.sessions) as session:
                set_transcript(session, ticket_id, text, status)
        with unit_of_work(self.sessions) as session:
            report.waiting = count_needing_transcript(session)
        return report

    def drain(self, limit: int = 20) -> TranscribeReport:
        """Pass after pass while recordings wait and passes get through them.

        `hotline serve` runs this every `speech.transcribe_interval_seconds`:
        a single pass of `limit` per interval capped transcription at 20
        recordings per 15 s (1.3 a second) whatever the cores, so a peak's
        backlog could only grow. Passes of `limit` keep each transaction short.
        """
        total = TranscribeReport()
        while True:
            report = self.run_once(limit)
            total.done += report.done
            total.failed += report.failed
            total.waiting = report.waiting
            total.model = report.model
            if not report.waiting or not (report.done or report.failed):
                return total
