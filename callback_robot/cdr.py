"""Asterisk's call records, read back to learn how an attempt ended while nobody watched.

The dialer tags every Originate with CDR(userfield)=attempt-<id>. cdr_csv writes
one line per call leg to Master.csv (loguniqueid and loguserfield on, see
asterisk/cdr.conf), with the disposition Asterisk saw: ANSWERED, NO ANSWER,
BUSY, FAILED or CONGESTION. Recovery uses it for attempts whose robot died
before the OriginateResponse arrived. A running robot reads the file
incrementally (`CdrReader` remembers how far it got), so a recovery pass every
minute costs only the lines Asterisk wrote since the last one.

In a cluster each node's Master.csv is on that node's disk, and its node daemon
ships the lines into the store (`cdr_records`): recovery on a node reads them
there (`stored_dispositions`).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import AttemptOutcome
from db.models import CallbackAttempt, CdrRecord

TAG = re.compile(r"^attempt-(\d+)$")
DISPOSITION_COL = 14
PRIORITY = {"ANSWERED": 3, "BUSY": 2, "NO ANSWER": 1, "CONGESTION": 0, "FAILED": 0}
OUTCOMES = {
    "ANSWERED": AttemptOutcome.PARTIAL,  # answered, yet the survey did not record an end
    "NO ANSWER": AttemptOutcome.NO_ANSWER,
    "BUSY": AttemptOutcome.BUSY,
    "CONGESTION": AttemptOutcome.FAILED,
    "FAILED": AttemptOutcome.FAILED,
}


def dispositions(master_csv: Path) -> dict[int, str]:
    """Attempt id -> the most telling disposition among its call records."""
    return CdrReader(master_csv).dispositions()


def _merge(found: dict[int, str], rows: Iterable[list[str]]) -> None:
    for row in rows:
        if len(row) <= DISPOSITION_COL:
            continue
        _keep(found, row[-1], row[DISPOSITION_COL])


def _keep(found: dict[int, str], userfield: str, disposition: str) -> None:
    """Note a robot call record's disposition when it tells more than the one noted."""
    match = TAG.match(userfield.strip())
    if match is None:
        return
    attempt = int(match.group(1))
    disposition = disposition.strip().upper()
    if PRIORITY.get(disposition, -1) > PRIORITY.get(found.get(attempt, ""), -1):
        found[attempt] = disposition


def stored_dispositions(
    session: Session, node: str, attempts: Sequence[CallbackAttempt]
) -> dict[int, str]:
    """Attempt id -> disposition, from the call records a cluster node's daemon shipped.

    Only these attempts' records, written since the first of them started (the
    records' end-time index bounds the search, not every record the node ever wrote).
    """
    if not attempts:
        return {}
    tags = {f"attempt-{attempt.id}" for attempt in attempts}
    starts = [attempt.started_at for attempt in attempts if attempt.started_at is not None]
    query = select(CdrRecord.userfield, CdrRecord.disposition).where(
        CdrRecord.node == node, CdrRecord.userfield.in_(tags)
    )
    if len(starts) == len(attempts):
        query = query.where(CdrRecord.ended_at >= min(starts))
    found: dict[int, str] = {}
    for userfield, disposition in session.execute(query):
        _keep(found, userfield or "", disposition or "")
    return found


class CdrReader:
    """Master.csv read from where the last pass stopped (from the start again if rotated)."""

    def __init__(self, master_csv: Path) -> None:
        self.path = master_csv
        self.offset = 0
        self.found: dict[int, str] = {}

    def dispositions(self) -> dict[int, str]:
        """Attempt id -> disposition, for every robot call record Asterisk wrote so far."""
        try:
            with self.path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.offset:  # rotated or truncated: start over
                    self.offset, self.found = 0, {}
                handle.seek(self.offset)
                chunk = handle.read(size - self.offset)
        except OSError:
            return dict(self.found)
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
        self.offset += len(complete)
        text = complete.decode("utf-8", errors="replace")
        _merge(self.found, csv.reader(io.StringIO(text, newline="")))
        return dict(self.found)
