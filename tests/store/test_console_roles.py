"""Hosts, cookies and roles (issue 19, item 7), each through the real app.

- A request naming a host the console is not (DNS rebinding) gets 400.
- Behind HTTPS the session and login cookies are `__Host-` cookies (Secure, Path=/,
  no Domain), and a plain-named cookie planted beside them counts for nothing.
- `web.download_roles` is real: the other roles' player gets pieces of the audio
  through Range requests, never the whole file in one answer, and no download link.
- Admins manage accounts and read the audit log; they open recordings only when
  `web.recording_roles` lists them.
- A staff account without a unit sees nothing, on every page, export and API.
- Staff see neither the city-wide snail seat nor the robot's city-wide figures.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from core.config import HotlineConfig
from dashboard.app import PUBLIC, create_app
from dashboard.auth import SESSION_COOKIE
from dashboard.users import add_user, user_by_name
from db.departments import department_by_code
from db.models import User
from db.session import unit_of_work
from tests.store.test_console_security import api_routes, concrete
from tests.support.console_city import CALLERS, CSRF, PASSWORD, ConsoleCity, csrf_of, login
from tests.support.console_site import audit_rows, console_site
from tests.support.metrics_city import add_callback

PIECE_KB = 16  # the console city's whole-call recordings are 96 kB: six pieces


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, HotlineConfig, ConsoleCity, object]]:
    config, _, city, sessions = console_site(tmp_path, stream_piece_kb=PIECE_KB)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, config, city, sessions


def _audio_link(page: str, kind: str = "call") -> str:
    return page.split(f'id="audio-{kind}" src="')[1].split('"')[0]


# -- allowed hosts ----------------------------------------------------------------------
def test_a_request_naming_another_host_gets_400(tmp_path: Path) -> None:
    config, _, _, _ = console_site(tmp_path, allowed_hosts=["console.example.org"])
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        for host in ("127.0.0.1", "127.0.0.1:8345", "localhost:8345", "[::1]:8345",
                     "console.example.org", "CONSOLE.example.org:443"):  # fmt: skip
            assert client.get("/login", headers={"host": host}).status_code == 200, host
        for host in ("evil.example", "attacker.test:8345", "console.example.org.evil.test",
                     "x.console.example.org", "10.0.0.9"):  # fmt: skip
            refused = client.get("/login", headers={"host": host})
            assert refused.status_code == 400, host
            assert "hotline" not in refused.text.lower()  # no page, no cookie
            assert "set-cookie" not in refused.headers
            assert refused.headers["x-frame-options"] == "DENY"  # still our headers
            posted = client.post("/api/import", json=[], headers={"host": host})
            assert posted.status_code == 400, host


def test_allowed_hosts_take_the_configured_host_and_wildcards(tmp_path: Path) -> None:
    config, _, _, _ = console_site(tmp_path, host="10.1.2.3", allowed_hosts=["*.example.org"])
    assert config.web.hosts()[:4] == ["127.0.0.1", "localhost", "[::1]", "10.1.2.3"]
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        assert client.get("/login", headers={"host": "10.1.2.3:8345"}).status_code == 200
        assert client.get("/login", headers={"host": "a.example.org"}).status_code == 200
        assert client.get("/login", headers={"host": "example.org.evil"}).status_code == 400


# -- __Host- cookies --------------------------------------------------------------------
def _set_cookies(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Each Set-Cookie header by the cookie's name."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_secure_cookies_are_host_cookies(tmp_path: Path) -> None:
    config, _, _, _ = console_site(tmp_path, secure_cookies=True)
    with TestClient(create_app(config), base_url="https://127.0.0.1") as client:
        form = client.get("/login")
        cookies = _set_cookies(form)
        assert set(cookies) == {"__Host-hotline_login"}
        done = login(client, "boss")
        assert done.status_code == 303
        cookies = _set_cookies(done)
        assert "__Host-hotline_session" in cookies
        for header in cookies.values():
            attributes = [a.strip().lower() for a in header.split(";")[1:]]
            assert "secure" in attributes and "path=/" in attributes, header
            assert "httponly" in attributes and "samesite=strict" in attributes, header
            assert not any(a.startswith("domain") for a in attributes), header
        assert client.get("/calls").status_code == 200  # the session is read by its new name
        # a cookie without the prefix (set by a neighbouring subdomain, over plain HTTP)
        session = client.cookies["__Host-hotline_session"]
        with TestClient(client.app, base_url="https://127.0.0.1") as planted:
            planted.cookies.set(SESSION_COOKIE, session)
            assert planted.get("/calls", follow_redirects=False).status_code == 401
        out = client.post("/logout", data={"csrf": csrf_of(client)}, follow_redirects=False)
        assert out.status_code == 303
        gone = _set_cookies(out)["__Host-hotline_session"].lower()
        assert "max-age=0" in gone and "secure" in gone and "path=/" in gone


def test_plain_http_keeps_plain_cookie_names(site) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = site
    assert set(_set_cookies(client.get("/login"))) == {"hotline_login"}
    assert "hotline_session" in _set_cookies(login(client, "boss"))


# -- download_roles ---------------------------------------------------------------------
def test_a_role_that_may_not_download_streams_pieces_and_never_the_whole_file(site) -> None:  # type: ignore[no-untyped-def]
    client, _, city, sessions = site
    login(client, "boss")
    whole = client.get(_audio_link(client.get(f"/calls/{city.calls['S1']}").text)).content
    assert whole[:4] == b"RIFF" and len(whole) > 5 * PIECE_KB * 1024
    with TestClient(client.app, base_url="http://127.0.0.1") as staff:
        login(staff, "s1")
        page = staff.get(f"/calls/{city.calls['S1']}")
        assert page.status_code == 200
        link = _audio_link(page.text)
        plain = staff.get(link)  # a save, a script, a link opened in a tab
        assert plain.status_code == 403 and plain.content[:4] != b"RIFF"
        assert "download-call" not in page.text and "attachment" not in page.text
        assert 'controlslist="nodownload"' in page.text
        first = staff.get(link, headers={"Range": "bytes=0-"})  # what a player asks first
        size = len(whole)
        assert first.status_code == 206
        assert first.content == whole[: PIECE_KB * 1024]
        assert first.headers["content-range"] == f"bytes 0-{PIECE_KB * 1024 - 1}/{size}"
        assert "attachment" not in first.headers.get("content-disposition", "")
        assert first.headers["accept-ranges"] == "bytes"
        # seeking: any piece, the end, a suffix; each at most a piece long
        middle = size // 2
        seek = staff.get(link, headers={"Range": f"bytes={middle}-"})
        assert seek.status_code == 206 and seek.content == whole[middle : middle + PIECE_KB * 1024]
        tail = staff.get(link, headers={"Range": "bytes=-100"})
        assert tail.content == whole[-100:]
        exact = staff.get(link, headers={"Range": "bytes=44-143"})
        assert exact.content == whole[44:144]
        for bad in (f"bytes={size}-", "bytes=9-3", "bytes=0-1,5-9", "items=0-", "bytes=-"):
            refused = staff.get(link, headers={"Range": bad})
            assert refused.status_code == 416, bad
            assert refused.headers["content-range"] == f"bytes */{size}"
        # the player's pieces, put together, are the recording: nothing lost for listening
        pieces, at = b"", 0
        while at < size:
            got = staff.get(link, headers={"Range": f"bytes={at}-"})
            pieces, at = pieces + got.content, at + len(got.content)
        assert pieces == whole
    plays = [r for r in audit_rows(sessions, "play") if r.username == "s1"]
    assert len(plays) == 1  # one playback, however many pieces


def test_download_roles_decide_who_gets_the_whole_file(tmp_path: Path) -> None:
    config, _, city, _ = console_site(tmp_path, download_roles=["supervisor", "staff"])
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        login(client, "s1")
        page = client.get(f"/calls/{city.calls['S1']}").text
        assert 'id="download-call"' in page and "nodownload" not in page
        whole = client.get(_audio_link(page))
        assert whole.status_code == 200 and whole.content[:4] == b"RIFF"
        download = page.split('id="download-call" href="')[1].split('"')[0]
        assert "attachment" in client.get(download).headers["content-disposition"]


# -- recording_roles --------------------------------------------------------------------
def test_admins_manage_accounts_and_read_the_audit_but_open_no_recording(site) -> None:  # type: ignore[no-untyped-def]
    client, _, city, _ = site
    login(client, "admin")
    html = {"accept": "text/html"}
    assert client.get("/admin/users").status_code == 200
    assert client.get("/admin/audit").status_code == 200
    for path in ("/calls", f"/calls/{city.calls['S1']}", f"/calls/{city.survey_call}"):
        refused = client.get(path, headers=html)
        assert refused.status_code == 403, path
        assert "<audio" not in refused.text and "/media/" not in refused.text
    # a link signed for the admin's own session (as if a page had shown one)
    keys = client.app.state.keys
    sid = keys.sessions.loads(client.cookies[SESSION_COOKIE])["s"]
    link = keys.links.dumps({"c": city.calls["S1"], "k": "call", "s": sid, "d": 0, "n": "a"})
    refused = client.get(f"/media/{link}", headers={"Range": "bytes=0-"})
    assert refused.status_code == 403 and refused.content[:4] != b"RIFF"
    for path in ("/", f"/tickets/{city.tickets['S2']}", "/robot"):
        text = client.get(path).text
        assert 'href="/calls' not in text, path  # no way into the recordings from a page


def test_recording_roles_can_give_admins_the_recordings(tmp_path: Path) -> None:
    config, _, city, _ = console_site(tmp_path, recording_roles=["admin", "supervisor", "staff"])
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        login(client, "admin")
        page = client.get(f"/calls/{city.calls['S1']}")
        assert page.status_code == 200 and "<audio" in page.text
        assert "download-call" not in page.text  # listening is not downloading
        piece = client.get(_audio_link(page.text), headers={"Range": "bytes=0-"})
        assert piece.status_code == 206 and piece.content[:4] == b"RIFF"


# -- a staff account without a unit -----------------------------------------------------
def _unitless(sessions) -> None:  # type: ignore[no-untyped-def]
    """A staff account whose unit is gone (a database edit, a unit removed on the platform)."""
    from dashboard.auth import hash_password

    with unit_of_work(sessions) as session:
        unit = department_by_code(session, "S2")
        assert unit is not None
        add_user(session, "drifter", hash_password(PASSWORD), "staff", unit.id)
        session.flush()
        session.execute(update(User).where(User.username == "drifter").values(department_id=None))


def test_a_staff_account_without_a_unit_sees_nothing(site) -> None:  # type: ignore[no-untyped-def]
    client, _, city, sessions = site
    _unitless(sessions)
    assert login(client, "drifter").status_code == 303
    secrets = [*CALLERS.values(), *city.tickets.values(), "unit S1", "unit D1", "unit S2"]
    secrets += [c[:3] + "****" + c[-4:] for c in CALLERS.values()]
    fill = {
        "call_id": str(city.calls["S2"]),
        "number": city.tickets["S2"],
        "code": "S2",
        "which": "three-rates",
        "fmt": "csv",
    }
    checked = 0
    for route in api_routes(client.app.routes):
        if "GET" not in route.methods or route.path in PUBLIC or route.path == "/live/events":
            continue  # the live stream: its own test below (a 200 would never end here)
        path = route.path
        for name, value in fill.items():
            path = path.replace("{" + name + "}", value)
        path = concrete(path)
        for accept in ("text/html", "*/*"):
            answer = client.get(path, headers={"accept": accept}, follow_redirects=False)
            assert answer.status_code == 403, (path, answer.status_code)
            for secret in secrets:
                assert secret not in answer.text, (path, secret)
        checked += 1
    assert checked >= 12
    for which in ("three-rates", "ranking", "snail-seat", "overdue"):
        for fmt in ("csv", "xlsx"):
            got = client.get(f"/rates/export/{which}.{fmt}", params={"month": "2026-11"})
            assert got.status_code == 403 and "attachment" not in got.headers.get(
                "content-disposition", ""
            )
    page = client.get("/rates", headers={"accept": "text/html"})
    assert "未分配承办单位" in page.text and 'id="logout"' in page.text  # it can still log out
    token = CSRF.search(page.text)
    assert token
    out = client.post("/logout", data={"csrf": token[1]}, follow_redirects=False)
    assert out.status_code == 303 and client.get("/rates").status_code == 401


@pytest.mark.timeout(20)  # before the fix the stream never ended
def test_a_live_stream_refuses_a_staff_account_without_a_unit(site) -> None:  # type: ignore[no-untyped-def]
    client, _, _, sessions = site
    _unitless(sessions)
    login(client, "drifter")
    with client.stream("GET", "/live/events") as stream:
        assert stream.status_code == 403


# -- staff and the city-wide figures ----------------------------------------------------
@pytest.fixture
def ranked(tmp_path: Path) -> Iterator[tuple[TestClient, HotlineConfig, ConsoleCity, str]]:
    """The console city with a month of callbacks that seats S1 and S3 on the snail seat
    (street group of four: S1 0, S3 0.1 at the bottom; S2 0.775, S4 1)."""
    config, _, city, sessions = console_site(tmp_path)
    config = config.model_copy(
        update={
            "metrics": config.metrics.model_copy(
                update={"snail_months": 1, "min_valid_callbacks": 1}
            )
        }
    )
    at = datetime.now(UTC) - timedelta(hours=1)
    with unit_of_work(sessions) as session:
        unit = {code: department_by_code(session, code) for code in ("S1", "S2", "S3", "S4")}
        add_callback(session, unit["S1"], at, (2, 2, 3))
        add_callback(session, unit["S3"], at, (1, 2, 3))
        add_callback(session, unit["S4"], at, (1, 1, 1))
        for _ in range(3):
            add_callback(session, unit["S2"], at, (1, 1, 1))
    month = at.astimezone(config.tz).strftime("%Y-%m")
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, config, city, month


def _snail_codes(page: str) -> set[str]:
    table = page.split('id="snail"')[1].split("</table>")[0]
    return set(re.findall(r">(S\d|V\d|D\d)<", table))


def test_staff_see_only_their_own_units_on_the_snail_seat(ranked) -> None:  # type: ignore[no-untyped-def]
    client, _, _, month = ranked
    login(client, "boss")
    assert {"S1", "S3"} <= _snail_codes(client.get("/rates", params={"month": month}).text)
    with TestClient(client.app, base_url="http://127.0.0.1") as staff:
        login(staff, "s2")  # S2's staff: S2 is not on it, and nothing of the others
        page = staff.get("/rates", params={"month": month})
        assert page.status_code == 200 and _snail_codes(page.text) == set()
        assert "unit S1" not in page.text.split('id="snail"')[1].split("</table>")[0]
        exported = staff.get("/rates/export/snail-seat.csv", params={"month": month})
        rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert not any("S1" in row or "S3" in row for row in rows)
    with TestClient(client.app, base_url="http://127.0.0.1") as own:
        login(own, "s1")  # S1's own staff learn that S1 is on it, and nothing of S3
        assert _snail_codes(own.get("/rates", params={"month": month}).text) == {"S1"}
        exported = own.get("/rates/export/snail-seat.csv", params={"month": month}).text
        assert "S1" in exported and "S3" not in exported


def test_staff_see_their_subtrees_robot_figures_and_not_the_citys(ranked) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = ranked
    login(client, "boss")
    city_wide = client.get("/robot").text
    assert re.search(r'id="placed">1<', city_wide) and 'id="queue"' in city_wide
    with TestClient(client.app, base_url="http://127.0.0.1") as staff:
        login(staff, "s1")  # the city's only survey is of S2's ticket
        page = staff.get("/robot").text
        assert re.search(r'id="placed">0<', page), page.split('id="placed"')[1][:40]
        assert 'id="queue"' not in page
    with TestClient(client.app, base_url="http://127.0.0.1") as staff:
        login(staff, "s2")
        page = staff.get("/robot").text
        assert re.search(r'id="placed">1<', page) and 'id="queue"' not in page


def test_a_unit_user_still_finds_their_own_unit_rates(ranked) -> None:  # type: ignore[no-untyped-def]
    """Nothing of the above takes from staff what is theirs."""
    client, _, city, _ = ranked
    login(client, "s2")
    assert client.get(f"/tickets/{city.tickets['S2']}").status_code == 200
    assert client.get(f"/calls/{city.calls['S2']}").status_code == 200
    assert client.get("/rates", params={"unit": "S2"}).status_code == 200
    with unit_of_work(client.app.state.sessions) as session:
        assert user_by_name(session, "s2") is not None
