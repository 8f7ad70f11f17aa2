"""Retention: personal data older than the configured days is deleted, on the record.

Recordings (the IVR's and the surveys', in their dated folders), transcripts,
Asterisk's CDRs and its rotated logs each have their own limit
(`privacy.retention_days`). The CDR limit holds for the store's copy too: a
cluster's node daemons ship every node's Master.csv into `cdr_records`, and
those rows go with the lines (in a cluster one job worker runs the pass, once
per tick for all nodes: hotline.jobs). A recording that an open ticket still needs is
kept whatever its age. Every deletion is written to `retention_deletions`,
and calls and tickets stop naming a deleted recording (so the orphan checker
does not report it as missing).
"""

from __future__ import annotations

import csv
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.phone_numbers import mask_in_text
from core.recording_keys import recordings_root
from db.cdr import delete_cdr_records_ended_before
from db.session import unit_of_work
from privacy.store import (
    expire_transcripts,
    forget_recording,
    record_deletion,
    recordings_of_open_tickets,
)

log = logging.getLogger(__name__)
CDR_END_COLUMN = 11  # cdr_csv: ..., start, answer, end, ... (0-based)


@dataclass
class RetentionReport:
    recordings_deleted: list[str] = field(default_factory=list)
    recordings_kept_for_open_tickets: list[str] = field(default_factory=list)
    transcripts_cleared: list[str] = field(default_factory=list)
    cdr_rows_deleted: int = 0
    cdr_records_deleted: int = 0  # the store's copy of the nodes' CDRs (a cluster)
    logs_deleted: list[str] = field(default_factory=list)


def _dated_folders(root: Path, before: date) -> list[Path]:
    """root/YYYY/MM/DD folders (the IVR's and, under survey/, the robot's) older than before."""
    found = []
    for base in (root, root / "survey"):
        for day in base.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]"):
            try:
                when = date(int(day.parent.parent.name), int(day.parent.name), int(day.name))
            except ValueError:
                continue
            if when < before:
                found.append(day)
    return sorted(found)


def expire_recordings(
    sessions: sessionmaker[Session], root: Path, before: date, report: RetentionReport
) -> None:
    """Delete recordings in dated folders older than before, except open tickets' ones.

    A row names a file by its absolute path (one box) or by its key in a
    cluster's store (core.recording_keys): both names are looked for.
    """
    note = f"recording deleted by retention on {date.today()} (older than {before})"
    for folder in _dated_folders(root, before):
        files = sorted(folder.glob("*.wav"))
        names = {p: _names(p, root) for p in files}
        with unit_of_work(sessions) as session:
            keep = recordings_of_open_tickets(session, [n for ns in names.values() for n in ns])
            for path, (absolute, key) in names.items():
                if keep & {absolute, key}:
                    report.recordings_kept_for_open_tickets.append(absolute)
                    continue
                path.unlink(missing_ok=True)
                forget_recording(session, absolute, note, key=key)
                report.recordings_deleted.append(absolute)
        if not any(folder.iterdir()):
            folder.rmdir()


def _names(path: Path, root: Path) -> tuple[str, str]:
    """The names a row may give a recording: its absolute path and its store key."""
    return str(path), path.relative_to(root).as_posix()


def expire_cdrs(sessions: sessionmaker[Session], master: Path, before: datetime) -> int:
    """Rows of Asterisk's CDR CSV that ended before the cutoff are removed; how many.

    The file is rewritten beside itself and renamed into place; if Asterisk
    appended meanwhile (cdr_csv opens the file per record), the pass is retried.
    """
    for _ in range(3):
        try:
            stat = master.stat()
            rows = list(csv.reader(master.open(newline="", encoding="utf-8", errors="replace")))
        except FileNotFoundError:
            return 0
        keep = [r for r in rows if not _ended_before(r, before)]
        removed = len(rows) - len(keep)
        if not removed:
            return 0
        partial = master.with_name(master.name + ".retention")
        with partial.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out, quoting=csv.QUOTE_ALL).writerows(keep)
        os.chown(partial, stat.st_uid, stat.st_gid)
        partial.chmod(stat.st_mode & 0o777)
        if master.stat().st_size != stat.st_size:
            partial.unlink()
            continue  # Asterisk wrote a record meanwhile: read again
        partial.replace(master)
        with unit_of_work(sessions) as session:
            record_deletion(session, "cdr", str(master), f"{removed} rows ended before {before}")
        return removed
    return 0


def expire_cdr_records(sessions: sessionmaker[Session], before: datetime) -> int:
    """The store's call records (every node's Master.csv lines) that ended before the cutoff
    are deleted, on the record; how many."""
    with unit_of_work(sessions) as session:
        removed = delete_cdr_records_ended_before(session, before)
        if removed:
            note = f"{removed} rows ended before {before}"
            record_deletion(session, "cdr", "cdr_records", note)
    return removed


def _ended_before(row: list[str], before: datetime) -> bool:
    try:
        end = datetime.strptime(row[CDR_END_COLUMN], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return False
    return end < before


def expire_logs(sessions: sessionmaker[Session], folder: Path, before: float) -> list[str]:
    """Asterisk's rotated logs (messages.log.1 …) last written before the cutoff."""
    deleted = []
    for path in sorted(folder.glob("*.log.*")):
        if path.stat().st_mtime < before:
            path.unlink(missing_ok=True)
            deleted.append(str(path))
    if deleted:
        with unit_of_work(sessions) as session:
            for path in deleted:
                record_deletion(session, "log", path, "rotated log past retention")
    return deleted


def run_retention(
    config: HotlineConfig, sessions: sessionmaker[Session], now: datetime | None = None
) -> RetentionReport:
    """One pass over every kind of personal data the hotline keeps."""
    now = now or datetime.now(UTC)
    days = config.privacy.retention_days
    report = RetentionReport()
    local_today = now.astimezone(config.tz).date()
    expire_recordings(
        sessions, recordings_root(config), local_today - timedelta(days=days.recordings), report
    )
    with unit_of_work(sessions) as session:
        report.transcripts_cleared = expire_transcripts(
            session,
            now - timedelta(days=days.transcripts),
            f"transcript cleared by retention ({days.transcripts} days)",
        )
    cdr_cutoff = now - timedelta(days=days.cdr)
    report.cdr_rows_deleted = expire_cdrs(sessions, config.cdr_csv, cdr_cutoff)
    report.cdr_records_deleted = expire_cdr_records(sessions, cdr_cutoff)
    report.logs_deleted = expire_logs(
        sessions, config.state_dir / "asterisk" / "log", time.time() - days.logs * 86400
    )
    if (
        report.recordings_deleted
        or report.transcripts_cleared
        or report.cdr_rows_deleted
        or report.cdr_records_deleted
    ):
        log.info(
            "retention: %d recordings deleted (%d kept for open tickets), %d transcripts "
            "cleared, %d CDR rows, %d stored call records and %d logs deleted",
            len(report.recordings_deleted),
            len(report.recordings_kept_for_open_tickets),
            len(report.transcripts_cleared),
            report.cdr_rows_deleted,
            report.cdr_records_deleted,
            len(report.logs_deleted),
        )
    for path in report.recordings_kept_for_open_tickets[:5]:
        log.info("retention: kept %s for its open ticket", mask_in_text(path))
    return report
