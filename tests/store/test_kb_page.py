"""/kb through the app: supervisors and admins edit (audited, a new version), staff read,
agents search the published entries of their lines through /kb/search."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.models import KbEntry
from db.session import unit_of_work
from kb.entries import EntryIn, import_entries, load_file
from tests.support.console_city import PASSWORD, csrf_of, login
from tests.support.console_site import audit_rows, console_site

SAMPLE = Path(__file__).resolve().parents[2] / "kb" / "sample_entries.yaml"
Site = tuple[HotlineConfig, sessionmaker[Session]]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    config, _, _, sessions = console_site(tmp_path)
    with unit_of_work(sessions) as session:
        import_entries(session, load_file(SAMPLE), "test")
        other_line = EntryIn(
            key="dedicated-line-only",
            title="暖气不热专线答复",
            phrasings=["暖气不热找谁", "暖气不热怎么办", "暖气不热去哪反映"],
            keywords=["暖气"],
            answer_zh="只在专线上答复。",
            lines=["99999"],
            status="published",
        )
        draft = other_line.model_copy(
            update={"key": "draft-heating", "lines": [], "status": "draft"}
        )
        import_entries(session, [other_line, draft], "test")
        add_agent(session, config, "a1", hash_password(PASSWORD))
    return config, sessions


@contextmanager
def as_user(site: Site, username: str) -> Iterator[TestClient]:
    config, sessions = site
    with TestClient(create_app(config, sessions), base_url="http://127.0.0.1") as client:
        login(client, username)
        yield client


def form(client: TestClient, **changes: str) -> dict[str, str]:
    data = {
        "csrf": csrf_of(client, "/kb"),
        "title": "暖气不热找谁",
        "phrasings": "家里暖气不热应该找谁\n暖气片温度太低怎么办\n供暖期间室温不达标去哪里反映",
        "keywords": "暖气, 供暖",
        "answer_zh": "请拨打供热公司客服热线 96069，或在“城市服务”小程序报修。",
        "answer_en": "",
        "category": "水电气暖",
        "lines": "",
        "valid_from": "",
        "valid_to": "",
        "owner": "",
        "status": "published",
    }
    return {**data, **changes}


def versions(sessions: sessionmaker[Session], key: str) -> list[tuple[int, str]]:
    with unit_of_work(sessions) as session:
        rows = session.scalars(select(KbEntry).where(KbEntry.key == key).order_by(KbEntry.version))
        return [(r.version, r.status) for r in rows]


def test_a_supervisor_edits_an_entry_as_a_new_audited_version(site: Site) -> None:
    _, sessions = site
    with as_user(site, "boss") as client:
        listing = client.get("/kb")
        assert listing.status_code == 200
        assert 'href="/kb/heating-not-warm">编辑 Edit' in listing.text
        saved = client.post("/kb/heating-not-warm", data=form(client))
        assert saved.status_code == 200 and 'id="done"' in saved.text
        assert "小程序报修" in saved.text
    assert versions(sessions, "heating-not-warm") == [(1, "retired"), (2, "published")]
    [row] = audit_rows(sessions, "kb_edit")
    assert (row.username, row.object_kind) == ("boss", "kb_entry")
    assert row.detail == "heating-not-warm v2 changed"


def test_an_admin_publishes_a_draft_audited(site: Site) -> None:
    _, sessions = site
    with as_user(site, "admin") as client:
        page = client.get("/kb/draft-heating")
        assert 'id="publish"' in page.text
        done = client.post("/kb/draft-heating/publish", data={"csrf": csrf_of(client, "/kb")})
        assert done.status_code == 200
    assert versions(sessions, "draft-heating") == [(1, "published")]
    assert [r.detail for r in audit_rows(sessions, "kb_publish")] == ["draft-heating v1"]


def test_a_bad_edit_is_refused_with_the_field_and_changes_nothing(site: Site) -> None:
    _, sessions = site
    with as_user(site, "boss") as client:
        refused = client.post(
            "/kb/heating-not-warm", data=form(client, phrasings="暖气不热\n暖气太冷")
        )
        assert refused.status_code == 400 and "phrasings" in refused.text
        no_csrf = client.post("/kb/heating-not-warm", data={**form(client), "csrf": "x"})
        assert no_csrf.status_code == 403
    assert versions(sessions, "heating-not-warm") == [(1, "published")]
    assert audit_rows(sessions, "kb_edit") == []


def test_staff_read_but_do_not_edit_and_agents_do_not_open_the_pages(site: Site) -> None:
    _, sessions = site
    with as_user(site, "s1") as client:
        assert 'href="/kb/heating-not-warm">查看 View' in client.get("/kb").text
        page = client.get("/kb/heating-not-warm")
        assert page.status_code == 200 and 'id="edit"' not in page.text
        assert client.post("/kb/heating-not-warm", data=form(client)).status_code == 403
    with as_user(site, "a1") as client:
        assert client.get("/kb").status_code == 403
        assert client.get("/kb/heating-not-warm").status_code == 403
    assert versions(sessions, "heating-not-warm") == [(1, "published")]


def test_an_agent_searches_the_published_entries_of_their_lines(site: Site) -> None:
    config, _ = site
    with as_user(site, "a1") as client:
        found = client.get("/kb/search", params={"q": "嗯，我家暖汽不热找谁啊"})
        assert found.status_code == 200
        body = found.json()
    keys = [m["key"] for m in body["matches"]]
    assert keys[0] == "heating-not-warm" and len(keys) == 3
    assert "draft-heating" not in keys and "dedicated-line-only" not in keys
    top = body["matches"][0]
    assert top["offered"] is True and top["score"] >= config.kb.threshold
    assert "96069" in top["answer_zh"] and top["entry_id"] > 0
    assert body["threshold"] == config.kb.threshold


def test_a_supervisor_searches_every_line(site: Site) -> None:
    with as_user(site, "boss") as client:
        keys = [m["key"] for m in client.get("/kb/search?q=暖气不热找谁").json()["matches"]]
        assert "dedicated-line-only" in keys
        assert client.get("/kb/search?q=").json()["matches"] == []


def test_search_needs_a_session(site: Site) -> None:
    config, sessions = site
    with TestClient(create_app(config, sessions), base_url="http://127.0.0.1") as client:
        assert client.get("/kb/search?q=暖气", follow_redirects=False).status_code in (
            302,
            303,
            401,
        )
