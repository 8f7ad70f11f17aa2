"""A dead session is dead everywhere (issue 19 item 2): sessions are server-side records
ended by logout, a new password, disabling and idle time; a recording link dies with its
session; the live stream re-checks its viewer within seconds and ends; and the live feed
is scoped like every other page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from core.config import HotlineConfig
from dashboard.app import create_app
from dashboard.auth import SESSION_COOKIE
from dashboard.users import disable, set_password, user_by_name
from db.models import utcnow
from db.session import unit_of_work
from telephony.ami import AMIEvent
from tests.support.config import free_port
from tests.support.console_city import CALLERS, CSRF, PASSWORD, ConsoleCity, csrf_of, login
from tests.support.console_site import console_site
from tools.sandbox.console import serve_console


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, HotlineConfig, ConsoleCity, object]]:
    config, _, city, sessions = console_site(tmp_path)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, config, city, sessions


def _link(client: TestClient, call_id: int) -> str:
    page = client.get(f"/calls/{call_id}")
    return page.text.split('id="audio-call" src="')[1].split('"')[0]


def _copy(client: TestClient) -> TestClient:
    """Another browser holding a copy of client's session cookie."""
    thief = TestClient(client.app, base_url="http://127.0.0.1")
    thief.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    return thief


def test_logout_ends_a_copied_cookie_and_every_link_signed_for_it(site) -> None:  # type: ignore[no-untyped-def]
    client, _, city, _ = site
    login(client, "boss")
    link = _link(client, city.calls["S1"])
    thief = _copy(client)
    assert thief.get("/calls").status_code == 200  # a copy works while the session lives
    assert thief.get(link).content[:4] == b"RIFF"
    logout = client.post("/logout", data={"csrf": csrf_of(client)}, follow_redirects=False)
    assert logout.status_code == 303
    assert thief.get("/calls", follow_redirects=False).status_code == 401
    played = thief.get(link, follow_redirects=False)
    assert played.status_code in (401, 403) and played.content[:4] != b"RIFF"
    assert client.get("/calls", follow_redirects=False).status_code == 401


def test_a_new_password_and_disabling_end_sessions_and_their_links(site) -> None:  # type: ignore[no-untyped-def]
    client, _, city, sessions = site
    login(client, "boss")
    link = _link(client, city.calls["S1"])
    with unit_of_work(sessions) as session:
        user = user_by_name(session, "boss")
        assert user is not None
        set_password(session, user, user.password_hash)  # same password, new version
    assert client.get("/calls", follow_redirects=False).status_code == 401
    assert client.get(link, follow_redirects=False).content[:4] != b"RIFF"
    login(client, "boss")
    assert client.get("/calls").status_code == 200
    with unit_of_work(sessions) as session:
        user = user_by_name(session, "boss")
        assert user is not None
        disable(session, user)
    assert client.get("/calls", follow_redirects=False).status_code == 401


def test_an_idle_session_ends_and_an_active_one_lives(site) -> None:  # type: ignore[no-untyped-def]
    from db.models import ConsoleSession  # the server-side record of a session

    client, config, _, sessions = site
    idle = config.web.idle_minutes
    assert 5 <= idle < config.web.session_minutes
    login(client, "boss")
    busy = TestClient(client.app, base_url="http://127.0.0.1")
    login(busy, "s1")
    with unit_of_work(sessions) as session:  # boss has been away longer than idle_minutes
        boss = user_by_name(session, "boss")
        session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.user_id == boss.id)  # type: ignore[union-attr]
            .values(last_seen_at=utcnow() - timedelta(minutes=idle + 1))
        )
        s1 = user_by_name(session, "s1")
        session.execute(  # s1 was here a minute short of it
            update(ConsoleSession)
            .where(ConsoleSession.user_id == s1.id)  # type: ignore[union-attr]
            .values(last_seen_at=utcnow() - timedelta(minutes=idle - 1))
        )
    assert client.get("/calls", follow_redirects=False).status_code == 401
    assert busy.get("/calls").status_code == 200  # ... and the request counts as activity
    with unit_of_work(sessions) as session:
        s1 = user_by_name(session, "s1")
        seen = session.scalar(
            ConsoleSession.__table__.select()
            .with_only_columns(ConsoleSession.last_seen_at)
            .where(ConsoleSession.user_id == s1.id)  # type: ignore[union-attr]
        )
    assert seen > utcnow() - timedelta(minutes=1)


# -- the live feed: scoped, and re-checked while it streams -------------------------------


def _feed(app, city: ConsoleCity, sessions) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Calls in progress: a citizen of S1's ticket, of S2's, a survey of S2's, a stranger."""
    from db.models import Call, CallbackAttempt

    with unit_of_work(sessions) as session:
        uniqueid = {
            code: session.get(Call, city.calls[code]).uniqueid  # type: ignore[union-attr]
            for code in ("S1", "S2")
        }
        attempt = session.get(Call, city.survey_call).id  # type: ignore[union-attr]
        attempt_id = session.scalar(
            CallbackAttempt.__table__.select()
            .with_only_columns(CallbackAttempt.id)
            .where(CallbackAttempt.call_id == attempt)
        )
    live = app.state.live
    channels = {
        "S1": (uniqueid["S1"], CALLERS["S1"]),  # a call whose ticket was S1's
        "S2": (uniqueid["S2"], CALLERS["S2"]),
        "survey": ("1800000000.7", CALLERS["S2"]),  # the robot surveying S2's ticket
        "stranger": ("1800000000.9", "13500009999"),  # in the IVR, no ticket yet
    }
    for name, (channel_id, number) in channels.items():
        live.feed(
            AMIEvent(
                "Newchannel",
                {
                    "Uniqueid": channel_id,
                    "Channel": f"PJSIP/{name}-0001",
                    "Exten": "12345",
                    "CallerIDNum": number,
                },
            )
        )
    live.feed(
        AMIEvent(
            "VarSet",
            {"Uniqueid": "1800000000.7", "Variable": "HOTLINE_ATTEMPT", "Value": str(attempt_id)},
        )
    )
    return {name: channel_id for name, (channel_id, _) in channels.items()}


def test_the_live_page_shows_staff_their_subtrees_calls_only(site) -> None:  # type: ignore[no-untyped-def]
    client, _, city, sessions = site
    _feed(client.app, city, sessions)
    login(client, "boss")
    assert client.get("/live").text.count('<td data-label="号码">') == 4  # a supervisor: all
    with TestClient(client.app, base_url="http://127.0.0.1") as s1:
        login(s1, "s1")
        page = s1.get("/live").text
        assert page.count('<td data-label="号码">') == 1 and "138****5678" in page
    with TestClient(client.app, base_url="http://127.0.0.1") as s2:
        login(s2, "s2")
        page = s2.get("/live").text
        assert page.count('<td data-label="号码">') == 2  # S2's citizen, and its survey
        assert "135****9999" not in page and "138****5678" not in page


async def _login(client: httpx.AsyncClient, username: str) -> None:
    form = await client.get("/login")
    token = CSRF.search(form.text)
    assert token
    done = await client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf": token.group(1)}
    )
    assert done.status_code == 303


async def _stream(client: httpx.AsyncClient, into: list[dict]) -> None:
    """Read /live/events until the server ends it."""
    async with client.stream("GET", "/live/events") as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                into.append(json.loads(line[6:]))


async def _first(seen: list[dict], reader: asyncio.Task) -> None:  # type: ignore[type-arg]
    for _ in range(100):
        if seen or reader.done():
            break
        await asyncio.sleep(0.1)
    assert seen and not reader.done()


@pytest.mark.timeout(120)
async def test_a_live_stream_ends_within_seconds_of_disabling_or_logout(tmp_path: Path) -> None:
    config, _, city, sessions = console_site(tmp_path)
    app = create_app(config)
    names = _feed(app, city, sessions)
    with serve_console(app, free_port()) as base:
        async with (
            httpx.AsyncClient(base_url=base, timeout=60) as boss,
            httpx.AsyncClient(base_url=base, timeout=60) as s1,
        ):
            await _login(boss, "boss")
            await _login(s1, "s1")
            seen_boss: list[dict] = []
            seen_s1: list[dict] = []
            reader_boss = asyncio.create_task(_stream(boss, seen_boss))
            reader_s1 = asyncio.create_task(_stream(s1, seen_s1))
            try:
                await _first(seen_boss, reader_boss)
                await _first(seen_s1, reader_s1)
                assert {c["uniqueid"] for c in seen_s1[0]["calls"]} == {names["S1"]}
                assert len(seen_boss[0]["calls"]) == 4
                # the supervisor is disabled while the tab is open: the stream ends
                with unit_of_work(sessions) as session:
                    user = user_by_name(session, "boss")
                    assert user is not None
                    disable(session, user)
                started = time.monotonic()
                await asyncio.wait_for(reader_boss, 15)
                print(f"stream ended {time.monotonic() - started:.1f} s after disabling")
                # staff log out in another tab: their stream ends too
                token = CSRF.search((await s1.get("/calls")).text)
                assert token is not None
                await s1.post("/logout", data={"csrf": token.group(1)})
                await asyncio.wait_for(reader_s1, 15)
            finally:
                for reader in (reader_boss, reader_s1):
                    reader.cancel()
                    with contextlib.suppress(BaseException):
                        await reader
