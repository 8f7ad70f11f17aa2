"""Fixtures of the store tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config
from db.session import make_engine, make_session_factory
from hotline.app import prepare_store
from ivr.store import IvrStore
from tests.support.config import write_config


@pytest.fixture
def ivr_store(tmp_path: Path, database_url: str) -> IvrStore:
    """The IVR's store on each database (SQLite, PostgreSQL), with files in tmp_path."""
    config = load_config(
        write_config(tmp_path, database={"url": database_url}, ivr={"reconcile_settle_seconds": 0})
    )
    prepare_store(config)
    sessions = make_session_factory(make_engine(config.database_url))
    return IvrStore(config, sessions)
