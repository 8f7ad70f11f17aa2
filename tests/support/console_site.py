"""The console city behind a config of its own (issue 19's console tests): a migrated
SQLite store in tmp_path, the city of `console_city` in it, web settings as given.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig, load_config
from db.migrate import upgrade
from db.models import AuditEntry
from db.session import make_engine, make_session_factory, unit_of_work
from tests.support.config import free_port, write_config
from tests.support.console_city import ConsoleCity, build_console_city


def console_site(
    tmp_path: Path, **web: object
) -> tuple[HotlineConfig, Path, ConsoleCity, sessionmaker[Session]]:
    """(config, config file, city, sessions on its store) with `web` settings applied."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    path = write_config(
        tmp_path / "cfg",
        database={"url": url},
        paths={
            "state_dir": str(tmp_path / "var"),
            "recordings_dir": str(tmp_path / "rec"),
            "cache_dir": str(tmp_path / "cache"),
        },
        asterisk={"ami": {"port": free_port(), "connect_timeout": 0.5}},  # no Asterisk here
        web={"port": free_port(), **web},
    )
    config = load_config(path)
    sessions = make_session_factory(make_engine(url))
    city = build_console_city(sessions, config)
    return config, path, city, sessions


def audit_rows(sessions: sessionmaker[Session], action: str) -> list[AuditEntry]:
    with unit_of_work(sessions) as session:
        rows = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )
        session.expunge_all()
    return rows
