"""The department tree stays a tree, and a page that runs too long is cut off (issue 19, item 3).

A unit whose parent is itself or one of its descendants is refused at the
import with the record named; a loop written straight into the table (past the
import) leaves the console answering: login and pages within bounded time, each
hung request cancelled after `web.request_seconds`, never holding one of the
`web.page_workers` threads for good.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from core.config import HotlineConfig, load_config
from dashboard.app import create_app
from db.departments import department_by_code
from db.models import Department
from db.session import make_engine, make_session_factory, unit_of_work
from tests.support.config import free_port, write_config
from tests.support.console_city import build_console_city, login
from tests.support.web_process import hotline_process

TOKEN = "platform-token-for-the-tree-tests"
# far past `web.request_seconds` (2 s here): a request still open then was never cut off
HUNG_CLIENT_SECONDS = 90


def _config(tmp_path: Path, url: str, **web: object) -> HotlineConfig:
    return load_config(
        write_config(
            tmp_path / "cfg",
            database={"url": url},
            paths={
                "state_dir": str(tmp_path / "var"),
                "recordings_dir": str(tmp_path / "rec"),
                "cache_dir": str(tmp_path / "cache"),
            },
            asterisk={"ami": {"port": free_port()}},  # no Asterisk: a closed port
            web=web,
        )
    )


@pytest.fixture
def city(tmp_path: Path, migrated_url: str) -> Iterator[HotlineConfig]:
    config = _config(tmp_path, migrated_url, request_seconds=2)
    engine = make_engine(migrated_url)
    build_console_city(make_session_factory(engine), config)
    engine.dispose()
    yield config


def _parents(config: HotlineConfig) -> dict[str, str | None]:
    engine = make_engine(config.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        units = session.scalars(select(Department)).all()
        found = {u.code: (u.parent.code if u.parent else None) for u in units}
    engine.dispose()
    return found


def test_the_import_refuses_a_unit_under_itself_or_under_its_own_descendant(
    city: HotlineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D1 (district) has S1 (street) below it: D1 as a village under S1 fits the levels."""
    monkeypatch.setenv("HOTLINE_IMPORT_TOKEN", TOKEN)
    before = _parents(city)
    body = {
        "departments": [
            {"code": "D1", "name": "unit D1", "level": 5, "parent_code": "S1"},
            {"code": "S2", "name": "unit S2", "level": 4, "parent_code": "S2"},
            {"code": "S9", "name": "unit S9", "level": 4, "parent_code": "D2"},
        ]
    }
    with TestClient(create_app(city), base_url="http://127.0.0.1") as client:
        answer = client.post("/api/import", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    errors = {e["where"]: e["reason"] for e in answer.json()["errors"]}
    assert set(errors) == {"departments[0]", "departments[1]"}, errors
    assert "D1" in errors["departments[0]"] and "S1" in errors["departments[0]"]
    assert "loop" in errors["departments[0]"]
    assert "S2" in errors["departments[1]"] and "itself" in errors["departments[1]"]
    after = _parents(city)
    assert after["D1"] == before["D1"] == "C" and after["S2"] == before["S2"] == "D1"
    assert after["S9"] == "D2"  # the good record landed


def _insert_cycle(config: HotlineConfig) -> None:
    """S1 under V1 while V1 is under S1: written straight into the table."""
    engine = make_engine(config.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        v1 = department_by_code(session, "V1")
        assert v1 is not None
        session.execute(update(Department).where(Department.code == "S1").values(parent_id=v1.id))
    engine.dispose()


def test_a_loop_in_the_table_leaves_login_and_pages_answering(
    tmp_path: Path, city: HotlineConfig
) -> None:
    """More requests on the looping units than there are page workers, then a fresh login."""
    if not city.database_url.startswith("sqlite"):
        pytest.skip("one real server is enough: the PostgreSQL limit has its own test")
    _insert_cycle(city)
    port = city.web.port
    base = f"http://127.0.0.1:{port}"
    with hotline_process("web", city.source, port):
        results: list[tuple[int | str, float]] = []

        def hang(path: str) -> None:
            started = time.monotonic()
            with httpx.Client(base_url=base, timeout=HUNG_CLIENT_SECONDS) as client:
                assert login(client, "boss").status_code == 303
                try:
                    status: int | str = client.get(path).status_code
                except httpx.TimeoutException:
                    status = "timeout"
            results.append((status, time.monotonic() - started))

        paths = ["/rates?unit=S1", "/rates?unit=V1", "/rates/trend/S1", "/rates?unit=S1"] * 2
        threads = [threading.Thread(target=hang, args=(p,), daemon=True) for p in paths]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        # a console whose workers the loop holds for good never answers these: the client
        # times out and the test fails (no wall-clock bound: CI's loaded faketime pass took
        # 20.5 s for these three requests, where an idle machine takes about one)
        with httpx.Client(base_url=base, timeout=HUNG_CLIENT_SECONDS) as fresh:
            assert login(fresh, "s1").status_code == 303
            assert fresh.get("/calls").status_code == 200
            assert fresh.get("/rates").status_code == 200
        for thread in threads:
            thread.join(2 * HUNG_CLIENT_SECONDS)
        assert len(results) == len(paths), results
        # each hung page was cut off (503) or answered: none timed out on the client
        assert all(status in (200, 503) for status, _ in results), results


def test_a_page_that_runs_too_long_is_cancelled_and_the_worker_freed(
    tmp_path: Path, migrated_url: str
) -> None:
    """A query past `web.request_seconds` is interrupted (SQLite's progress handler,
    PostgreSQL's statement_timeout): the page answers 503 and the next one is served."""
    config = _config(tmp_path, migrated_url, request_seconds=1, page_workers=1)
    app = create_app(config)
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000000) "
        "SELECT count(*) FROM n"
    )

    @app.get("/slow-page")
    def slow_page() -> dict[str, int]:  # a page whose query would run for minutes
        with unit_of_work(app.state.sessions) as session:
            return {"n": int(session.execute(text(endless)).scalar_one())}

    with TestClient(app, base_url="http://127.0.0.1") as client:
        done: list[int] = []

        def ask() -> None:
            done.append(client.get("/slow-page").status_code)

        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(HUNG_CLIENT_SECONDS)
        # uncut, the query runs for minutes: nothing in `done`, or a 200 at the very end
        assert done == [503], done
        # the only page worker is free again: the login form answers at once
        assert client.get("/login").status_code == 200
        # and the same store, outside a request, has no limit (the CLI, the robot)
        with unit_of_work(app.state.sessions) as session:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
