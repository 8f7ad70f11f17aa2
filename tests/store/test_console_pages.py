"""The console's pages through the app (TestClient): login, recordings, call page with
Range playback and audit, three rates and exports, robot page, staff workflow, users CLI.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import itsdangerous.timed
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select, update

from core import periods
from core.config import HotlineConfig, load_config
from dashboard.app import create_app
from db.migrate import upgrade
from db.models import AuditEntry, Call, Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from reports import tables
from reports.build import three_rates_report
from tests.support.config import free_port, write_config
from tests.support.console_city import (
    CALLERS,
    PASSWORD,
    ConsoleCity,
    build_console_city,
    csrf_of,
    login,
)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[TestClient, HotlineConfig, ConsoleCity]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    config = load_config(
        write_config(
            tmp_path / "cfg",
            database={"url": url},
            paths={
                "state_dir": str(tmp_path / "var"),
                "recordings_dir": str(tmp_path / "rec"),
                "cache_dir": str(tmp_path / "cache"),
            },
            # no Asterisk here: AMI points at a closed port
            asterisk={"ami": {"port": free_port()}},
        )
    )
    engine = make_engine(url)
    city = build_console_city(make_session_factory(engine), config)
    engine.dispose()
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, config, city


def audit_rows(config: HotlineConfig, action: str) -> list[AuditEntry]:
    engine = make_engine(config.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
    engine.dispose()
    return rows


def test_login_search_and_play_a_recording_with_range_and_one_audit_row(console) -> None:  # type: ignore[no-untyped-def]
    client, config, city = console
    assert login(client, "boss").status_code == 303
    found = client.get("/calls", params={"caller": CALLERS["S1"][:6]})
    assert found.status_code == 200
    assert (
        f"/calls/{city.calls['S1']}" in found.text and CALLERS["S1"] in found.text
    )  # supervisor sees numbers
    assert f"/calls/{city.calls['S2']}" not in found.text
    page = client.get(f"/calls/{city.calls['S1']}")
    assert page.status_code == 200
    assert "S1 小区路灯坏了" in page.text and 'class="wave"' in page.text
    cached = sorted((config.cache_dir / "peaks").glob("*.json"))
    assert len(cached) == 2  # whole call and request, computed once ...
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert client.get(f"/calls/{city.calls['S1']}").status_code == 200
    assert [p.stat().st_mtime_ns for p in cached] == stamps  # ... and read back after that
    link = page.text.split('id="audio-call" src="')[1].split('"')[0]
    assert link.startswith("/media/") and "wav" not in link  # an id in a signed token, never a path
    full = client.get(link)
    assert full.status_code == 200 and full.content[:4] == b"RIFF"
    middle = len(full.content) // 2
    part = client.get(link, headers={"Range": f"bytes={middle}-{middle + 999}"})
    assert part.status_code == 206
    assert part.content == full.content[middle : middle + 1000]
    assert part.headers["content-range"] == f"bytes {middle}-{middle + 999}/{len(full.content)}"
    plays = audit_rows(config, "play")
    assert [(p.username, p.object_id) for p in plays] == [
        ("boss", city.calls["S1"])
    ]  # one per link
    assert CALLERS["S1"] not in (plays[0].detail or "") and "138****5678" in (plays[0].detail or "")
    assert plays[0].address  # from where
    # the download link is there for a supervisor and is audited as a download
    download = page.text.split('id="download-call" href="')[1].split('"')[0]
    got = client.get(download)
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    assert CALLERS["S1"] not in got.headers["content-disposition"]
    assert len(audit_rows(config, "download")) == 1


def test_links_expire_belong_to_their_session_and_missing_files_say_so(
    console, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    client, config, city = console
    login(client, "boss")
    page = client.get(f"/calls/{city.calls['S2']}")
    link = page.text.split('id="audio-request" src="')[1].split('"')[0]
    with TestClient(client.app, base_url="http://127.0.0.1") as other:
        login(other, "admin")
        stolen = other.get(link)
    assert stolen.status_code == 403 and stolen.content[:4] != b"RIFF"
    assert client.get(link[:-3] + "AAA").status_code == 403  # tampered signature
    missing = client.get(f"/calls/{city.missing_call}", headers={"accept": "text/html"})
    assert missing.status_code == 200 and "录音文件不存在" in missing.text
    later = datetime.now(UTC).timestamp() + config.web.link_seconds + 5
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(later)
    )
    expired = client.get(link, headers={"accept": "text/html"})
    assert expired.status_code == 403 and "链接已过期" in expired.text


def test_keyset_pages_walk_every_call_once_newest_first(console) -> None:  # type: ignore[no-untyped-def]
    client, config, _ = console
    engine = make_engine(config.database_url)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with unit_of_work(make_session_factory(engine)) as session:
        for i in range(120):  # same start time for pairs: the id breaks the tie
            session.add(
                Call(
                    uniqueid=f"900.{i}",
                    direction="inbound",
                    caller_number="15500000000",
                    started_at=start + timedelta(minutes=i // 2),
                )
            )
    engine.dispose()
    login(client, "boss")
    seen: list[int] = []
    url = "/calls?caller=155"
    while url:
        page = client.get(url)
        assert page.status_code == 200
        seen += [int(x.split('"')[0]) for x in page.text.split('<a href="/calls/')[1:]]
        url = (
            page.text.split('id="next-page" href="')[1].split('"')[0].replace("&amp;", "&")
            if "next-page" in page.text
            else ""
        )
    assert len(seen) == 120 and len(set(seen)) == 120
    assert seen == sorted(seen, reverse=True)  # ids rise with start time here


def test_three_rates_page_ranks_drills_down_and_exports_the_cli_files(console) -> None:  # type: ignore[no-untyped-def]
    client, config, _ = console
    login(client, "boss")
    week = periods.week_of(datetime.now(config.tz).date()).label
    top = client.get("/rates", params={"week": week})
    assert top.status_code == 200 and 'data-code="R"' in top.text
    district = client.get("/rates", params={"week": week, "unit": "D1"})
    assert 'data-code="S2"' in district.text and 'data-code="S1"' in district.text
    assert "样本不足" in district.text  # one valid callback < min_valid_callbacks (5)
    exported = client.get("/rates/export/three-rates.csv", params={"week": week})
    assert exported.status_code == 200
    engine = make_engine(config.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        report = three_rates_report(session, config, periods.iso_week(week))
    engine.dispose()
    target = Path(config.state_dir) / "expected.csv"
    tables.write_csv(report, target)
    assert exported.content == target.read_bytes()  # the very file `hotline report` writes
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][0] == "单位编码"
    xlsx = client.get("/rates/export/ranking.xlsx", params={"week": week})
    book = Path(config.state_dir) / "r.xlsx"
    book.write_bytes(xlsx.content)
    assert load_workbook(book).active["A1"].value == f"排名 {week}"
    trend = client.get("/rates/trend/D1")
    assert trend.status_code == 200 and trend.text.count("<polyline") >= 1
    assert client.get("/rates", params={"week": "2026-W99"}).status_code == 400
    month = datetime.now(config.tz).strftime("%Y-%m")
    with_seat = client.get("/rates", params={"month": month})
    assert with_seat.status_code == 200 and 'id="snail"' in with_seat.text
    assert client.get("/rates", params={"month": month, "unit": "D1"}).status_code == 200


def test_robot_page_shows_success_outcomes_queue_attempts_and_follow_ups(console) -> None:  # type: ignore[no-untyped-def]
    client, _, city = console
    login(client, "boss")
    page = client.get("/robot")
    assert page.status_code == 200
    assert 'id="placed">1<' in page.text and 'id="success">100.0%<' in page.text
    assert f'href="/calls/{city.survey_call}"' in page.text  # the attempt's survey recording
    assert "不满意" in page.text and "未解决" in page.text  # its answers
    follow = page.text.split('id="follow-ups"')[1]
    assert city.tickets["S2"] in follow and "群众反映未解决" in follow
    assert "<rect" in page.text  # the stacked outcome chart


def test_staff_sign_and_close_their_own_ticket_and_see_numbers_masked(console) -> None:  # type: ignore[no-untyped-def]
    client, _, city = console
    login(client, "s1")
    number = city.tickets["S1"]
    page = client.get(f"/tickets/{number}")
    assert page.status_code == 200 and "138****5678" in page.text and CALLERS["S1"] not in page.text
    token = csrf_of(client, f"/tickets/{number}")
    signed = client.post(f"/tickets/{number}/sign", data={"csrf": token}, follow_redirects=False)
    assert signed.status_code == 303
    empty = client.post(f"/tickets/{number}/close", data={"csrf": token, "text": " "})
    assert empty.status_code == 409 and "needs a reply" in empty.text  # the workflow's own check
    unsaid = client.post(f"/tickets/{number}/close", data={"csrf": token, "text": "已修复路灯"})
    assert unsaid.status_code == 409 and "closed_as" in unsaid.text  # how it ended is required
    closed = client.post(
        f"/tickets/{number}/close",
        data={"csrf": token, "text": "已修复路灯", "closed_as": "resolved"},
    )
    assert closed.status_code == 200 and "已办结" in closed.text
    calls = client.get("/calls")
    assert "138****5678" in calls.text and CALLERS["S1"] not in calls.text
    assert f"/calls/{city.calls['V1']}" in calls.text  # V1 is below S1
    assert f"/calls/{city.calls['S2']}" not in calls.text
    assert "/robot" in calls.text
    rates = client.get("/rates")
    assert 'data-code="S1"' in rates.text and 'data-code="S2"' not in rates.text
    staff_csv = client.get("/rates/export/three-rates.csv").content.decode("utf-8-sig")
    assert {row[0] for row in csv.reader(io.StringIO(staff_csv))} <= {"单位编码", "S1", "V1"}


def test_users_cli_adds_lists_disables_and_changes_passwords(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    path = str(write_config(tmp_path / "cfg", database={"url": url}))

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hotline.cli", "users", *args, "-c", path],
            input=stdin,
            capture_output=True,
            text=True,
        )

    two = f"{PASSWORD}\n{PASSWORD}\n"
    assert run("add", "lead", "--role", "admin", stdin=two).returncode == 0
    assert run("add", "lead", "--role", "admin", stdin=two).returncode == 2  # exists
    bad = run("add", "x1", "--role", "staff", stdin=two)
    assert bad.returncode == 2 and "need a department" in bad.stderr
    short = run("add", "x2", stdin="short\nshort\n")
    assert short.returncode == 2 and "at least 10" in short.stderr
    listed = run("list")
    assert "lead" in listed.stdout and "admin" in listed.stdout and "active" in listed.stdout
    config = load_config(Path(path))
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        assert login(client, "lead").status_code == 303
        assert client.get("/admin/audit").status_code == 200
        assert run("passwd", "lead", stdin="another pass 99\nanother pass 99\n").returncode == 0
        assert (
            client.get("/admin/audit", follow_redirects=False).status_code == 401
        )  # session ended
        assert login(client, "lead", "another pass 99").status_code == 303
        assert run("disable", "lead").returncode == 0
        assert client.get("/admin/audit", follow_redirects=False).status_code == 401
        assert login(client, "lead", "another pass 99").status_code == 401
    assert "disabled" in run("list").stdout


def test_deadline_lists_show_staff_their_own_units_tickets_only(console) -> None:  # type: ignore[no-untyped-def]
    client, config, city = console
    engine = make_engine(config.database_url)
    now = datetime.now(UTC)
    with unit_of_work(make_session_factory(engine)) as session:
        for code, due in (("S1", now - timedelta(hours=1)), ("S2", now + timedelta(hours=10))):
            session.execute(
                update(Ticket).where(Ticket.number == city.tickets[code]).values(due_at=due)
            )
    engine.dispose()
    login(client, "boss")
    boss = client.get("/rates").text.split('id="deadlines-', 1)[1]
    assert city.tickets["S1"] in boss and city.tickets["S2"] in boss
    assert "超期" in boss and "督办" in boss
    with TestClient(client.app, base_url="http://127.0.0.1") as staff:
        login(staff, "s1")
        mine = staff.get("/rates").text.split('id="deadlines-', 1)[1]
        exported = staff.get("/rates/export/overdue.csv").content.decode("utf-8-sig")
    assert city.tickets["S1"] in mine and city.tickets["S2"] not in mine
    assert city.tickets["S1"] in exported and city.tickets["S2"] not in exported
