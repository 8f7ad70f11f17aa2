"""Live calls from AMI events, pushed as server-sent events, numbers masked by role;
and the console without Asterisk: every page works and says the link is down.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from core.config import load_config
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.users import add_user
from db.migrate import upgrade
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.app import Hotline, serve_web
from telephony.ami import AMIClient
from tests.support.calls import citizen_call, speech_file
from tests.support.config import free_port, write_config
from tests.support.console_city import CSRF, PASSWORD, build_console_city, login, serve_console

CALLER = "13812340002"


async def sse_login(client: httpx.AsyncClient, username: str) -> None:
    form = await client.get("/login")
    token = CSRF.search(form.text)
    assert token
    done = await client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf": token.group(1)}
    )
    assert done.status_code == 303


async def snapshots(client: httpx.AsyncClient, into: list[dict], stop: asyncio.Event) -> None:
    async with client.stream("GET", "/live/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                into.append(json.loads(line[6:]))
            if stop.is_set():
                return


@pytest.mark.timeout(300)
async def test_live_calls_arrive_as_server_sent_events_masked_by_role(
    hotline: Hotline, ami: AMIClient
) -> None:
    with unit_of_work(hotline.sessions) as session:
        for name, role in (("live-boss", "supervisor"), ("live-admin", "admin")):
            add_user(session, name, hash_password(PASSWORD), role, None)
    app = create_app(hotline.config, hotline.sessions, follow_ami=True)
    voice = speech_file(hotline.config.state_dir / "voices", "네")
    with serve_console(app, free_port()) as base:
        async with (
            httpx.AsyncClient(base_url=base, timeout=60) as boss,
            httpx.AsyncClient(base_url=base, timeout=60) as other,
        ):
            await sse_login(boss, "live-boss")
            await sse_login(other, "live-admin")  # admins do not see numbers by default
            seen_boss: list[dict] = []
            seen_other: list[dict] = []
            stop = asyncio.Event()
            readers = [
                asyncio.create_task(snapshots(boss, seen_boss, stop)),
                asyncio.create_task(snapshots(other, seen_other, stop)),
            ]
            for _ in range(100):
                if seen_boss and seen_boss[-1]["connected"]:
                    break
                await asyncio.sleep(0.1)
            script = f"w1.5|d1|w1.5|d3|w1.5|d2|w7|p{voice}|w1|d#"
            await citizen_call(ami, "12345", script, caller=CALLER, timeout=180)
            await asyncio.sleep(2)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 10)
    steps = {c["step"] for s in seen_boss for c in s["calls"] if c["number"] == CALLER}
    assert {"greeting", "type", "recording", "readback"} <= steps, steps  # as the flow set them
    assert any(c["did"] == "12345" for s in seen_boss for c in s["calls"])
    masked = {c["number"] for s in seen_other for c in s["calls"]}
    assert "138****0002" in masked and CALLER not in masked
    assert seen_boss[-1]["calls"] == [] or all(
        c["number"] != CALLER for c in seen_boss[-1]["calls"]
    )  # gone after hang-up


def test_without_asterisk_every_page_works_and_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    config = load_config(
        write_config(
            tmp_path / "cfg",
            database={"url": url},
            paths={"state_dir": str(tmp_path / "var"), "recordings_dir": str(tmp_path / "rec")},
            asterisk={"ami": {"port": free_port(), "connect_timeout": 0.5}},
        )
    )
    engine = make_engine(url)
    city = build_console_city(make_session_factory(engine), config)
    engine.dispose()
    with TestClient(create_app(config, follow_ami=True), base_url="http://127.0.0.1") as client:
        login(client, "boss")
        for path in ("/", "/calls", f"/calls/{city.calls['S1']}", "/rates", "/robot", "/live"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert 'id="asterisk-down"' in page.text and "Asterisk 未连接" in page.text, path


async def test_hotline_serve_runs_the_console_in_its_own_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    port = free_port()
    config = load_config(
        write_config(
            tmp_path / "cfg",
            database={"url": url},
            paths={"state_dir": str(tmp_path / "var")},
            asterisk={"ami": {"port": free_port(), "connect_timeout": 0.5}},
            web={"port": port},
        )
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve_web(config, stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    page = await client.get("/login")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            assert page.status_code == 200 and "登录" in page.text
            # this loop answers while the page is served elsewhere: the web thread has its own
            assert "web" in {t.name for t in threading.enumerate()}
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert "web" not in {t.name for t in threading.enumerate()}
