"""A durable spool for what could not reach the database in time.

When the database is locked or unreachable past the retry budget, a call flow
writes its intent (call started, ticket wanted, survey answer, attempt ended)
as one JSON file per intent, fsynced, renamed into place and the folder fsynced,
and the caller is still served. The spool is replayed on start and later;
every intent is idempotent, so replaying twice changes nothing.

Replay stops at the first entry that fails because the database is still away
(it is retried later, in order) but never at an entry that cannot be applied
at all: that one is moved to `quarantine/` with its reason, and the entries
after it are still applied.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from db.runtime.outage import is_outage


def read_time(value: object) -> datetime:
    """A time of a spooled intent as JSON gave it back (ISO text), or as it was."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


log = logging.getLogger(__name__)


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def quarantine(self) -> Path:
        """Where entries that can never be applied are kept, each with a `.reason` file."""
        return self.folder / "quarantine"

    def put(self, kind: str, payload: dict[str, object]) -> Path:
        """Persist one intent durably (file and folder entry fsynced); returns its file."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # callers' numbers inside
        name = f"{time.time_ns():020d}-{kind}-{uuid.uuid4().hex[:8]}.json"
        partial = self.folder / f".{name}.part"
        with partial.open("w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            json.dump({"kind": kind, "payload": payload}, out, ensure_ascii=False, default=str)
            out.flush()
            os.fsync(out.fileno())
        target = self.folder / name
        partial.rename(target)
        _fsync_dir(self.folder)  # the rename itself must survive a power cut
        return target

    def pending(self) -> list[Path]:
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.glob("*.json"))

    def quarantined(self) -> list[Path]:
        if not self.quarantine.exists():
            return []
        return sorted(self.quarantine.glob("*.json"))

    def replay(self, apply: Callable[[str, dict[str, object]], None]) -> tuple[int, int]:
        """Apply every intent in order; an applied one is removed. Returns (applied, left).

        One replay at a time per folder in this process; an entry another process
        applied meanwhile (its file gone) is skipped.
        """
        applied = 0
        with _lock_for(self.folder):
            for path in self.pending():
                try:
                    entry = json.loads(path.read_text(encoding="utf-8"))
                except FileNotFoundError:
                    continue  # replayed by another process meanwhile
                except ValueError as exc:
                    self._quarantine(path, exc)
                    continue
                try:
                    apply(entry["kind"], entry["payload"])
                except Exception as exc:
                    if is_outage(exc):
                        log.warning("spool replay stopped at %s: %s; will retry", path.name, exc)
                        break
                    self._quarantine(path, exc)
                    continue
                path.unlink(missing_ok=True)
                applied += 1
        return applied, len(self.pending())

    def _quarantine(self, path: Path, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        self.quarantine.mkdir(parents=True, exist_ok=True)
        target = self.quarantine / path.name
        target.with_suffix(".reason").write_text(reason + "\n", encoding="utf-8")
        try:
            path.rename(target)
        except FileNotFoundError:
            return  # another process dealt with it
        _fsync_dir(self.folder)
        log.error(
            "spool entry %s cannot be applied (%s); quarantined in %s", path.name, reason, target
        )


_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(folder: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(folder.resolve(), threading.Lock())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
