"""每月一题 adopted and followed (issue 23, items 4 and 8): on /hotspots, from the CLI,
and through the monthly run; and the daily early warning panel on /hotspots.

The page tests use the console city with a stored run of 2025-10
(`tests/support/hotspot_run`); the CLI and the run tests a store of their own with a
small city of fixed dates (2023-2025), never today.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from analysis import governance
from core.config import HotlineConfig
from core.vocabulary import Level, RequestType
from dashboard.app import create_app
from dashboard.hotspot_governance import adopted_rows
from dashboard.hotspot_summary import read_summary
from db.migrate import upgrade
from db.models import AnalysisRun, Department, GovernanceTopic, HotspotFlag, Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from hotline import monthly
from hotline.cli import support as cli_support
from hotline.cli.main import app as cli
from tests.support.config import write_config
from tests.support.console_city import csrf_of, login
from tests.support.console_site import audit_rows, console_site
from tests.support.hotspot_run import MONTH, StoredRun, store_run

TZ = ZoneInfo("Asia/Shanghai")
_numbers = itertools.count(1)


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
    start = html.index(f'<h2 id="{anchor}"')
    end = html.find("<h2 ", start + 1)
    return html[start : end if end > 0 else len(html)]


def _topics(sessions: sessionmaker[Session]) -> list[GovernanceTopic]:
    with unit_of_work(sessions) as session:
        rows = list(session.scalars(select(GovernanceTopic).order_by(GovernanceTopic.id)))
        session.expunge_all()
    return rows


def _adopt(client: TestClient, token: str, **fields: str):  # type: ignore[no-untyped-def]
    form = {
        "csrf": token,
        "month": MONTH,
        "title": "暖气不热专项治理",
        "category": "水电气暖",
        "keywords": "暖气、不热",
        "lead_unit": "D2",
        "start_month": "2025-11",
        "goal": "来电较基线下降 30%",
        **fields,
    }
    return client.post("/hotspots/governance/adopt", data=form, follow_redirects=False)


# ---- the page ---------------------------------------------------------------------------


def test_each_candidate_has_a_prefilled_adopt_form_for_supervisors(site) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = site
    html = _as(client, "boss").get(f"/hotspots?month={MONTH}").text
    candidates = _section(html, "candidates")
    assert candidates.count('action="/hotspots/governance/adopt"') == 3  # 2 categories + 1 topic
    # a topic candidate: its run topic's terms as keywords; a whole category: none
    heating = candidates[candidates.index('id="adopt-c-0"') : candidates.index('id="adopt-c-1"')]
    assert 'value="暖气不热（水电气暖）专项治理"' in heating
    assert 'name="keywords" value="暖气、不热"' in heating
    assert 'name="category" value="水电气暖"' in heating
    assert 'name="start_month" value="2025-11"' in heating  # the month after the shown one
    building = candidates[candidates.index('id="adopt-c-1"') :]
    assert 'value="城乡建设专项治理"' in building and 'name="keywords" value=""' in building
    units = re.findall(r'<option value="([A-Z0-9]+)">', heating)
    assert units == ["D1", "D2", "D3"]  # level 3 only: no city, township or village


def test_adopting_writes_the_topic_and_an_audit_row_and_lists_it(site) -> None:  # type: ignore[no-untyped-def]
    client, _, sessions = site
    _as(client, "boss")
    answer = _adopt(client, csrf_of(client, f"/hotspots?month={MONTH}"))
    assert answer.status_code == 303, answer.text
    (topic,) = _topics(sessions)
    assert answer.headers["location"] == f"/hotspots?month={MONTH}#topic-{topic.id}"
    assert (topic.title, topic.category, topic.start_month) == (
        "暖气不热专项治理",
        "水电气暖",
        "2025-11",
    )
    assert json.loads(topic.keywords) == ["暖气", "不热"]
    assert topic.goal == "来电较基线下降 30%" and topic.created_by == "boss"
    (entry,) = audit_rows(sessions, "governance_adopt")
    assert (entry.username, entry.object_kind, entry.object_id) == (
        "boss",
        "governance_topic",
        topic.id,
    )
    assert entry.detail and "lead D2" in entry.detail
    listed = _section(client.get(f"/hotspots?month={MONTH}").text, "governance")
    mine = listed[listed.index(f'id="topic-{topic.id}"') :]
    assert "暖气不热专项治理" in mine and "unit D2" in mine and "来电较基线下降 30%" in mine
    assert "本次运行尚无此题的月份" in mine  # adopted after the run: no months yet
    assert f'id="end-{topic.id}"' in mine


def test_ending_notes_the_end_month_on_the_goal_and_is_audited(site) -> None:  # type: ignore[no-untyped-def]
    client, _, sessions = site
    _as(client, "boss")
    token = csrf_of(client, f"/hotspots?month={MONTH}")
    _adopt(client, token)
    (topic,) = _topics(sessions)
    early = client.post(
        f"/hotspots/governance/{topic.id}/end",
        data={"csrf": token, "end_month": "2025-10", "month": MONTH},
        follow_redirects=False,
    )
    assert early.status_code == 400 and "before the start month" in early.text
    done = client.post(
        f"/hotspots/governance/{topic.id}/end",
        data={"csrf": token, "end_month": "2026-02", "month": MONTH},
        follow_redirects=False,
    )
    assert done.status_code == 303
    (ended,) = _topics(sessions)
    assert governance.end_month(ended) == "2026-02"
    assert governance.goal_text(ended) == "来电较基线下降 30%"
    assert [e.object_id for e in audit_rows(sessions, "governance_end")] == [topic.id]
    listed = _section(client.get(f"/hotspots?month={MONTH}").text, "governance")
    assert "已结束 ended 2026-02" in listed and f'id="end-{topic.id}"' not in listed
    missing = client.post(
        "/hotspots/governance/999999/end",
        data={"csrf": token, "end_month": "2026-02"},
        follow_redirects=False,
    )
    assert missing.status_code == 404


def test_a_refused_adoption_says_why_and_writes_nothing(site) -> None:  # type: ignore[no-untyped-def]
    client, _, sessions = site
    _as(client, "boss")
    token = csrf_of(client, f"/hotspots?month={MONTH}")
    unknown = _adopt(client, token, lead_unit="S1")  # a township is no lead unit
    assert unknown.status_code == 400 and "lead unit 'S1'" in unknown.text
    assert _adopt(client, token, start_month="2025-13").status_code == 400
    assert _adopt(client, "forged").status_code == 403
    assert _topics(sessions) == [] and audit_rows(sessions, "governance_adopt") == []
    assert _adopt(client, token).status_code == 303
    again = _adopt(client, token)
    assert again.status_code == 400 and "already adopted from 2025-11" in again.text
    assert len(_topics(sessions)) == 1


@pytest.mark.parametrize("username", ["s1", "admin"])
def test_only_supervisors_adopt_or_end(site, username: str) -> None:  # type: ignore[no-untyped-def]
    client, stored, sessions = site
    _as(client, username)
    token = csrf_of(client, f"/tickets/{stored.tickets['S1']}")
    assert _adopt(client, token).status_code == 403
    ended = client.post(
        "/hotspots/governance/1/end",
        data={"csrf": token, "end_month": "2026-01"},
        follow_redirects=False,
    )
    assert ended.status_code == 403
    assert _topics(sessions) == []
    if username == "admin":  # admins read the page, without the forms
        html = client.get(f"/hotspots?month={MONTH}").text
        assert "冬季供暖不热专项治理" in html and "/hotspots/governance/adopt" not in html


def test_the_runs_progress_shows_with_a_chart(site) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = site
    html = _as(client, "boss").get(f"/hotspots?month={MONTH}").text
    listed = _section(html, "governance")
    assert "冬季供暖不热专项治理" in listed and "市住建局" in listed  # tracked by the run
    assert "-27.0%" in listed and "-20.0%" in listed
    assert "band-chart" in listed and "基线 baseline" in listed


# ---- the daily early warning --------------------------------------------------------------


def _daily(
    sessions: sessionmaker[Session], day: date, area_id: int, flagged: bool = True, **flag: object
) -> int:
    with unit_of_work(sessions) as session:
        run = AnalysisRun(
            month=day.strftime("%Y-%m"), kind="daily", day=day, config="{}",
            code_version="test", started_at=datetime(2025, 11, 3, tzinfo=UTC),
            finished_at=datetime(2025, 11, 3, 0, 5, tzinfo=UTC), status="done",
            summary=json.dumps({"day": day.isoformat(), "flags": int(flagged)}),
        )  # fmt: skip
        session.add(run)
        session.flush()
        if flagged:
            values: dict[str, object] = {
                "run_id": run.id, "category": "劳动纠纷", "area_id": area_id,
                "level": "township", "period": "day", "period_start": day, "method": "ears_c2",
                "observed": 9, "expected": 1.4, "upper": 4.2, "p_value": 0.001, "state": "watch",
            }  # fmt: skip
            values.update(flag)
            session.add(HotspotFlag(**values))
        return run.id


def test_the_daily_panel_shows_the_newest_daily_runs_flags(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, sessions = site
    html = _as(client, "boss").get(f"/hotspots?month={MONTH}").text
    assert 'id="no-daily"' in html
    _daily(sessions, date(2025, 11, 1), stored.units["S1"], category="城市管理")
    _daily(sessions, date(2025, 11, 2), stored.units["S1"])
    html = client.get(f"/hotspots?month={MONTH}").text
    daily = _section(html, "daily")
    assert "每日预警" in daily and "2025-11-02" in daily and 'data-day="2025-11-02"' in daily
    row = daily[daily.index('class="daily-flag"') :]
    assert "劳动纠纷" in row and "unit S1" in row and "ears_c2" in row
    assert 'class="num observed">9<' in row and "1.4" in row
    assert "城市管理" not in daily  # the older day's flag is not shown
    # the month without a finished run still shows the day's warning
    other = client.get("/hotspots?month=2025-11").text
    assert 'id="no-run"' in other and 'data-day="2025-11-02"' in other


def test_a_quiet_day_says_so(site) -> None:  # type: ignore[no-untyped-def]
    client, stored, sessions = site
    _daily(sessions, date(2025, 11, 2), stored.units["S1"])
    _daily(sessions, date(2025, 11, 3), stored.units["S1"], flagged=False)
    html = _as(client, "boss").get(f"/hotspots?month={MONTH}").text
    daily = _section(html, "daily")
    assert "2025-11-03 无预警" in daily and "daily-flag" not in daily


# ---- a small city of our own: the CLI and the monthly run --------------------------------


def _city(session: Session) -> dict[str, Department]:
    city = Department(code="C", name="市", level=Level.CITY)
    units = {
        "C": city,
        "D1": Department(code="D1", name="东区", level=Level.DISTRICT, parent=city),
        "HR": Department(code="HR", name="市人社局", level=Level.DISTRICT, parent=city),
    }
    units["D1S1"] = Department(
        code="D1S1", name="幸福街道", level=Level.TOWNSHIP, parent=units["D1"]
    )
    session.add_all(units.values())
    session.flush()
    return units


def _tickets(session: Session, area: Department) -> None:
    """劳动纠纷 since 2023-07: four a month, six in Octobers; 城乡建设 two a month."""
    month = date(2023, 7, 1)
    while month < date(2025, 11, 1):
        wages = 6 if month.month == 10 else 4
        for category, count, text in (
            ("劳动纠纷", wages, "老板拖欠工资三个月不给"),
            ("城乡建设", 2, "道路破损坑洼"),
        ):
            for i in range(count):
                at = datetime(month.year, month.month, 3 + 5 * i, 10, tzinfo=TZ).astimezone(UTC)
                session.add(
                    Ticket(
                        number=f"G{next(_numbers):09d}",
                        caller_number=f"139{next(_numbers):08d}",
                        category=category,
                        category_source="staff",
                        description=text,
                        area_id=area.id,
                        area_source="import",
                        accepted_at=at,
                        request_type=RequestType.COMPLAINT,
                    )
                )
        month = (month + timedelta(days=32)).replace(day=1)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    with unit_of_work(sessions) as session:
        _city(session)
    return write_config(
        tmp_path / "cfg", database={"url": url}, paths={"state_dir": str(tmp_path / "var")}
    )


def _cli(config_file: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        cli, ["governance", *args, "-c", str(config_file)], env={"COLUMNS": "240"}
    )


ADOPT = ("adopt", "--title", "欠薪治理", "--category", "劳动纠纷", "--keywords", "工资,欠薪",
         "--lead-unit", "HR", "--start", "2025-09", "--goal", "来电下降三成")  # fmt: skip


def test_the_cli_adopts_and_lists(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # xdist's workers say COLUMNS=80: the table folds its cells, but the test reads whole
    # keys and titles on one line, as a wide terminal shows them
    monkeypatch.setattr(cli_support.console, "width", 200)
    empty = _cli(config_file, "list")
    assert empty.exit_code == 0 and "no topic adopted yet" in empty.output
    done = _cli(config_file, *ADOPT)
    assert done.exit_code == 0, done.output
    assert "adopted from 2025-09: 欠薪治理" in done.output
    listed = _cli(config_file, "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if "欠薪治理" in line)
    assert "HR" in row and "2025-09" in row and "劳动纠纷" in row
    assert "no run" in listed.output  # nothing analysed yet: no progress to show


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (("--lead-unit", "NOPE"), "lead unit 'NOPE': no district or city bureau"),
        (("--lead-unit", "D1S1"), "lead unit 'D1S1'"),
        (("--start", "2025-9x"), "start month '2025-9x': expected YYYY-MM"),
        (("--start", "2025-13"), "expected YYYY-MM"),
        (("--title", "  "), "title: required"),
    ],
)
def test_the_cli_refuses_in_one_line(config_file: Path, change: tuple[str, str], said: str) -> None:
    args = list(ADOPT)
    args[args.index(change[0]) + 1] = change[1]
    refused = _cli(config_file, *args)
    assert refused.exit_code == 2
    assert said in refused.output and len(refused.output.strip().splitlines()) == 1


def test_the_cli_refuses_a_duplicate_title_for_the_same_start_month(config_file: Path) -> None:
    assert _cli(config_file, *ADOPT).exit_code == 0
    again = _cli(config_file, *ADOPT)
    assert again.exit_code == 2 and "'欠薪治理': already adopted from 2025-09" in again.output
    later = list(ADOPT)
    later[later.index("--start") + 1] = "2026-01"
    assert _cli(config_file, *later).exit_code == 0  # the same title, another start: fine


def test_an_adopted_topic_is_tracked_by_the_monthly_run(store: sessionmaker[Session]) -> None:
    with unit_of_work(store) as session:
        units = _city(session)
        _tickets(session, units["D1S1"])
        topic_id = governance.adopt(
            session, title="欠薪治理", category="劳动纠纷", keywords="工资", lead_unit="HR",
            start_month="2025-09", goal="来电下降三成", by="boss",
        ).id  # fmt: skip
        later_id = governance.adopt(
            session, title="道路治理", category="城乡建设", keywords="", lead_unit="D1",
            start_month="2025-11", goal=None, by="boss",
        ).id  # fmt: skip
    config = HotlineConfig.model_validate({"database": {"url": "sqlite://"}})
    result = monthly.analyse_month(store, config, "2025-10")
    with unit_of_work(store) as session:
        run = session.get(AnalysisRun, result.run_id)
        assert run is not None and run.status == "done"
        summary, problem = read_summary(run.id, run.summary)
        assert problem == ""
        (tracked,) = summary.governance  # the topic starting after the month is not yet
        assert (tracked.id, tracked.title, tracked.lead_unit) == (topic_id, "欠薪治理", "市人社局")
        assert [m.month for m in tracked.months] == ["2025-09", "2025-10"]
        september, october = tracked.months
        assert september.observed == 4 and september.baseline == 4.0 and september.change == 0.0
        assert october.observed == 6 and october.baseline == 6.0  # the same month, seasonally
        assert october.method == "same_month"
        rows = {row.id: row for row in adopted_rows(session, summary)}
        assert rows[topic_id].progress == tracked and "band-chart" in rows[topic_id].chart
        assert rows[later_id].progress is None and rows[later_id].chart == ""
        month, progress = governance.latest_progress(session)
        assert month == "2025-10" and progress[topic_id]["months"][-1]["observed"] == 6
