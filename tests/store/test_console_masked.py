"""Masked means masked (issue 19 item 1): a role outside `web.numbers_visible_to` finds
calls by caller only with a whole number (exact, audited, rate-limited per user), and
nothing it can do, search, page, export, stream or error, shows a digit it may not see.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.config import HotlineConfig
from dashboard.app import create_app
from tests.support.console_city import CALLERS, ConsoleCity, login
from tests.support.console_site import audit_rows, console_site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, HotlineConfig, ConsoleCity, object]]:
    config, _, city, sessions = console_site(tmp_path)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, config, city, sessions


def calls_found(page: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/calls/(\d+)" class="open-call"', page)}


def test_a_masked_role_cannot_learn_a_callers_number_digit_by_digit(site) -> None:  # type: ignore[no-untyped-def]
    """The attack of the issue: a prefix with a ticket filter answers yes or no per digit."""
    client, config, city, sessions = site
    assert login(client, "s1").status_code == 303
    ticket = city.tickets["S1"]
    number = CALLERS["S1"]
    answers = []
    for digit in "0123456789":  # is the fourth digit this one?
        response = client.get("/calls", params={"ticket": ticket, "caller": number[:3] + digit})
        answers.append((response.status_code, calls_found(response.text)))
    # "1381" is searched as the whole number 1381 (a short number may be one): no call, and
    # the right fourth digit answers exactly as every wrong one; only the per-user limit
    # ends the questions, whichever digit is asked
    limit = config.web.caller_searches_per_minute
    assert [found for _, found in answers] == [set()] * 10, answers
    assert [status for status, _ in answers] == [200] * limit + [429] * (10 - limit)
    assert len(audit_rows(sessions, "caller_search")) == limit  # each one ran audited
    short = client.get("/calls", params={"caller": number[:2]}, headers={"accept": "text/html"})
    assert short.status_code == 400 and not calls_found(short.text)
    assert "完整号码" in short.text.split('id="message"')[1]  # says what it takes
    assert number[:7] not in short.text  # and shows no digit of the number


def test_a_masked_role_finds_a_call_by_the_whole_number_audited_and_rate_limited(site) -> None:  # type: ignore[no-untyped-def]
    client, config, city, sessions = site
    per_minute = config.web.caller_searches_per_minute
    assert 3 <= per_minute <= 20
    assert login(client, "s1").status_code == 303
    found = client.get("/calls", params={"caller": CALLERS["S1"]})
    assert found.status_code == 200
    assert calls_found(found.text) == {city.calls["S1"]}  # exact: the number's own calls
    assert CALLERS["S1"] not in found.text.split('id="results"')[1]  # shown masked
    assert "138****5678" in found.text
    other = client.get("/calls", params={"caller": CALLERS["S2"]})  # S2's caller: not in scope
    assert other.status_code == 200 and not calls_found(other.text)
    rows = audit_rows(sessions, "caller_search")
    assert [(r.username, r.role) for r in rows] == [("s1", "staff")] * 2
    assert all(CALLERS["S1"] not in (r.detail or "") for r in rows)
    assert "138****5678" in (rows[0].detail or "")
    assert rows[0].address
    for _ in range(per_minute - 2):
        assert client.get("/calls", params={"caller": CALLERS["V1"]}).status_code == 200
    limited = client.get(
        "/calls", params={"caller": CALLERS["S1"]}, headers={"accept": "text/html"}
    )
    assert limited.status_code == 429 and not calls_found(limited.text)
    assert "次数" in limited.text
    assert len(audit_rows(sessions, "caller_search")) == per_minute  # the refused one ran nothing
    # other searches go on; the limit is per user
    assert client.get("/calls", params={"line": "12345"}).status_code == 200
    with TestClient(client.app, base_url="http://127.0.0.1") as s2:
        login(s2, "s2")
        assert s2.get("/calls", params={"caller": CALLERS["S2"]}).status_code == 200
    # a supervisor sees numbers: prefix search, unaudited, unlimited, as before
    with TestClient(client.app, base_url="http://127.0.0.1") as boss:
        login(boss, "boss")
        for _ in range(per_minute + 1):
            prefix = boss.get("/calls", params={"caller": CALLERS["S1"][:4]})
            assert prefix.status_code == 200 and city.calls["S1"] in calls_found(prefix.text)
    assert len(audit_rows(sessions, "caller_search")) == per_minute + 1


def _texts(client: TestClient, city: ConsoleCity) -> dict[str, str]:
    """Every page, export and stream a viewer can open, as text."""
    paths = [
        "/",
        "/calls",
        "/calls?line=12345",
        f"/calls?caller={CALLERS['S1']}",
        f"/calls/{city.calls['S1']}",
        f"/calls/{city.survey_call}",
        f"/tickets/{city.tickets['S1']}",
        "/robot",
        "/rates",
        "/live",
        "/rates/export/three-rates.csv",
        "/rates/export/overdue.csv",
        "/rates/export/three-rates.xlsx",
        "/admin/audit",
        "/admin/users",
    ]
    texts = {}
    for path in paths:
        response = client.get(path)
        body = response.content
        if body[:2] == b"PK":  # an XLSX: the text of its parts
            with zipfile.ZipFile(io.BytesIO(body)) as book:
                body = b"".join(book.read(n) for n in book.namelist())
        text = body.decode("utf-8", "replace") + str(dict(response.headers))
        # the search form shows back what the viewer typed, a number they know already
        texts[path] = re.sub(r'name="caller" id="caller" value="[^"]*"', "", text)
    return texts


@pytest.mark.parametrize("username", ["s1", "admin"])
def test_nothing_a_masked_role_opens_shows_a_hidden_digit(site, username: str) -> None:  # type: ignore[no-untyped-def]
    client, _, city, _ = site
    login(client, username)
    hidden = {number: number[3:7] for number in CALLERS.values()}  # what 138****5678 hides
    for path, text in _texts(client, city).items():
        for number, middle in hidden.items():
            assert number not in text, (username, path)
            assert not re.search(rf"(?<!\d){number[:3]}{middle}", text), (username, path)
