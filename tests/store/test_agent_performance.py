"""Agents' performance (issue 21 item 4): a hand-built day, every figure exact, on each store.

The day is 2026-12-04 in Asia/Shanghai. queue_log lines go through the reader's
own `keep`, which records the agents' states they imply, so the states are the
ones production would write. Traps:

- c2 is answered by wang, handed over with ATTENDEDTRANSFER and answered again by
  li (CONNECT by the second agent): one answer and one handled part each;
- c3 is answered by wang at 23:58 and ends at 00:03 the next day: counted on the
  day it was answered with its whole talk (300 s), while the time on call of the
  states is clipped at midnight (120 s on the 4th, 180 s on the 5th);
- li pauses for training at 11:04:25 and never comes back: the pause is cut at
  the end of the period; zhao's meeting began the evening before and is counted
  from midnight;
- c4 is in the English queue, whose wrap-up is 30 s (the others' 10 s);
- qian has no calls and no states: listed with zeros and no rate.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents.performance import (
    ScoreError,
    agent_figures,
    answered_by,
    check_items,
    day_period,
    period_of,
    save_score,
    scores_of,
    team_figures,
)
from agents.queue_log import Chunk, parse_line
from agents.store import SCRIPTED, bind_seat, keep
from core.periods import PeriodError
from core.vocabulary import Handling
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.models import Agent, Call, QualityScore, QueueLogEntry, User, ValidCallback
from db.session import unit_of_work
from db.tickets import create_ticket
from tests.support.console_city import PASSWORD, ConsoleCity, csrf_of, login
from tests.support.console_site import audit_rows, console_site

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
WRAPUP = {"hotline-agents": 10, "hotline-agents-en": 30}
FUTURE = datetime(2030, 1, 1, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A local wall-clock time in December 2026, as UTC."""
    return datetime(2026, 12, day, hour, minute, second, tzinfo=ZONE).astimezone(UTC)


def line(when: datetime, callid: str, queue: str, agent: str, event: str, *data: object) -> str:
    return "|".join([str(int(when.timestamp())), callid, queue, agent, event, *map(str, data)])


Q, EN = "hotline-agents", "hotline-agents-en"
LINES = [
    # zhao logs in the evening before and goes to a meeting until 00:30
    line(at(3, 22), "NONE", EN, "zhao", "ADDMEMBER"),
    line(at(3, 23), "NONE", EN, "zhao", "PAUSE", "meeting"),
    line(at(4, 0, 30), "NONE", EN, "zhao", "UNPAUSE"),
    line(at(4, 8), "NONE", Q, "wang", "ADDMEMBER"),
    # c1: wang, 120 s, completed by the caller
    line(at(4, 9), "c1", Q, "NONE", "ENTERQUEUE", "", "13900000001", "1"),
    line(at(4, 9, 0, 5), "c1", Q, "wang", "CONNECT", 5, "c1b", 2),
    line(at(4, 9, 2, 5), "c1", Q, "wang", "COMPLETECALLER", 5, 120, 1),
    # c4: zhao in the English queue (wrap-up 30 s), then logs out at noon
    line(at(4, 9, 9, 50), "c4", EN, "NONE", "ENTERQUEUE", "", "13900000004", "1"),
    line(at(4, 9, 10), "c4", EN, "zhao", "CONNECT", 10, "c4b", 4),
    line(at(4, 9, 15), "c4", EN, "zhao", "COMPLETEAGENT", 10, 300, 1),
    # wang's phone rings 15 s and nobody answers
    line(at(4, 9, 30), "c5", Q, "wang", "RINGNOANSWER", 15000),
    line(at(4, 9, 31), "c5", Q, "NONE", "ABANDON", 1, 1, 60),
    line(at(4, 10), "NONE", Q, "wang", "PAUSE", "break"),
    line(at(4, 10, 15), "NONE", Q, "wang", "UNPAUSE"),
    line(at(4, 10, 30), "NONE", Q, "li", "ADDMEMBER"),
    # c2: wang 60 s, attended transfer, li answers it and talks 180 s
    line(at(4, 10, 59, 50), "c2", Q, "NONE", "ENTERQUEUE", "", "13900000002", "1"),
    line(at(4, 11), "c2", Q, "wang", "CONNECT", 10, "c2b", 1),
    line(at(4, 11, 1), "c2", Q, "wang", "ATTENDEDTRANSFER", "BRIDGE", "b-1", 10, 60, 1),
    line(at(4, 11, 1, 20), "c2", Q, "li", "CONNECT", 30, "c2c", 2),
    line(at(4, 11, 4, 20), "c2", Q, "li", "COMPLETEAGENT", 30, 180, 1),
    line(at(4, 11, 4, 25), "NONE", Q, "li", "PAUSE", "training"),
    line(at(4, 12), "NONE", EN, "zhao", "REMOVEMEMBER"),
    # c3: wang answers at 23:58, the call ends at 00:03 the next day
    line(at(4, 23, 57, 55), "c3", Q, "NONE", "ENTERQUEUE", "", "13900000003", "1"),
    line(at(4, 23, 58), "c3", Q, "wang", "CONNECT", 3, "c3b", 2),
    line(at(5, 0, 3), "c3", Q, "wang", "COMPLETECALLER", 3, 300, 1),
]


def build_day(store: sessionmaker[Session]) -> dict[str, int]:
    """The agents, the day's queue_log (and the states it implies), tickets, callbacks."""
    ids: dict[str, int] = {}
    with unit_of_work(store) as session:
        for name, team, queues in (
            ("wang", "一组", [Q]),
            ("li", "一组", [Q]),
            ("zhao", "二组", [EN]),
            ("qian", "二组", [Q]),
        ):
            user = User(username=name, password_hash="!", role="agent")
            session.add(user)
            session.flush()
            ids[name] = bind_seat(session, user, [], SCRIPTED, queues, team).id
    with unit_of_work(store) as session:
        events = [e for text in LINES if (e := parse_line(text)) is not None]
        keep(session, Chunk(events, 1, 100))
    with unit_of_work(store) as session:

        def ticket(
            agent: str, accepted: datetime, handling: Handling, call: str | None = None
        ) -> int:
            made = create_ticket(
                session,
                caller_number="13900000009",
                local_day=accepted.astimezone(ZONE).date(),
                accepted_at=accepted,
                origin_uniqueid=call,
            )
            made.agent_id, made.handling = ids[agent], handling
            session.flush()
            return made.id

        t0 = ticket("wang", at(1, 10), Handling.DISPATCH)  # filed days before
        t1 = ticket("wang", at(4, 9, 3), Handling.DIRECT, "c1")
        t2 = ticket("li", at(4, 11, 5), Handling.DISPATCH, "c2")
        t3 = ticket("wang", at(4, 23, 59), Handling.DISPATCH, "c3")
        for ticket_id, surveyed, answers in (
            (t0, at(4, 15), (1, 2, 2)),  # contacted, not resolved, basically satisfied
            (t1, at(4, 16), (1, 1, 1)),
            (t2, at(4, 17), (2, 2, 3)),
            (t3, at(5, 10), (1, 1, 1)),  # the next day's
        ):
            contacted, resolved, satisfaction = answers
            session.add(
                ValidCallback(
                    ticket_id=ticket_id,
                    surveyed_at=surveyed,
                    contacted=contacted,
                    resolved=resolved,
                    satisfaction=satisfaction,
                )
            )
        for agent, scored, total in (("zhao", at(4, 13), 80), ("zhao", at(4, 14), 90)):
            session.add(
                QualityScore(
                    uniqueid="c4",
                    agent_id=ids[agent],
                    scored_by="boss",
                    scored_at=scored,
                    items="{}",
                    total=total,
                )
            )
        session.add(
            QualityScore(
                uniqueid="c1",
                agent_id=ids["wang"],
                scored_by="boss",
                scored_at=at(5, 9),
                items="{}",
                total=50,
            )
        )
    return ids


def figures_of(store: sessionmaker[Session], day: str, now: datetime = FUTURE):  # type: ignore[no-untyped-def]
    start, end = day_period(day).utc_range(TZ)
    with unit_of_work(store) as session:
        found = agent_figures(session, start, end, now, WRAPUP, 10)
    return {one.login: one for one in found}


def test_a_hand_built_day_every_figure_exact(store: sessionmaker[Session]) -> None:
    build_day(store)
    day = figures_of(store, "2026-12-04")
    assert list(day) == ["li", "wang", "qian", "zhao"]  # by team, then login

    wang = day["wang"]
    assert (wang.team, wang.answered, wang.rang_out) == ("一组", 3, 1)
    # c1 120 + c2's part 60 + c3 300 (ended the next day, answered on this one)
    assert (wang.ended, wang.handle_seconds, wang.average_handle) == (3, 480, 160)
    assert wang.logged_in_seconds == 16 * 3600  # 08:00 to midnight, still logged in
    assert wang.pauses == {"break": 900}
    assert wang.talk_seconds == 120 + 60 + 120  # c3's on-call time cut at midnight
    assert wang.wrap_seconds == 20  # two wrap-ups of the 10 s queue, each capped
    assert wang.occupancy == pytest.approx(320 / (57600 - 900))
    assert (wang.tickets, wang.direct, wang.direct_share) == (2, 1, 0.5)
    assert (wang.valid, wang.contacted, wang.resolved, wang.satisfied, wang.basic) == (
        2,
        2,
        1,
        1,
        1,
    )
    assert (wang.scores, wang.quality) == (0, None)

    li = day["li"]
    assert (li.answered, li.rang_out, li.ended, li.handle_seconds) == (1, 0, 1, 180)
    assert li.logged_in_seconds == 13.5 * 3600
    assert li.pauses == {"training": 46535}  # 11:04:25 to the end of the period
    assert (li.talk_seconds, li.wrap_seconds) == (180, 5)  # paused 5 s into wrap-up
    assert li.occupancy == pytest.approx(185 / 2065)
    assert (li.tickets, li.direct, li.valid, li.contacted, li.resolved, li.satisfied) == (
        1,
        0,
        1,
        0,
        0,
        0,
    )

    zhao = day["zhao"]
    assert (zhao.answered, zhao.ended, zhao.handle_seconds) == (1, 1, 300)
    assert zhao.logged_in_seconds == 12 * 3600  # midnight to noon
    assert zhao.pauses == {"meeting": 1800}  # begun the evening before
    assert (zhao.talk_seconds, zhao.wrap_seconds) == (300, 30)  # the English queue's 30 s
    assert zhao.occupancy == pytest.approx(330 / 41400)
    assert (zhao.scores, zhao.quality) == (2, 85)

    qian = day["qian"]
    assert (qian.answered, qian.rang_out, qian.ended, qian.handle_seconds) == (0, 0, 0, 0)
    assert (qian.logged_in_seconds, qian.pauses, qian.tickets) == (0, {}, 0)
    assert qian.average_handle is None and qian.average_wrap is None
    assert qian.occupancy is None and qian.direct_share is None and qian.quality is None

    teams = {t.login: t for t in team_figures(list(day.values()))}
    assert list(teams) == ["一组", "二组"]
    one, two = teams["一组"], teams["二组"]
    assert (one.answered, one.ended, one.handle_seconds, one.rang_out) == (4, 4, 660, 1)
    assert one.pauses == {"break": 900, "training": 46535}
    assert one.occupancy == pytest.approx((300 + 180 + 20 + 5) / (57600 + 48600 - 900 - 46535))
    assert (one.tickets, one.direct, one.valid, one.contacted) == (3, 1, 3, 2)
    assert (two.answered, two.scores, two.quality) == (1, 2, 85)


def test_the_next_day_has_the_end_of_c3_but_not_its_answer(store: sessionmaker[Session]) -> None:
    build_day(store)
    wang = figures_of(store, "2026-12-05")["wang"]
    assert (wang.answered, wang.ended, wang.handle_seconds) == (0, 0, 0)
    assert (wang.talk_seconds, wang.wrap_seconds) == (180, 10)
    assert wang.logged_in_seconds == 24 * 3600
    assert (wang.tickets, wang.valid, wang.scores, wang.quality) == (0, 1, 1, 50)
    # still logged in now: the period ends now, not at midnight
    now = at(5, 6)
    assert figures_of(store, "2026-12-05", now)["wang"].logged_in_seconds == 6 * 3600
    li = figures_of(store, "2026-12-05")["li"]
    assert li.pauses == {"training": 24 * 3600}


def test_the_week_and_the_month_hold_the_day(store: sessionmaker[Session]) -> None:
    build_day(store)
    today = date(2026, 12, 4)
    for period in (period_of(today, week="2026-W49"), period_of(today, month="2026-12")):
        start, end = period.utc_range(TZ)
        with unit_of_work(store) as session:
            found = {f.login: f for f in agent_figures(session, start, end, FUTURE, WRAPUP, 10)}
        wang = found["wang"]
        assert (wang.answered, wang.ended, wang.handle_seconds, wang.rang_out) == (3, 3, 480, 1)
        assert (wang.tickets, wang.valid) == (3, 3)
        assert found["zhao"].pauses == {"meeting": 5400}  # 23:00 to 00:30, within the week
    assert period_of(today).label == "2026-12-04"
    with pytest.raises(PeriodError):
        period_of(today, day="2026-12-04", week="2026-W49")


def test_quality_items_checked_saved_and_listed(store: sessionmaker[Session]) -> None:
    ids = build_day(store)
    checklist = {"规范用语": 25, "准确记录诉求": 30, "态度": 25, "时限告知": 20}
    with pytest.raises(ScoreError):
        check_items(
            checklist, {"规范用语": "26", "准确记录诉求": "30", "态度": "25", "时限告知": "20"}
        )
    with pytest.raises(ScoreError):
        check_items(
            checklist,
            {"规范用语": "20", "准确记录诉求": "30", "态度": "25", "时限告知": "20", "x": "1"},
        )
    with pytest.raises(ScoreError):
        check_items(
            checklist, {"规范用语": "-1", "准确记录诉求": "30", "态度": "25", "时限告知": "20"}
        )
    points = check_items(
        checklist, {"规范用语": "20", "准确记录诉求": "30", "态度": "25", "时限告知": "15"}
    )
    with unit_of_work(store) as session:
        assert answered_by(session, "c2") == [(ids["wang"], "wang"), (ids["li"], "li")]
        assert answered_by(session, "nope") == []
        score = save_score(session, "c2", ids["li"], "boss", points, "好")
        assert score.total == 90
    with unit_of_work(store) as session:
        [(saved, login)] = scores_of(session, "c2")
        assert login == "li" and json.loads(saved.items)["时限告知"] == 15
        assert saved.scored_at > datetime.now(UTC) - timedelta(minutes=5)


# -- the console: /performance, its exports, and scoring a call -----------------------
@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, ConsoleCity, sessionmaker[Session]]]:
    config, _, city, sessions = console_site(tmp_path)
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD), team="一组")
        add_agent(session, config, "a2", hash_password(PASSWORD), team="二组")
        uniqueid = session.get_one(Call, city.calls["S1"]).uniqueid
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
        for when, agent, event, data in (
            (start, "NONE", "ENTERQUEUE", ("", "13800000000", "1")),
            (start + timedelta(seconds=5), "a1", "CONNECT", ("5", "x", "2")),
            (start + timedelta(seconds=65), "a1", "COMPLETECALLER", ("5", "60", "1")),
        ):
            session.add(
                QueueLogEntry(
                    at=when,
                    callid=uniqueid,
                    queue=config.queues[0].name,
                    agent=agent,
                    event=event,
                    **{f"data{n}": value for n, value in enumerate(data, start=1)},
                )
            )
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, city, sessions


FULL = {"item:规范用语": "25", "item:准确记录诉求": "30", "item:态度": "20", "item:时限告知": "15"}


def agent_id_of(sessions: sessionmaker[Session], login: str) -> int:
    with unit_of_work(sessions) as session:
        return int(
            session.scalar(
                select(Agent.id).join(User, Agent.user_id == User.id).where(User.username == login)
            )
        )


def test_a_supervisor_scores_a_call_and_the_page_averages_it(site) -> None:  # type: ignore[no-untyped-def]
    client, city, sessions = site
    call = city.calls["S1"]
    assert login(client, "boss").status_code == 303
    page_text = client.get(f"/calls/{call}").text
    assert 'id="quality-form"' in page_text and ">a1</option>" in page_text
    csrf = csrf_of(client, f"/calls/{call}")
    a1, a2 = agent_id_of(sessions, "a1"), agent_id_of(sessions, "a2")
    url = f"/calls/{call}/quality"
    for points, note in (("15", "好"), ("5", "")):
        form = {**FULL, "item:时限告知": points, "agent": str(a1), "csrf": csrf, "note": note}
        assert client.post(url, data=form, follow_redirects=False).status_code == 303
    refused = (
        {**FULL, "item:时限告知": "21"},  # above the item's most
        {**FULL, "item:笑容": "5"},  # not a checklist item
        {k: v for k, v in FULL.items() if k != "item:态度"},  # an item missing
    )
    for bad in refused:
        answer = client.post(url, data={**bad, "agent": str(a1), "csrf": csrf})
        assert answer.status_code == 400
    # a2 did not answer this call; no CSRF token: refused
    assert client.post(url, data={**FULL, "agent": str(a2), "csrf": csrf}).status_code == 400
    assert client.post(url, data={**FULL, "agent": str(a1)}).status_code == 403
    rows = audit_rows(sessions, "quality_score")
    assert [(r.username, r.object_id) for r in rows] == [("boss", call), ("boss", call)]
    assert "total 90" in (rows[0].detail or "") and "total 80" in (rows[1].detail or "")
    with unit_of_work(sessions) as session:
        totals = session.scalars(select(QualityScore.total).order_by(QualityScore.id)).all()
    assert totals == [90, 80]
    assert "好" in client.get(f"/calls/{call}").text

    # the figures of a fixed day, whatever the clock says: the call and its scores moved there
    with unit_of_work(sessions) as session:
        for score in session.scalars(select(QualityScore)):
            score.scored_at = at(4, 10)
        for row in session.scalars(select(QueueLogEntry)):
            row.at = at(4, 9) + timedelta(
                seconds={"CONNECT": 5, "COMPLETECALLER": 65}.get(row.event, 0)
            )
    shown = client.get("/performance?day=2026-12-04")
    assert shown.status_code == 200 and 'id="performance-agents"' in shown.text
    exported = client.get("/performance/export/agents.csv?day=2026-12-04")
    assert exported.status_code == 200
    table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    header, rows_by_login = table[0], {row[0]: row for row in table[1:]}
    first = rows_by_login["a1"]
    assert first[header.index("接听")] == "1" and first[header.index("平均处理(秒)")] == "60.0"
    assert first[header.index("质检次数")] == "2" and first[header.index("质检均分")] == "85.0"
    second = rows_by_login["a2"]  # no calls: zeros, rates "no data"
    assert second[header.index("接听")] == "0" and second[header.index("占用率")] == "无数据"
    teams = client.get("/performance/export/teams.xlsx?week=2026-W49")
    assert teams.status_code == 200 and teams.content[:2] == b"PK"
    assert client.get("/performance?day=2026-13-01").status_code == 400
    assert [r.detail for r in audit_rows(sessions, "export")][-2:] == [
        "performance agents 2026-12-04",
        "performance teams 2026-W49",
    ]


def test_agents_and_staff_neither_score_nor_see_performance(site) -> None:  # type: ignore[no-untyped-def]
    client, city, sessions = site
    call = city.calls["S1"]
    a1 = agent_id_of(sessions, "a1")
    assert login(client, "s1").status_code == 303
    csrf = csrf_of(client, f"/calls/{call}")
    assert 'id="quality-form"' not in client.get(f"/calls/{call}").text
    form = {**FULL, "agent": str(a1), "csrf": csrf}
    assert client.post(f"/calls/{call}/quality", data=form).status_code == 403
    assert client.get("/performance").status_code == 403
    assert client.get("/performance/export/agents.csv").status_code == 403
    client.cookies.clear()
    assert login(client, "a1").status_code == 303
    csrf = csrf_of(client, "/agent")
    form = {**FULL, "agent": str(a1), "csrf": csrf}
    assert client.post(f"/calls/{call}/quality", data=form).status_code == 403
    assert client.get("/performance").status_code == 403
    assert audit_rows(sessions, "quality_score") == []


def test_the_command_line_prints_the_same_report(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hotline.cli.main import app

    config, path, _, sessions = console_site(tmp_path)
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD), team="一组")
    runner = CliRunner()
    out = tmp_path / "teams.csv"
    done = runner.invoke(
        app,
        ["report", "performance", "--day", "2026-12-04", "--teams", "--format", "csv",
         "-o", str(out), "--config", str(path)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[0][:3] == ["班组", "接听", "振铃未接"] and rows[1][:3] == ["一组", "0", "0"]
    both = runner.invoke(
        app, ["report", "performance", "--day", "2026-12-04", "--week", "2026-W49", "-c", str(path)]
    )
    assert both.exit_code == 2
