"""Hotline lines: the DIDs a site answers, mirrored into the store (tickets point at them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Line


@dataclass(frozen=True)
class LineSpec:
    """One line as the site defines it: its number, name, greeting and default category."""

    did: str
    name: str
    greeting: str
    default_category: str | None


def sync_lines(session: Session, lines: Iterable[LineSpec]) -> None:
    """Insert or update each line (lines are never deleted: tickets point at them)."""
    existing = {line.did: line for line in session.scalars(select(Line))}
    for spec in lines:
        line = existing.get(spec.did) or Line(did=spec.did)
        line.name, line.greeting, line.default_category = (
            spec.name,
            spec.greeting,
            spec.default_category,
        )
        session.add(line)
    session.flush()
