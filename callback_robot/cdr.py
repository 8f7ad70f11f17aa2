"""Asterisk's call records, read back to learn how an attempt ended while nobody watched.

The dialer tags every Originate with CDR(userfield)=attempt-<id>. cdr_csv writes
one line per call leg to Master.csv (loguniqueid and loguserfield on, see
asterisk/cdr.conf), with the disposition Asterisk saw: ANSWERED, NO ANSWER,
BUSY, FAILED or CONGESTION. Recovery uses it for attempts whose robot died
before the OriginateResponse arrived.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from core.vocabulary import AttemptOutcome

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
    found: dict[int, str] = {}
    try:
        handle = master_csv.open(newline="", encoding="utf-8", errors="replace")
    except OSError:
        return found
    with handle:
        for row in csv.reader(handle):
            if len(row) <= DISPOSITION_COL:
                continue
            match = TAG.match(row[-1].strip())
            if match is None:
                continue
            attempt = int(match.group(1))
            disposition = row[DISPOSITION_COL].strip().upper()
            if PRIORITY.get(disposition, -1) > PRIORITY.get(found.get(attempt, ""), -1):
                found[attempt] = disposition
    return found
