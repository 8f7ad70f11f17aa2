"""The queue figures from a hand-built queue_log, on SQLite and PostgreSQL: every figure exact.

Traps: a call waiting across midnight (it counts on the day it came), an abandon at
3 s, an EXITWITHKEY with the key # (no number: never read as one), an EXITEMPTY at
0 s, a call transferred from one queue into another (one call for the hotline, an
attempt in each queue), a queue without a call, agents' rows (ADDMEMBER, PAUSE,
RINGNOANSWER) among the callers', and calls the day before and after.

Day D = 2026-12-04 in Asia/Shanghai (UTC+8).
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from agents.figures import (
    HOTLINE,
    QueueRule,
    Waiting,
    agents_now,
    callbacks,
    day_figures,
    day_range,
    period_figures,
)
from agents.store import SCRIPTED, bind_seat, record_state
from core.vocabulary import AgentState
from dashboard.app import create_app
from db.models import CallbackTask, QueueLogEntry, User
from db.session import unit_of_work
from tests.support.console_city import login
from tests.support.console_site import console_site

TZ = ZoneInfo("Asia/Shanghai")
D = date(2026, 12, 4)
HA, EN, EMPTY = "hotline-agents", "hotline-agents-en", "quiet-queue"
RULES = [QueueRule(HA, 15, 10), QueueRule(EN, 20, 5), QueueRule(EMPTY, 15, 10)]


def at(day_offset: int, clock: str) -> datetime:
    h, m, s = (int(x) for x in clock.split(":"))
    day = D + timedelta(days=day_offset)
    return datetime(day.year, day.month, day.day, h, m, s, tzinfo=TZ).astimezone(UTC)


# (day offset, local time, callid, queue, agent, event, data...)
ROWS: list[tuple] = [
    (-1, "07:00:00", "NONE", HA, "wang", "ADDMEMBER"),
    (-1, "07:00:00", "NONE", EN, "li", "ADDMEMBER"),
    # the day before: c8 answered at 2 s, c7 answered at 30 s, c11 left after 50 s
    (-1, "08:00:00", "c8", HA, "NONE", "ENTERQUEUE", "", "13900000008", "1"),
    (-1, "08:00:02", "c8", HA, "wang", "CONNECT", "2", "c8.1", "1"),
    (-1, "08:00:12", "c8", HA, "wang", "COMPLETECALLER", "2", "10", "1"),
    (-1, "20:00:00", "c7", HA, "NONE", "ENTERQUEUE", "", "13900000007", "1"),
    (-1, "20:00:30", "c7", HA, "wang", "CONNECT", "30", "c7.1", "2"),
    (-1, "20:01:30", "c7", HA, "wang", "COMPLETEAGENT", "30", "60", "1"),
    (-1, "22:00:00", "c11", HA, "NONE", "ENTERQUEUE", "", "13900000011", "1"),
    (-1, "22:00:50", "c11", HA, "NONE", "EXITWITHTIMEOUT", "1", "1", "50"),
    # day D
    (0, "09:00:00", "c1", HA, "NONE", "ENTERQUEUE", "", "13900000001", "1"),
    (0, "09:00:03", "c1", HA, "wang", "CONNECT", "3", "c1.1", "1"),
    (0, "09:01:03", "c1", HA, "wang", "COMPLETECALLER", "3", "60", "1"),
    (0, "09:10:00", "c2", HA, "NONE", "ENTERQUEUE", "", "13900000002", "1"),
    (0, "09:10:15", "c2", HA, "zhao", "RINGNOANSWER", "15000"),
    (0, "09:10:15", "NONE", HA, "zhao", "PAUSE", "rona"),
    (0, "09:10:20", "c2", HA, "wang", "CONNECT", "20", "c2.1", "4"),
    (0, "09:12:00", "c2", HA, "wang", "COMPLETEAGENT", "20", "100", "1"),
    (0, "10:00:00", "c3", HA, "NONE", "ENTERQUEUE", "", "13900000003", "1"),
    (0, "10:00:03", "c3", HA, "NONE", "ABANDON", "1", "1", "3"),
    (0, "10:05:00", "c4", HA, "NONE", "ENTERQUEUE", "", "13900000004", "1"),
    (0, "10:05:40", "c4", HA, "NONE", "EXITWITHKEY", "#", "1", "1", "40"),
    # c5: answered in HA at 5 s, blind-transferred to EN, answered there at 25 s
    (0, "11:00:00", "c5", HA, "NONE", "ENTERQUEUE", "", "13900000005", "1"),
    (0, "11:00:05", "c5", HA, "wang", "CONNECT", "5", "c5.1", "1"),
    (0, "11:00:35", "c5", HA, "wang", "BLINDTRANSFER", EN, "hotline-queue", "5", "30", "1"),
    (0, "11:00:36", "c5", EN, "NONE", "ENTERQUEUE", "", "13900000005", "1"),
    (0, "11:01:01", "c5", EN, "li", "CONNECT", "25", "c5.2", "1"),
    (0, "11:01:51", "c5", EN, "li", "COMPLETECALLER", "25", "50", "1"),
    (0, "12:00:00", "c9", HA, "NONE", "ENTERQUEUE", "", "13900000009", "1"),
    (0, "12:00:00", "c9", HA, "NONE", "EXITEMPTY", "1", "1", "0"),
    (0, "13:00:00", "c10", EN, "NONE", "ENTERQUEUE", "", "13900000010", "1"),
    (0, "13:01:15", "c10", EN, "NONE", "ABANDON", "2", "2", "75"),
    # c6 waits across midnight and is answered the next day at 12 s
    (0, "23:59:50", "c6", EN, "NONE", "ENTERQUEUE", "", "13900000006", "1"),
    (1, "00:00:02", "c6", EN, "li", "CONNECT", "12", "c6.1", "1"),
    (1, "00:00:42", "c6", EN, "li", "COMPLETEAGENT", "12", "40", "1"),
    # the day after
    (1, "10:00:00", "c12", HA, "NONE", "ENTERQUEUE", "", "13900000012", "1"),
    (1, "10:00:04", "c12", HA, "wang", "CONNECT", "4", "c12.1", "1"),
    (1, "10:01:04", "c12", HA, "wang", "COMPLETECALLER", "4", "60", "1"),
]


def fill(store: sessionmaker[Session]) -> None:
    with unit_of_work(store) as session:
        for day, clock, callid, queue, agent, event, *data in ROWS:
            session.add(
                QueueLogEntry(
                    at=at(day, clock),
                    callid=callid,
                    queue=queue,
                    agent=agent,
                    event=event,
                    **{f"data{n + 1}": (value or None) for n, value in enumerate(data)},
                )
            )


def test_a_day_of_queue_log_gives_every_figure_exactly(store: sessionmaker[Session]) -> None:
    fill(store)
    with unit_of_work(store) as session:
        day = day_figures(session, RULES, D, TZ)
    ha, en, empty, total = day[HA], day[EN], day[EMPTY], day[HOTLINE]
    # HA: c1 c2 c3 c4 c5 c9; answered c1 c2 c5; within c1 (3 s) c5 (5 s)
    assert (ha.offered, ha.answered, ha.within, ha.abandoned) == (6, 3, 2, 3)
    assert ha.waits == {"0-5s": 2, "5-15s": 0, "15-30s": 0, "30-60s": 1, "60s+": 0}
    assert ha.service_level == pytest.approx(2 / 6)
    assert ha.completion == pytest.approx(3 / 6)
    assert ha.asa == pytest.approx((3 + 20 + 5) / 3)
    assert ha.aht == pytest.approx((60 + 100 + 30 + 3 * 10) / 3)
    assert ha.worst_24h == pytest.approx(3 / 7)
    # EN: c5 (transferred in, 25 s > 20 s), c10 (abandoned at 75 s), c6 (across midnight, 12 s)
    assert (en.offered, en.answered, en.within, en.abandoned) == (3, 2, 1, 1)
    assert en.waits == {"0-5s": 0, "5-15s": 0, "15-30s": 0, "30-60s": 0, "60s+": 1}
    assert en.asa == pytest.approx((25 + 12) / 2)
    assert en.aht == pytest.approx((50 + 40 + 2 * 5) / 2)
    assert en.worst_24h == pytest.approx(1 / 2)
    # a queue without calls: zeros, and no rate at all (not 0 %)
    assert (empty.offered, empty.answered, empty.abandoned) == (0, 0, 0)
    assert empty.service_level is None and empty.completion is None and empty.asa is None
    assert empty.worst_24h is None
    # the hotline: calls, c5 once
    assert (total.offered, total.answered, total.within, total.abandoned) == (8, 4, 3, 4)
    assert total.waits == {"0-5s": 2, "5-15s": 0, "15-30s": 0, "30-60s": 1, "60s+": 1}
    assert total.service_level == pytest.approx(3 / 8)
    assert total.completion == pytest.approx(4 / 8)
    assert total.asa == pytest.approx((3 + 20 + 5 + 25 + 12) / 5)
    assert total.aht == pytest.approx((220 + 100) / 5)
    # the windows ending 21:00 and 22:00 hold c11 (left) and D's first eight calls but c6
    assert total.worst_24h == pytest.approx(float(Fraction(3, 8)))


def test_the_day_before_and_a_week(store: sessionmaker[Session]) -> None:
    fill(store)
    with unit_of_work(store) as session:
        before = day_figures(session, RULES, D - timedelta(days=1), TZ)
        start, _ = day_range(date(2026, 11, 30), TZ)  # ISO week 2026-W49: Monday
        week = period_figures(session, RULES, start, start + timedelta(days=7))
    assert (before[HA].offered, before[HA].answered, before[HA].within) == (3, 2, 1)
    assert before[HA].waits["30-60s"] == 1 and before[HA].worst_24h == pytest.approx(2 / 3)
    assert before[EN].offered == 0 and before[EN].worst_24h is None
    assert (week[HOTLINE].offered, week[HOTLINE].answered) == (12, 7)
    assert week[HOTLINE].worst_24h is None  # only asked for a day


def test_callbacks_created_and_closed_in_the_period(store: sessionmaker[Session]) -> None:
    with unit_of_work(store) as session:
        for n, (created, closed) in enumerate(
            [
                (at(0, "10:00:00"), at(0, "12:00:00")),
                (at(-1, "23:00:00"), at(0, "08:00:00")),
                (at(0, "23:59:59"), None),
                (at(1, "00:00:00"), at(1, "01:00:00")),
            ]
        ):
            session.add(
                CallbackTask(
                    uniqueid=f"cb{n}",
                    caller_number="13900000000",
                    reason="abandoned",
                    created_at=created,
                    closed_at=closed,
                )
            )
    with unit_of_work(store) as session:
        found = callbacks(session, *day_range(D, TZ))
    assert (found.created, found.closed) == (2, 2)


def test_agents_by_state_now(store: sessionmaker[Session]) -> None:
    now = at(0, "12:00:00")
    with unit_of_work(store) as session:
        ids = {}
        for name, queues in (
            ("wang", [HA]),
            ("li", [EN]),
            ("zhao", [HA, EN]),
            ("sun", [HA]),
            ("qian", [HA]),
        ):
            user = User(username=name, password_hash="!", role="agent")
            session.add(user)
            session.flush()
            ids[name] = bind_seat(session, user, [], SCRIPTED, queues).id
        record_state(session, ids["wang"], AgentState.READY, now - timedelta(hours=1))
        record_state(session, ids["wang"], AgentState.ON_CALL, now - timedelta(seconds=30))
        record_state(session, ids["li"], AgentState.WRAP_UP, now - timedelta(seconds=6))  # EN: 5 s
        record_state(session, ids["zhao"], AgentState.PAUSED, now - timedelta(minutes=3), "break")
        record_state(session, ids["sun"], AgentState.WRAP_UP, now - timedelta(seconds=3))
        # qian: never logged in
    with unit_of_work(store) as session:
        found = agents_now(session, RULES, now)
    assert found[HA].states == {
        "ready": 0,
        "ringing": 0,
        "on_call": 1,
        "wrap_up": 1,
        "paused": 1,
        "logged_out": 1,
    }
    assert found[EN].states["ready"] == 1 and found[EN].states["paused"] == 1
    assert found[HOTLINE].paused_by == {"break": 1}
    assert sum(found[HOTLINE].states.values()) == 5
    assert sum(found[EMPTY].states.values()) == 0


def test_callers_waiting_now_from_ami_events() -> None:
    waiting = Waiting()
    waiting.feed("QueueCallerJoin", {"Uniqueid": "a", "Queue": HA}, now=100.0)
    waiting.feed("QueueCallerJoin", {"Uniqueid": "b", "Queue": EN}, now=110.0)
    waiting.feed("QueueEntry", {"Uniqueid": "c", "Queue": HA, "Wait": "30"}, now=120.0)
    waiting.feed("QueueCallerAbandon", {"Uniqueid": "a", "Queue": HA}, now=121.0)
    now = waiting.now([HA, EN, EMPTY], at=125.0)
    assert now[HA]["waiting"] == 1 and now[HA]["longest"] == 35
    assert now[EN]["waiting"] == 1 and now[EN]["longest"] == 15
    assert now[EMPTY] == {"waiting": 0, "longest": 0, "since": None}
    assert now[HOTLINE]["waiting"] == 2 and now[HOTLINE]["longest"] == 35
    waiting.feed("QueueCallerLeave", {"Uniqueid": "b", "Queue": EN}, now=126.0)
    assert waiting.now([EN], at=127.0)[EN]["waiting"] == 0


def test_the_page_its_export_and_the_command_line_show_the_same_numbers(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hotline.cli.main import app as cli

    config, path, _, sessions = console_site(tmp_path)
    fill(sessions)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        assert login(client, "s1").status_code == 303  # staff: not theirs to see
        assert client.get("/service-level").status_code == 403
        assert client.get("/wallboard").status_code == 403
        client.cookies.clear()
        assert login(client, "boss").status_code == 303
        shown = client.get("/service-level?day=2026-12-04")
        assert shown.status_code == 200
        exported = client.get("/service-level/export.csv?day=2026-12-04")
        assert exported.status_code == 200
        assert client.get("/wallboard").status_code == 200
    out = tmp_path / "sl.csv"
    done = CliRunner().invoke(
        cli,
        ["report", "service-level", "--day", "2026-12-04", "--format", "csv",
         "-o", str(out), "--config", str(path)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    from_cli = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    from_page = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert from_cli == from_page
    headers, rows = from_cli[0], from_cli[1:]
    # the page's table: the very cells, row by row
    cells = [
        [html.unescape(c) for c in re.findall(r'<td data-label="[^"]*" data-h="[^"]*"[^>]*>([^<]*)</td>', tr)]
        for tr in re.findall(r'<tr class="sl-row"[^>]*>(.*?)</tr>', shown.text, re.S)
    ]  # fmt: skip
    assert cells == rows
    hotline = dict(zip(headers, rows[0], strict=True))
    assert hotline["队列"] == "全部" and hotline["呼入"] == "8" and hotline["接通"] == "4"
    assert hotline["接通率"] == "50.00%" and hotline["最差24小时接通率"] == "37.50%"
    assert hotline["放弃0-5s"] == "2" and hotline["放弃60s+"] == "1"
