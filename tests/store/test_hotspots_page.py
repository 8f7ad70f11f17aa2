"""/hotspots?month= (issue 23, item 8): a stored monthly run as supervisors read it.

The console city with a run of 2025-10 written the way the run writer stores one
(`tests/support/hotspot_run`): the page shows its lines, grid, flags, topics,
candidates, signals, governance and KB figures; roles are enforced; a supervisor's
confirm or dismiss is stored, audited and moves the precision; the grid and the
flags download as CSV and XLSX with the rows the page shows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from dashboard.app import create_app
from db.models import AnalysisRun, HotspotFlag
from db.session import unit_of_work
from tests.support.console_city import csrf_of, login
from tests.support.console_site import audit_rows, console_site
from tests.support.hotspot_run import (
    HEATING_LINE,
    LABOUR_LINE,
    MONTH,
    SECRET_TEXT,
    StoredRun,
    store_run,
)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, StoredRun, sessionmaker[Session]]]:
    config, _, city, sessions = console_site(tmp_path)
    stored = store_run(sessions, city)
    with TestClient(create_app(config, sessions), base_url="http://127.0.0.1") as client:
        yield client, stored, sessions


def _as(client: TestClient, username: str) -> TestClient:
    assert login(client, username).status_code == 303
    return client


def _section(html: str, anchor: str) -> str:
    """The page's text from one h2 to the next."""
    start = html.index(f'<h2 id="{anchor}"')
    end = html.find("<h2 ", start + 1)
    return html[start : end if end > 0 else len(html)]


def _flag(sessions: sessionmaker[Session], flag_id: int) -> HotspotFlag:
    with unit_of_work(sessions) as session:
        flag = session.get(HotspotFlag, flag_id)
        assert flag is not None
        session.expunge(flag)
    return flag


def test_the_page_shows_the_newest_finished_run_of_the_month(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, _ = site
    html = _as(client, "boss").get(f"/hotspots?month={MONTH}").text
    assert LABOUR_LINE in html and HEATING_LINE in html
    assert "旧的运行" not in html  # the older run of the same month is not shown
    assert '<option value="2025-10" selected>' in html
    assert '<option value="2025-11"' not in html  # its only run failed
    grid = _section(html, "grid")
    assert "<th>unit D1</th>" in grid and "<th>unit D3</th>" in grid
    assert "×2.40" in grid  # 30 / 12.5
    labour, heating = stored.flags["labour"], stored.flags["heating"]
    # the township flag marks its district's cell, the district flag its own
    assert re.search(rf'class="r-hot flagged" data-district="unit D1"[^>]*>[^⚑]*×2.40</b>\s*'
                     rf'<a class="flag-mark" href="#flag-{labour}"', grid)  # fmt: skip
    assert f'href="#flag-{heating}"' in grid
    assert grid.count("flag-mark") == 2


def test_flags_list_alerts_first_with_their_band_chart(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, _ = site
    flags = _section(_as(client, "boss").get(f"/hotspots?month={MONTH}").text, "flags")
    labour, heating = stored.flags["labour"], stored.flags["heating"]
    assert flags.index(f'id="flag-{labour}"') < flags.index(f'id="flag-{heating}"')
    alert = flags[flags.index(f'id="flag-{labour}"') : flags.index(f'id="flag-{heating}"')]
    assert "预警" in alert and "unit S1" in alert and "2025-10-06" in alert
    assert 'class="num observed">16<' in alert and "7.6" in alert
    assert "band-chart" in alert and '<polygon points="' in alert  # the expected band
    assert alert.count('class="above"') == 2  # the two weeks over the threshold
    assert f'id="confirm-{labour}"' in alert and "未核实" in alert
    assert "关注" in flags[flags.index(f'id="flag-{heating}"') :]


def test_topics_candidates_signals_governance_and_kb(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, _ = site
    html = _as(client, "boss").get(f"/hotspots?month={MONTH}").text
    topics = _section(html, "topics")
    assert topics.index("拖欠工资") < topics.index("社保未缴")  # by size within a category
    new_row = topics[topics.index("拖欠工资") : topics.index("社保未缴")]
    assert "新 new" in new_row and "工资、拖欠、工地" in new_row
    assert f'<a href="/tickets/{stored.tickets["S1"]}">' in new_row
    assert "S1 路灯不亮" in new_row  # a supervisor reads the typical ticket's text
    assert f'<a href="/tickets/{stored.tickets["secret"]}">' in new_row
    assert "（保密）" in new_row and SECRET_TEXT not in html
    candidates = _section(html, "candidates")
    assert candidates.index("暖气不热") < candidates.index("城乡建设") and "31.0%" in candidates
    by_topic = candidates[candidates.index('id="topic-candidates-table"') :]
    assert "物业维修" in by_topic and "无数据" in by_topic  # no valid callbacks: no share
    signals = _section(html, "signals")
    assert "evidence for review, not a penalty" in signals.lower()
    rows = re.findall(r'data-kind="([a-z_]+)"', signals)
    assert rows == ["contradicted_resolved", "ping_pong"]  # flagged first
    others = signals[signals.index('<details id="signals-unflagged">') :]
    assert "ping_pong" in others and "contradicted_resolved" not in others
    assert f'<a href="/tickets/{stored.tickets["V1"]}">' in signals and "20 / 50" in signals
    assert "unit S2 ↔ unit S1" in signals
    governance = _section(html, "governance")
    assert "冬季供暖不热专项治理" in governance and "-27.0%" in governance
    kb = _section(html, "kb")
    assert "暖气不热找谁" in kb and "50.0%" in kb and "电动车充电桩安装" in kb


def test_a_part_of_the_summary_in_another_shape_blanks_that_part_only(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, sessions = site
    with unit_of_work(sessions) as session:
        run = session.get(AnalysisRun, stored.run_id)
        assert run is not None and run.summary
        summary = json.loads(run.summary)
        summary["kb"] = {"entries": "not a list"}
        run.summary = json.dumps(summary, ensure_ascii=False)
    html = _as(client, "boss").get(f"/hotspots?month={MONTH}").text
    assert 'id="summary-problem"' in html and "kb.entries" in html
    assert LABOUR_LINE in html and "暖气不热找谁" not in html
    assert "本月无推荐" in html


@pytest.mark.parametrize(
    ("month", "said"),
    [
        ("2025-11", "失败 failed"),  # the month's only run failed
        ("2024-01", "尚无完成的月度分析"),
    ],
)
def test_a_month_without_a_finished_run_says_how_to_make_one(site, month: str, said: str) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = site
    answer = _as(client, "boss").get(f"/hotspots?month={month}")
    assert answer.status_code == 200
    assert 'id="no-run"' in answer.text and said in answer.text
    assert f"hotline analyse --month {month}" in answer.text
    assert 'id="hotspot-grid"' not in answer.text


def test_without_a_month_the_newest_month_with_a_run_is_shown(site) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = site
    html = _as(client, "boss").get("/hotspots").text
    assert LABOUR_LINE in html and "热点研判 2025-10" in html


def test_an_empty_store_says_to_run_the_analysis(tmp_path: Path) -> None:
    config, _, _, sessions = console_site(tmp_path)
    with TestClient(create_app(config, sessions), base_url="http://127.0.0.1") as client:
        html = _as(client, "boss").get("/hotspots").text
    assert "尚无任何月度分析" in html and "hotline analyse --month YYYY-MM" in html


def test_a_malformed_month_is_refused(site) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = site
    assert _as(client, "boss").get("/hotspots?month=2025-13").status_code == 400
    assert client.get("/hotspots/export/grid.csv?month=10-2025").status_code == 400


def test_staff_are_refused_and_admins_read_without_ticket_text(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, _ = site
    anonymous = client.get(
        f"/hotspots?month={MONTH}", headers={"Accept": "text/html"}, follow_redirects=False
    )
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    _as(client, "s1")
    assert client.get(f"/hotspots?month={MONTH}").status_code == 403
    assert client.get(f"/hotspots/export/flags.csv?month={MONTH}").status_code == 403
    token = csrf_of(client, f"/tickets/{stored.tickets['S1']}")
    refused = client.post(
        f"/hotspots/flags/{stored.flags['labour']}/review",
        data={"csrf": token, "decision": "confirmed"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    client.cookies.clear()
    html = _as(client, "admin").get(f"/hotspots?month={MONTH}").text
    assert LABOUR_LINE in html
    assert f'<a href="/tickets/{stored.tickets["S1"]}">' in html
    assert "S1 路灯不亮" not in html and "（保密）" not in html  # numbers only for admins
    assert 'id="confirm-' not in html  # admins read; supervisors review
    token = csrf_of(client, f"/hotspots?month={MONTH}")
    answer = client.post(
        f"/hotspots/flags/{stored.flags['labour']}/review",
        data={"csrf": token, "decision": "confirmed"},
        follow_redirects=False,
    )
    assert answer.status_code == 403


def _review(client: TestClient, flag_id: int, decision: str, token: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/hotspots/flags/{flag_id}/review",
        data={"csrf": token, "decision": decision},
        follow_redirects=False,
    )


def _precision(client: TestClient) -> str:
    html = client.get(f"/hotspots?month={MONTH}").text
    found = re.search(r'id="precision">.*?<b>([^<]+)</b>', html, re.S)
    assert found
    return found.group(1)


def test_confirm_and_dismiss_are_stored_audited_and_move_the_precision(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, sessions = site
    labour, heating = stored.flags["labour"], stored.flags["heating"]
    _as(client, "boss")
    assert _precision(client) == "无数据"  # nothing reviewed yet
    token = csrf_of(client, f"/hotspots?month={MONTH}")
    answer = _review(client, labour, "confirmed", token)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/hotspots?month={MONTH}#flag-{labour}"
    flag = _flag(sessions, labour)
    assert (flag.review, flag.reviewed_by) == ("confirmed", "boss") and flag.reviewed_at
    assert _precision(client) == "100.0%"
    assert _review(client, heating, "dismissed", token).status_code == 303
    assert _precision(client) == "50.0%"
    html = client.get(f"/hotspots?month={MONTH}").text
    review = html[html.index(f'id="review-{labour}"') :]
    assert review.startswith(f'id="review-{labour}"><b class="confirmed">已确认')
    assert f'id="confirm-{labour}" disabled' in html
    entries = audit_rows(sessions, "hotspot_review")
    assert [(e.username, e.object_kind, e.object_id) for e in entries] == [
        ("boss", "hotspot_flag", labour),
        ("boss", "hotspot_flag", heating),
    ]
    assert entries[0].detail and entries[0].detail.startswith("confirmed: 劳动纠纷")
    assert entries[1].detail and entries[1].detail.startswith("dismissed: 水电气暖")


def test_a_review_needs_the_token_a_known_decision_and_a_flag(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, sessions = site
    labour = stored.flags["labour"]
    _as(client, "boss")
    token = csrf_of(client, f"/hotspots?month={MONTH}")
    assert _review(client, labour, "confirmed", "forged").status_code == 403
    assert _review(client, labour, "maybe", token).status_code == 400
    assert _review(client, 999999, "confirmed", token).status_code == 404
    assert _flag(sessions, labour).review is None
    assert audit_rows(sessions, "hotspot_review") == []


def _csv(client: TestClient, which: str) -> list[list[str]]:
    answer = client.get(f"/hotspots/export/{which}.csv?month={MONTH}")
    assert answer.status_code == 200, answer.text
    assert f"hotspots-{which}-{MONTH}.csv" in answer.headers["content-disposition"]
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"), newline="")))


def test_the_grid_and_the_flags_download_as_csv_and_xlsx(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, sessions = site
    _as(client, "boss")
    grid = _csv(client, "grid")
    assert grid[0] == ["类别", "旗区", "观测", "期望", "观测/期望", "标记"]
    assert len(grid) == 1 + 5
    assert ["劳动纠纷", "unit D1", "30", "12.5", "2.4", f"预警 #{stored.flags['labour']}"] in grid
    assert [
        "水电气暖",
        "unit D2",
        "41",
        "25.0",
        "1.64",
        f"关注 #{stored.flags['heating']}",
    ] in grid
    flags = _csv(client, "flags")
    assert flags[0][:3] == ["编号", "类别", "区域"]
    assert [row[:3] for row in flags[1:]] == [
        [str(stored.flags["labour"]), "劳动纠纷", "unit S1"],
        [str(stored.flags["heating"]), "水电气暖", "unit D2"],
    ]
    answer = client.get(f"/hotspots/export/flags.xlsx?month={MONTH}")
    assert answer.status_code == 200
    sheet = load_workbook(io.BytesIO(answer.content)).active
    rows = [list(r) for r in sheet.iter_rows(min_row=3, values_only=True)]
    assert [(r[0], r[1], r[7]) for r in rows] == [
        (stored.flags["labour"], "劳动纠纷", 16),
        (stored.flags["heating"], "水电气暖", 41),
    ]
    grid_book = client.get(f"/hotspots/export/grid.xlsx?month={MONTH}")
    grid_rows = list(
        load_workbook(io.BytesIO(grid_book.content)).active.iter_rows(values_only=True)
    )
    assert len(grid_rows) == 2 + 5
    exports = [e.detail for e in audit_rows(sessions, "export")]
    assert f"hotspots grid {MONTH} run {stored.run_id}" in exports
    assert f"hotspots flags {MONTH} run {stored.run_id}" in exports
    assert client.get("/hotspots/export/grid.csv?month=2024-01").status_code == 404
    assert client.get(f"/hotspots/export/topics.csv?month={MONTH}").status_code == 404
