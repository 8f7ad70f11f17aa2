"""Hotline lines: the DIDs from config.yaml mirrored into the store."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Line
from hotline.config import LineConfig


def sync_lines(session: Session, lines: list[LineConfig]) -> None:
    """Insert or update each configured line (lines are never deleted: tickets point at them)."""
    existing = {line.did: line for line in session.scalars(select(Line))}
    for cfg in lines:
        line = existing.get(cfg.did) or Line(did=cfg.did)
        line.name, line.greeting, line.default_category = (
            cfg.name,
            cfg.greeting,
            cfg.default_category,
        )
        session.add(line)
    session.flush()
