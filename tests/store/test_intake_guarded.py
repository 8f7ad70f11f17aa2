"""Imports are audited, bounded and tell nothing back (issue 19, item 7).

Each import is an audit row: the token by its name and fingerprint (or the
operator at the CLI), from where, the counts. Every free-text field has a length
at the edge. A refused record is named by where it is and the field by its name;
what it holds (a citizen's number, a long text, a list of events, a made-up key)
never comes back. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig, load_config
from dashboard.app import create_app
from db.models import Department, Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from tests.support.config import write_config
from tests.support.console_site import audit_rows

TOKEN = "token-of-the-platform-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNITS = [
    {"code": "R", "name": "区", "level": 1},
    {"code": "C", "name": "市", "level": 2, "parent_code": "R"},
]


@pytest.fixture
def site(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, HotlineConfig, sessionmaker[Session], Path]]:
    monkeypatch.setenv("HOTLINE_IMPORT_TOKEN", TOKEN)
    path = write_config(tmp_path / "cfg", database={"url": migrated_url})
    config = load_config(path)
    engine = make_engine(migrated_url)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, config, make_session_factory(engine), path
    engine.dispose()


def _ticket(external_id: str, **fields: object) -> dict[str, object]:
    return {
        "external_id": external_id,
        "caller_number": "13900000001",
        "accepted_at": "2026-11-16 09:00",
        **fields,
    }


def test_each_import_is_audited_with_its_token_and_its_counts(site) -> None:  # type: ignore[no-untyped-def]
    client, _, sessions, _ = site
    body = {"departments": UNITS, "tickets": [_ticket("A-1"), _ticket("A-2", caller_number="x")]}
    assert client.post("/api/import", json=body, headers=AUTH).status_code == 200
    rows = audit_rows(sessions, "import")
    assert len(rows) == 1
    row = rows[0]
    fingerprint = hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
    assert row.username == "api:HOTLINE_IMPORT_TOKEN" and row.role == "platform"
    assert row.address  # from where
    detail = row.detail or ""
    assert f"sha256:{fingerprint}" in detail and TOKEN not in detail
    assert "4 records" in detail and "departments: 2 created" in detail
    assert "tickets: 1 created" in detail and "1 refused" in detail
    assert "13900000001" not in detail  # counts, never records
    # a body refused whole is audited too; a wrong token is not an import
    assert client.post("/api/import", json={"users": []}, headers=AUTH).status_code == 422
    client.post("/api/import", json=body, headers={"Authorization": "Bearer wrong"})
    refused = audit_rows(sessions, "import_refused")
    assert [r.username for r in refused] == ["api:HOTLINE_IMPORT_TOKEN"]
    assert "; 422 " in (refused[0].detail or "")
    assert len(audit_rows(sessions, "import")) == 1


def test_a_cli_import_is_audited_with_the_operator_and_the_file(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, sessions, path = site
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"departments": UNITS}), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "tickets", "import", str(batch), "-c", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    rows = audit_rows(sessions, "import")
    assert [(r.username, r.role) for r in rows] == [(f"cli:{getpass.getuser()}", "cli")]
    assert "batch.json" in (rows[0].detail or "") and "2 created" in (rows[0].detail or "")


def test_every_free_text_field_of_an_import_is_bounded(site) -> None:  # type: ignore[no-untyped-def]
    client, _, sessions, _ = site
    body = {
        "departments": [
            *UNITS,
            {"code": "D1", "name": "区县", "level": 3, "parent_code": "C", "peer_group": "g" * 65},
            {"code": "D2", "name": "区县", "level": 3, "parent_code": "C" * 65},
        ],
        "tickets": [
            _ticket("B-1", category="类" * 101),
            _ticket("B-2", department_code="D" * 65, status="dispatched"),
            _ticket(
                "B-3",
                events=[{"kind": "dispatched", "at": "2026-11-16 09:10", "actor": "a" * 101}],
            ),
            _ticket(
                "B-4",
                events=[
                    {"kind": "dispatched", "at": "2026-11-16 09:10", "department_code": "D" * 65}
                ],
            ),
            _ticket("B-5", category="类" * 100),  # at the bound: lands
        ],
    }
    result = client.post("/api/import", json=body, headers=AUTH).json()
    errors = {e["where"]: e["reason"] for e in result["errors"]}
    assert set(errors) == {
        "departments[2]",
        "departments[3]",
        "tickets[0]",
        "tickets[1]",
        "tickets[2]",
        "tickets[3]",
    }, errors
    for where, field, most in (
        ("departments[2]", "peer_group", 64),
        ("departments[3]", "parent_code", 64),
        ("tickets[0]", "category", 100),
        ("tickets[1]", "department_code", 64),
        ("tickets[2]", "events.0.actor", 100),
        ("tickets[3]", "events.0.department_code", 64),
    ):
        assert errors[where].startswith(f"{field}: "), errors[where]
        assert f"at most {most} " in errors[where], errors[where]
    with unit_of_work(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Department)) == 2
        assert list(session.scalars(select(Ticket.external_id))) == ["B-5"]


def test_a_refusal_names_the_record_and_field_and_never_echoes_what_it_holds(site) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = site
    event = {"kind": "dispatched", "at": "2026-11-16 09:10", "note": "EVENTNOTE"}
    body = {
        "tickets": [
            _ticket("C-1", description="ECHOECHO" * 501),  # 4,008 characters
            _ticket("C-2", events=[event] * 201),
            _ticket("C-3", caller_number="1380013800013800138000"),  # 22 digits
            _ticket("C-4", caller_number="13800138000\nContext: evil"),
            _ticket("C-5", **{"K" * 500: "HIDDENVALUE"}),
            _ticket("C-6", urgency="<script>alert(1)</script>"),
            _ticket("C-7", accepted_at="SECRET-NOT-A-DATE"),
            ["not", "an", "object", "SECRETLIST"],
        ]
    }
    answer = client.post("/api/import", json=body, headers=AUTH)
    assert answer.status_code == 200
    text = answer.text
    for secret in ("ECHOECHO", "EVENTNOTE", "13800138000", "Context", "K" * 41, "<script",
                   "SECRET", "HIDDEN"):  # fmt: skip
        assert secret not in text, secret
    errors = {e["where"]: e["reason"] for e in answer.json()["errors"]}
    assert errors["tickets[0]"].startswith("description: String should have at most 4000")
    assert errors["tickets[1]"].startswith("events: List should have at most 200 items")
    assert errors["tickets[2]"].startswith("caller_number: is not a phone number")
    assert errors["tickets[3]"].startswith("caller_number: is not a phone number")
    assert errors["tickets[4]"].startswith("K" * 40 + ": Extra inputs are not permitted")
    assert errors["tickets[5]"].startswith("urgency: Input should be")
    assert errors["tickets[6]"].startswith("accepted_at: Input should be a valid datetime")
    assert errors["tickets[7]"] == "not an object"
    assert len(text) < 3000  # eight refusals, a line each
