"""Transcribe citizens' request recordings into their tickets with vosk.

A background worker in `hotline serve` (and `hotline transcribe` on demand).
Without a configured model it reports how many recordings are waiting and
does nothing else: they are transcribed once a model is configured.

`transcribe_ticket` is one ticket's transcription, the one step both ways of
running it take: the in-process drain below (one box, SQLite) and the job
queue's `transcribe` task (`ivr.jobs`, PostgreSQL with jobs on).
"""

from __future__ import annotations

import logging
import wave
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.phone_numbers import mask_in_text
from core.recording_keys import recordings_root, resolve
from core.vocabulary import TranscriptStatus
from db.models import Ticket
from db.session import unit_of_work
from db.tickets import count_needing_transcript, set_transcript, tickets_needing_transcript
from speech.recognition import SpeechModel, recognize

log = logging.getLogger(__name__)

# audio that will never be heard, however often it is read: the ticket's transcript FAILED
BAD_AUDIO: tuple[type[Exception], ...] = (ValueError, EOFError, wave.Error)


def transcribe_ticket(
    sessions: sessionmaker[Session],
    model: object,
    ticket_id: int,
    *,
    unreadable_is_final: bool = True,
    root: Path | None = None,
) -> TranscriptStatus | None:
    """Hear one ticket's request recording and store its transcript (DONE or FAILED).

    None when the ticket no longer waits for a transcript (another run wrote
    it, or it has no recording): a job run twice, after its worker died,
    writes the transcript once. Bad audio is FAILED at once. A recording that
    cannot be read (not yet in the store, a network filesystem away) is
    FAILED too unless `unreadable_is_final` is off: the job queue then lets
    the OSError through so the job is tried again later. The model is loaded
    by the caller, once per process. `root` is where store keys are
    (core.recording_keys): a cluster's tickets name shipped recordings by key.
    """
    with unit_of_work(sessions) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.transcript_status != TranscriptStatus.PENDING:
            return None
        number, stored = ticket.number, str(ticket.recording_path)
    path = resolve(stored, root) if root is not None else Path(stored)
    try:
        text: str | None = recognize(model, path)
        status = TranscriptStatus.DONE
    except OSError as exc:
        if not unreadable_is_final:
            raise
        text, status = None, _failed(number, path, exc)
    except BAD_AUDIO as exc:
        text, status = None, _failed(number, path, exc)
    with unit_of_work(sessions) as session:
        # locked, so two runs that heard the same recording at once write it once
        ticket = session.get(Ticket, ticket_id, with_for_update=True)
        if ticket is None or ticket.transcript_status != TranscriptStatus.PENDING:
            return None
        set_transcript(session, ticket_id, text, status)
    return status


def _failed(number: str, path: Path, exc: Exception) -> TranscriptStatus:
    log.error(
        "ticket %s: cannot transcribe %s: %s",
        number,
        mask_in_text(str(path)),
        mask_in_text(str(exc)),
    )
    return TranscriptStatus.FAILED


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
            work = [t.id for t in tickets_needing_transcript(session, limit)]
        report.model = str(self.config.speech_model)
        for ticket_id in work:
            status = transcribe_ticket(
                self.sessions, model, ticket_id, root=recordings_root(self.config)
            )
            report.done += status == TranscriptStatus.DONE
            report.failed += status == TranscriptStatus.FAILED
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
