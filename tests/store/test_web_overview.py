"""The overview page: a week's figures, ranking and trend chart from the store."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from core.config import load_config
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.users import add_user
from db.migrate import upgrade
from db.session import make_engine, make_session_factory, unit_of_work
from tests.support.config import write_config
from tests.support.console_city import PASSWORD, login
from tests.support.metrics_city import add_callback, build_city, utc


def test_overview_shows_the_week_ranked_and_charted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as session:
        units = build_city(session)
        add_callback(session, units["S1"], utc(2026, 11, 18, 3), (1, 1, 1))
        add_callback(session, units["S2"], utc(2026, 11, 18, 3), (1, 2, 3))
        add_callback(session, units["S2"], utc(2026, 11, 10, 3), (1, 1, 1))  # week 46
        add_user(session, "boss", hash_password(PASSWORD), "supervisor", None)
    engine.dispose()
    path = write_config(tmp_path / "cfg", database={"url": url}, metrics={"min_valid_callbacks": 1})
    config = load_config(path)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        anonymous = client.get("/", follow_redirects=False)
        login(client, "boss")
        page = client.get("/", params={"week": "2026-W47"})
        bad = client.get("/", params={"week": "2026-W99"})
    assert anonymous.status_code == 401  # behind login since the console
    assert page.status_code == 200
    html = page.text
    assert "12345 热线 · 2026-W47" in html
    assert re.search(r'id="valid">2<', html)
    assert re.search(r'id="response">100.0%<', html)
    assert re.search(r'id="resolution">50.0%<', html)
    assert re.search(r'id="robot">无数据<', html)  # no robot calls that week: no data, not 0%
    streets = html.split('data-group="street"')[1].split("</table>")[0]
    assert streets.index("unit S1") < streets.index("unit S2") < streets.index("unit S3")
    assert html.count("<polyline") == 3  # three rates over 12 weeks
    assert bad.status_code == 400 and "no ISO week 99" in bad.text
