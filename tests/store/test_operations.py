"""`hotline serve`'s operations side (issue 19, items 6 and 8).

- `/healthz` and `/metrics` are not on the console's port: they have a loopback
  port of their own (`health.host:health.port`); the health result's store checks
  are cached for `health.cache_seconds` (no write check queued per request) and
  no detail carries an error text (hosts, users) from the database driver.
- The console survives a restart: a port left in TIME_WAIT by the console's
  own last connections is listened on again (SO_REUSEADDR, as uvicorn binds);
  a port really taken by another listener shows in `/healthz` (`web`) and is
  tried again until it is free.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from core.config import HotlineConfig, load_config
from hotline.app import create_hotline, prepare_store
from hotline.health import Probe, health_router
from tests.support.config import free_port, write_config
from tests.support.web_process import hotline_process, stderr_of

LEAK = (
    'connection to server at "db.internal.example" (10.9.8.7), port 5432 failed: '
    'FATAL:  password authentication failed for user "hotline_owner"'
)


def _config(tmp_path: Path, **overrides: object) -> HotlineConfig:
    config = load_config(write_config(tmp_path, robot={"enabled": False}, **overrides))
    prepare_store(config)
    return config


def _wait_for(check, seconds: float = 40.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.3)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def test_a_restart_right_after_console_traffic_serves_the_console(tmp_path: Path) -> None:
    """As an operator does it: use the console, restart the service, use it again."""
    config = _config(tmp_path)
    port = config.web.port
    base = f"http://127.0.0.1:{port}"
    with hotline_process("serve", config.source, port) as first:
        browser = httpx.Client(base_url=base, timeout=10)  # keep-alive, as a browser
        assert browser.get("/login").status_code == 200
        first.send_signal(signal.SIGTERM)
        first.wait(30)
        browser.close()
    # the server closed the browser's connection first: its end waits in TIME_WAIT
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    with hotline_process("serve", config.source, port):
        assert httpx.get(f"{base}/login", timeout=10).status_code == 200
    assert "cannot listen" not in stderr_of("serve", config.source)


def test_a_taken_console_port_shows_in_healthz_until_it_is_free(tmp_path: Path) -> None:
    config = _config(tmp_path, health={"port": free_port()})
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", config.web.port))
    blocker.listen()
    health = f"http://127.0.0.1:{config.health.port}/healthz"
    try:
        with hotline_process("serve", config.source, config.health.port):
            sick = httpx.get(health, timeout=10)
            assert sick.status_code == 503
            web = sick.json()["checks"]["web"]
            assert web["ok"] is False and "cannot listen" in web["detail"], web
            blocker.close()
            console = f"http://127.0.0.1:{config.web.port}/login"
            _wait_for(lambda: _answers(console))
            _wait_for(lambda: httpx.get(health, timeout=10).json()["checks"]["web"]["ok"])
    finally:
        blocker.close()


def test_operations_endpoints_have_their_own_loopback_port_not_the_consoles(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, health={"port": free_port()})
    console = f"http://127.0.0.1:{config.web.port}"
    with hotline_process("serve", config.source, config.web.port):
        for path in ("/healthz", "/metrics"):
            answer = httpx.get(console + path, timeout=10)
            assert answer.status_code == 404, (path, answer.status_code)
            assert "checks" not in answer.text and "hotline_" not in answer.text
        assert config.health.host == "127.0.0.1"
        operations = f"http://127.0.0.1:{config.health.port}"
        _wait_for(lambda: _answers(f"{operations}/metrics"))
        health = httpx.get(f"{operations}/healthz", timeout=10)
        assert health.status_code in (200, 503)
        assert {"database", "fastagi", "web"} <= set(health.json()["checks"])
        assert str(config.agi.port) not in health.text  # no addresses
        assert "hotline_tickets_created_total" in httpx.get(f"{operations}/metrics").text


async def test_healthz_caches_the_store_checks_and_tells_no_database_error_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, health={"port": free_port(), "cache_seconds": 30})
    hotline = create_hotline(config)
    asked: list[str] = []

    async def broken(work, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(getattr(work, "__name__", "work"))
        raise OperationalError("SELECT 1", {}, Exception(LEAK))

    monkeypatch.setattr(hotline.store.gateway, "run", broken)
    app = FastAPI()
    app.include_router(health_router(Probe(config, hotline.store, hotline.server)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as client:
        answers = await asyncio.gather(*(client.get("/healthz") for _ in range(5)))
        answers.append(await client.get("/healthz"))
        scraped = await client.get("/metrics")
    await hotline.store.close()
    for answer in answers:
        assert answer.status_code == 503
        database = answer.json()["checks"]["database"]
        assert database["ok"] is False and "not writable" in database["detail"]
        for secret in ("db.internal", "10.9.8.7", "hotline_owner", "password", "5432"):
            assert secret not in answer.text, answer.text
    assert scraped.status_code == 200 and "db.internal" not in scraped.text
    # one write check and one heartbeat read for six requests and a scrape, not seven of each
    assert len(asked) <= 2, asked
