"""Headers (issue 19, item 7): a Content-Security-Policy that allows no inline script or
style (so the pages carry none), no framing, no sniffing, no referrer, nothing kept in a
cache; extreme dates answer 400, never 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboard.app import create_app
from tests.support.console_city import ConsoleCity, login
from tests.support.console_site import console_site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, ConsoleCity]]:
    config, _, city, _ = console_site(tmp_path)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, city


def _pages(city: ConsoleCity) -> list[str]:
    return [
        "/",
        "/calls",
        f"/calls/{city.calls['S1']}",
        f"/calls/{city.survey_call}",
        f"/tickets/{city.tickets['S1']}",
        "/rates",
        "/rates?month=2026-11",
        "/rates/trend/S1",
        "/deadlines?list=overdue",
        "/robot",
        "/live",
        "/calls/999999",  # an error page is a page too
    ]


def _strict(policy: str) -> None:
    directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}
    assert directives["default-src"] == ["'self'"], policy
    assert directives["frame-ancestors"] == ["'none'"], policy
    assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"]
    for kind in ("script-src", "style-src"):
        sources = directives.get(kind, directives["default-src"])
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, policy


def test_every_page_has_the_headers_and_no_inline_script_or_style(site) -> None:  # type: ignore[no-untyped-def]
    client, city = site
    anonymous = client.get("/login")
    assert login(client, "boss").status_code == 303
    answers = [anonymous] + [client.get(path) for path in _pages(city)]
    for answer in answers:
        where = answer.request.url.path
        headers = answer.headers
        _strict(headers.get("content-security-policy", ""))
        assert headers.get("x-content-type-options") == "nosniff", where
        assert headers.get("referrer-policy") == "no-referrer", where
        assert headers.get("x-frame-options") == "DENY", where
        assert "no-store" in headers.get("cache-control", ""), where
        html = answer.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), where  # inline script
        assert not re.search(r"\son[a-z]+\s*=", html), where  # event handler attributes
        assert "javascript:" not in html and "<style" not in html, where
        assert not re.search(r"\sstyle\s*=", html), where
    # what the pages load instead is served, to anyone (the login page needs it)
    assert 'src="/static/live.js"' in client.get("/live").text
    for asset, kind in (("/static/console.css", "text/css"), ("/static/live.js", "javascript")):
        answer = TestClient(client.app, base_url="http://127.0.0.1").get(asset)
        assert answer.status_code == 200 and kind in answer.headers["content-type"], asset
        assert answer.headers.get("x-content-type-options") == "nosniff"
    # recordings and exports are kept by no cache either
    call = client.get(f"/calls/{city.calls['S1']}").text
    play = re.search(r'<audio[^>]*src="([^"]+)"', call)
    assert play, call
    audio = client.get(play.group(1).replace("&amp;", "&"), headers={"Range": "bytes=0-99"})
    assert audio.status_code == 206 and "no-store" in audio.headers["cache-control"]
    export = client.get("/rates/export/three-rates.csv?month=2026-11")
    assert export.status_code == 200 and "no-store" in export.headers["cache-control"]


@pytest.mark.parametrize(
    "path",
    [
        "/calls?to=9999-12-31",
        "/calls?from=9999-12-31&to=9999-12-31",
        "/calls?from=0001-01-01",
        "/robot?to=9999-12-31",
        "/robot?from=0001-01-01&to=0001-01-02",
        "/rates?month=9999-12",
        "/rates?assessment=9999-12",
        "/rates?week=9999-W52",
        "/rates/export/three-rates.csv?month=9999-12",
        "/?week=9999-W52",
        "/admin/audit?to=9999-12-31",
    ],
)
def test_extreme_dates_answer_400_not_500(site, path: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    user = "admin" if path.startswith("/admin") else "boss"
    assert login(client, user).status_code == 303
    answer = client.get(path, headers={"Accept": "text/html"})
    assert answer.status_code == 400, (path, answer.status_code, answer.text[:300])
