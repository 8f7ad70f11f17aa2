"""The rows the demo city's simulation produces, before they are written.

Rows are plain dicts for `db.bulk` and reference each other by ids handed
out in order from the store's next free ones, so a chunk of days can be
built in memory and written in one go; times are stored as aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from core.vocabulary import EventKind
from db import bulk

SOURCE = "demo"  # the tickets' source, the robot's claim and the valid callbacks' source

# (local time, kind, department id, actor, note): a ticket event before it becomes a row
Event = tuple[datetime, EventKind, int | None, str, str | None]


@dataclass
class Ids:
    """The next free id per table, handed out in order (rows reference each other by these)."""

    next: dict[str, int]

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


@dataclass
class Chunk:
    """The rows of a run of days, written together."""

    tickets: list[bulk.Row] = field(default_factory=list)
    events: list[bulk.Row] = field(default_factory=list)
    attempts: list[bulk.Row] = field(default_factory=list)
    answers: list[bulk.Row] = field(default_factory=list)
    valid: list[bulk.Row] = field(default_factory=list)
    sequences: list[bulk.Row] = field(default_factory=list)


def utc(local: datetime, tz: ZoneInfo) -> datetime:
    """The stored form: aware UTC, whole seconds (as a person would read it off a screen)."""
    return local.replace(microsecond=0, tzinfo=tz).astimezone(UTC)
