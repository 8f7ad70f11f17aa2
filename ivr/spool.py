"""A durable spool for what could not reach the database in time.

When the database is locked or unreachable past the retry budget, the IVR
writes its intent (call started, ticket wanted, call ended) as one JSON file
per intent, fsynced and renamed into place, and the caller is still served.
The spool is replayed on start and by the reconciler; every intent is
idempotent (keyed by the call's Uniqueid), so replaying twice changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, kind: str, payload: dict[str, object]) -> Path:
        """Persist one intent durably; returns its file."""
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
        return target

    def pending(self) -> list[Path]:
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.glob("*.json"))

    def replay(self, apply: Callable[[str, dict[str, object]], None]) -> tuple[int, int]:
        """Apply every intent in order; an applied one is removed. Returns (applied, left)."""
        applied = 0
        pending = self.pending()
        for path in pending:
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                apply(entry["kind"], entry["payload"])
            except (ValueError, KeyError) as exc:
                bad = path.with_suffix(".bad")
                path.rename(bad)
                log.error("spool entry %s is unreadable (%s); kept as %s", path.name, exc, bad)
                continue
            except Exception as exc:
                log.warning("spool replay stopped at %s: %s; will retry", path.name, exc)
                break
            path.unlink()
            applied += 1
        return applied, len(self.pending())
