"""Security of the console: every route behind login, staff confined to their subtree,
hostile input harmless, CSRF on every state change, login delays and throttling.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from core.config import HotlineConfig, load_config
from dashboard.app import PUBLIC, create_app
from dashboard.auth import SESSION_COOKIE
from db.migrate import upgrade
from db.models import Call, Ticket, User
from db.session import make_engine, make_session_factory, unit_of_work
from tests.support.config import free_port, write_config
from tests.support.console_city import (
    CALLERS,
    PASSWORD,
    ConsoleCity,
    build_console_city,
    csrf_of,
    login,
)

HOSTILE = [
    "' OR '1'='1",
    "1; DROP TABLE calls; --",
    "' UNION SELECT password_hash, 1, 1 FROM users --",
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "/etc/passwd",
    "%00",
    "\x00",
    "<script>alert(1)</script>",
    "1e309",
    "-1",
    "9" * 400,
]


@pytest.fixture
def site(tmp_path: Path, monkeypatch) -> Iterator[tuple[TestClient, HotlineConfig, ConsoleCity]]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOTLINE_IMPORT_TOKEN", "platform-token")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    config = load_config(
        write_config(
            tmp_path / "cfg",
            database={"url": url},
            paths={"state_dir": str(tmp_path / "var"), "recordings_dir": str(tmp_path / "rec")},
            asterisk={"ami": {"port": free_port()}},
            # the admin of the hostile-strings test reaches the recordings' search too
            web={
                "address_failures_per_hour": 40,
                "recording_roles": ["admin", "supervisor", "staff"],
            },
        )
    )
    engine = make_engine(url)
    city = build_console_city(make_session_factory(engine), config)
    engine.dispose()
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, config, city


def api_routes(routes) -> Iterator[APIRoute]:  # type: ignore[no-untyped-def]
    """Every route of the app, including those of included routers (enumerated, not listed)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI's included-router wrapper
            yield from api_routes(route.original_router.routes)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_without_a_session_is_refused_or_sent_to_login(site) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = site
    routes = list(api_routes(client.app.routes))
    assert len(routes) >= 15
    checked = 0
    for route in routes:
        if route.path in PUBLIC:
            continue
        for method in route.methods:
            url = concrete(route.path)
            plain = client.request(method, url, follow_redirects=False)
            assert plain.status_code == 401, (method, route.path, plain.status_code)
            if method == "GET":
                html = client.get(url, headers={"accept": "text/html"}, follow_redirects=False)
                if route.path.startswith("/api/"):
                    assert html.status_code == 401
                else:
                    assert html.status_code == 303, route.path
                    assert html.headers["location"].startswith("/login?next=")
            checked += 1
    assert checked >= 15
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404


def _session_id(client: TestClient) -> str:
    keys = client.app.state.keys
    return keys.sessions.loads(client.cookies[SESSION_COOKIE])["s"]


def test_staff_cannot_reach_another_units_ticket_call_or_recording(site) -> None:  # type: ignore[no-untyped-def]
    client, _, city = site
    assert login(client, "s2").status_code == 303
    html = {"accept": "text/html"}
    assert client.get(f"/tickets/{city.tickets['S1']}").status_code == 403
    assert client.get(f"/tickets/{city.tickets['V1']}").status_code == 403
    refused = client.get(f"/calls/{city.calls['S1']}", headers=html)
    assert refused.status_code == 403 and "不属于您的单位" in refused.text
    assert client.get(f"/calls/{city.missing_call}").status_code == 403  # no ticket: no unit
    assert client.get(f"/calls/{city.calls['S2']}").status_code == 200
    # a correctly signed link for this very session, for a call of another unit (a guessed id)
    keys = client.app.state.keys
    forged = keys.links.dumps(
        {"c": city.calls["S1"], "k": "call", "s": _session_id(client), "d": 0, "n": "x"}
    )
    streamed = client.get(f"/media/{forged}")
    assert streamed.status_code == 403 and b"RIFF" not in streamed.content
    assert client.get("/rates", params={"unit": "S1"}).status_code == 403
    assert client.get("/rates/trend/S1").status_code == 403
    assert client.get("/admin/audit").status_code == 403
    token = csrf_of(client, f"/tickets/{city.tickets['S2']}")
    assert (
        client.post(f"/tickets/{city.tickets['S1']}/sign", data={"csrf": token}).status_code == 403
    )
    # a supervisor reads everything but handles nothing
    with TestClient(client.app, base_url="http://127.0.0.1") as boss:
        login(boss, "boss")
        assert boss.get(f"/tickets/{city.tickets['S1']}").status_code == 200
        token = csrf_of(boss)
        assert (
            boss.post(f"/tickets/{city.tickets['S1']}/sign", data={"csrf": token}).status_code
            == 403
        )
        assert boss.get("/admin/audit").status_code == 403
        # staff may not download
    page = client.get(f"/calls/{city.calls['S2']}")
    assert "download-call" not in page.text
    download = keys.links.dumps(
        {"c": city.calls["S2"], "k": "call", "s": _session_id(client), "d": 1, "n": "y"}
    )
    assert client.get(f"/media/{download}").status_code == 403


def test_hostile_strings_in_every_field_and_path_are_harmless(site) -> None:  # type: ignore[no-untyped-def]
    client, config, city = site
    login(client, "admin")
    client.headers["accept"] = "text/html"  # error pages as HTML: they must escape what they echo
    fields = {
        "/calls": [
            "ticket",
            "caller",
            "from",
            "to",
            "line",
            "direction",
            "min_seconds",
            "max_seconds",
            "step",
            "outcome",
            "after",
        ],
        "/admin/audit": ["user", "action", "object", "from", "to", "before"],
        "/rates": ["week", "month", "assessment", "unit"],
        "/robot": ["from", "to", "within"],
        "/": ["week"],
    }
    paths = [
        "/calls/{}",
        "/tickets/{}",
        "/rates/trend/{}",
        "/media/{}",
        "/rates/export/{}.csv",
        "/rates/export/three-rates.{}",
    ]
    responses = []
    for value in HOSTILE:
        for path, names in fields.items():
            for name in names:
                responses.append(client.get(path, params={name: value}))
        for path in paths if "\x00" not in value else []:  # not a URL httpx will send
            responses.append(client.get(path.format(value.replace("/", "%2F"))))
            responses.append(client.get(path.format(value)))
    for response in responses:
        assert response.status_code < 500
        assert "root:x:0:0" not in response.text
        assert "$argon2" not in response.text
        assert "<script>alert(1)</script>" not in response.text
    engine = make_engine(config.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 5
        assert session.scalar(select(func.count()).select_from(User)) == 4
    engine.dispose()
    # the search still finds what it should (an admin sees numbers masked: by the whole
    # number only), and a hostile caller field finds nothing
    whole = client.get("/calls", params={"caller": CALLERS["S1"]}).text
    assert f"/calls/{city.calls['S1']}" in whole
    assert (
        "/calls/"
        not in client.get("/calls", params={"caller": "' OR '1'='1"}).text.split("results")[1]
    )


def test_every_state_change_needs_its_csrf_token(site) -> None:  # type: ignore[no-untyped-def]
    client, config, city = site
    login(client, "s1")
    number = city.tickets["S1"]
    posts = [r for r in api_routes(client.app.routes) if "POST" in r.methods]
    assert {r.path for r in posts} >= {
        "/login",
        "/logout",
        "/tickets/{number}/{step}",
        "/api/import",
    }
    for route in posts:
        if route.path == "/api/import":
            continue  # bearer token, no cookie: CSRF cannot ride on it
        url = route.path.replace("{number}", number).replace("{step}", "sign")
        url = re.sub(r"\{[a-z_]+\}", "1", url)  # any other id: a real-looking one
        for data in ({}, {"csrf": "0" * 64}):
            refused = client.post(
                url, data={**data, "text": "x", "username": "s1", "password": PASSWORD}
            )
            assert refused.status_code == 403, (route.path, data)
    engine = make_engine(config.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        status = session.scalar(select(Ticket.status).where(Ticket.number == number))
    engine.dispose()
    assert status == "dispatched"  # nothing changed
    assert (
        client.get("/calls").status_code == 200
    )  # and the session is still there (logout refused)


def test_wrong_passwords_slow_an_account_down_and_never_lock_it_out(site) -> None:  # type: ignore[no-untyped-def]
    client, config, _ = site
    codes = [login(client, "boss", "wrong password").status_code for _ in range(12)]
    assert codes == [401] * 12  # one answer, never a lock (it used to lock at the tenth)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)

    def delay_ends(at: datetime | None) -> datetime | None:
        with unit_of_work(sessions) as session:
            until = session.scalar(select(User.login_delay_until).where(User.username == "boss"))
            if at is not None:
                session.execute(
                    update(User).where(User.username == "boss").values(login_delay_until=at)
                )
        return until

    until = delay_ends(None)
    assert until is not None  # the failures set a delay ...
    assert until - datetime.now(UTC) <= timedelta(seconds=config.web.login_delay_max_seconds)
    delay_ends(datetime.now(UTC) + timedelta(seconds=30))  # (one that lasts through the next)
    during = login(client, "boss")  # ... within it the right password gets the same answer
    assert during.status_code == 401 and "锁定" not in during.text
    assert login(client, "s1").status_code == 303  # other accounts are not slowed
    delay_ends(datetime.now(UTC) - timedelta(seconds=1))
    assert login(client, "boss").status_code == 303  # the delay is over: no lock to wait out
    engine.dispose()


def test_many_failures_from_one_address_are_throttled(site) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = site
    codes = [login(client, f"nobody{i}", "x").status_code for i in range(40)]
    assert set(codes) == {401}
    assert login(client, "s1").status_code == 429  # even the right password, from this address
