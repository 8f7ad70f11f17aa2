"""The robot's figures and crash recovery on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from callback_robot.answers import save_answer
from callback_robot.attempts import create_attempt, finish_attempt
from callback_robot.recovery import resolve
from callback_robot.reporting import robot_figures
from callback_robot.store import AttemptEnded, RobotStore
from core.config import load_config
from core.telemetry import ATTEMPTS_ENDED
from core.vocabulary import AttemptOutcome, AttemptState, Question
from db.migrate import upgrade
from db.models import CallbackAttempt
from db.runtime import Spool
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket
from tests.support.config import write_config


def attempt(session, ticket_id: int, at: datetime, outcome: AttemptOutcome | None):  # type: ignore[no-untyped-def]
    row = create_attempt(session, ticket_id, at, "r")
    row.started_at = at
    if outcome is not None:
        finish_attempt(session, row.id, outcome)
    return row


def seed(sessions) -> None:  # type: ignore[no-untyped-def]
    day1 = datetime(2026, 11, 24, 3, tzinfo=UTC)  # 11:00 local on the 24th
    day2 = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)  # 01:30 local on the 25th
    with unit_of_work(sessions) as s:
        ids = [
            create_ticket(s, caller_number=str(i), local_day=date(2026, 11, 20)).id
            for i in range(5)
        ]
        attempt(s, ids[0], day1, AttemptOutcome.COMPLETED)
        attempt(s, ids[1], day1, AttemptOutcome.NO_ANSWER)
        attempt(s, ids[1], day2, AttemptOutcome.COMPLETED)
        attempt(s, ids[2], day1, AttemptOutcome.BUSY)
        attempt(s, ids[3], day2, AttemptOutcome.PARTIAL)
        attempt(s, ids[4], day2, AttemptOutcome.OPTED_OUT)


def test_success_rate_and_daily_mix_by_hand(database_url: str) -> None:
    upgrade(database_url)
    sessions = make_session_factory(make_engine(database_url))
    seed(sessions)
    with unit_of_work(sessions) as s:
        figures = robot_figures(
            s,
            datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
            "Asia/Shanghai",
            1,
        )
    assert (figures.placed, figures.reached, figures.completed) == (6, 4, 2)
    assert figures.success_rate == pytest.approx(2 / 6)
    # per ticket: 5 tickets called, 1 completed on its first attempt (the other on its 2nd)
    assert (figures.tickets, figures.tickets_completed_within) == (5, 1)
    assert figures.by_day == {
        "2026-11-24": {"completed": 1, "no_answer": 1, "busy": 1},
        "2026-11-25": {"completed": 1, "partial": 1, "opted_out": 1},
    }
    with unit_of_work(sessions) as s:
        empty = robot_figures(
            s, datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC), "Asia/Shanghai"
        )
    assert empty.success_rate is None and empty.placed == 0  # "no data", not 0 %


def test_an_outcome_applied_again_is_counted_once(
    tmp_path: Path, store: sessionmaker[Session]
) -> None:
    """Retried after a transaction that failed, replayed from the spool, replayed once
    more: the attempt ends once, and the outcome metric counts it once, after the commit."""
    robot = RobotStore(load_config(write_config(tmp_path)), store, Spool(tmp_path / "spool"))
    with unit_of_work(store) as s:
        ticket = create_ticket(s, caller_number="1", local_day=date(2026, 11, 20)).id
        attempt_id = attempt(s, ticket, datetime.now(UTC), None).id
    ended = AttemptEnded(attempt_id, AttemptOutcome.BUSY.value, "17")
    busy = ATTEMPTS_ENDED.labels(AttemptOutcome.BUSY.value)
    before = busy._value.get()

    def then_the_commit_fails(session: Session) -> None:
        robot.apply(session, ended)
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    with pytest.raises(OperationalError):
        robot.gateway.transaction(then_the_commit_fails)
    assert busy._value.get() == before  # rolled back: nothing ended, nothing counted
    robot.spool.put("attempt_end", asdict(ended))
    assert robot.replay() == (1, 0)
    robot.gateway.transaction(lambda s: robot.apply(s, ended))  # the same intent once more
    assert busy._value.get() - before == 1
    with unit_of_work(store) as s:
        assert s.get(CallbackAttempt, attempt_id).outcome == AttemptOutcome.BUSY  # type: ignore[union-attr]


def test_report_command_prints_table_and_csv(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    upgrade(config.database_url)
    seed(make_session_factory(make_engine(config.database_url)))
    base = [
        sys.executable,
        "-m",
        "hotline.cli",
        "robot",
        "report",
        "--from",
        "2026-11-24",
        "--to",
        "2026-11-25",
        "--config",
        str(config.source),
    ]
    table = subprocess.run(base, capture_output=True, text=True, check=False)
    assert table.returncode == 0, table.stderr
    assert "calls placed 6, reached 4, completed 2, success rate 33.33%" in table.stdout
    csv = subprocess.run([*base, "--format", "csv"], capture_output=True, text=True, check=False)
    assert csv.stdout.splitlines()[1] == "2026-11-24,3,1,0,1,1,0,0"


def test_recovery_gives_orphaned_attempts_an_outcome_and_never_redials(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    upgrade(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    now = datetime(2026, 11, 25, 3, tzinfo=UTC)
    with unit_of_work(sessions) as s:
        ids = [
            create_ticket(s, caller_number=str(i), local_day=date(2026, 11, 20)).id
            for i in range(3)
        ]
        dialing = attempt(s, ids[0], now, None).id
        answered = attempt(s, ids[1], now, None)
        answered.state = AttemptState.IN_CALL
        save_answer(s, answered.id, Question.CONTACTED, 1, "dtmf")
        still_live = attempt(s, ids[2], now, None).id
        answered_id = answered.id
    resolved = dict(resolve(sessions, live={still_live}))
    assert resolved == {dialing: "failed", answered_id: "partial"}
    with unit_of_work(sessions) as s:
        assert s.get(CallbackAttempt, still_live).outcome is None  # type: ignore[union-attr]
        assert s.query(CallbackAttempt).count() == 3  # nothing was dialled again


def test_cdr_dispositions_prefer_the_most_telling_record(tmp_path: Path) -> None:
    from callback_robot.cdr import dispositions

    master = tmp_path / "Master.csv"
    row = '"","12345","s","hotline-survey","","Local/x;1","","","","2026-11-25 01:00:00",,"2026-11-25 01:00:05",5,0,"{d}","DOCUMENTATION","1.{n}","{u}"'
    master.write_text(
        "\n".join(
            [
                row.format(d="NO ANSWER", n=1, u="attempt-7"),
                row.format(d="ANSWERED", n=2, u="attempt-7"),
                row.format(d="BUSY", n=3, u="attempt-8"),
                row.format(d="ANSWERED", n=4, u=""),
                "garbage",
            ]
        )
        + "\n"
    )
    assert dispositions(master) == {7: "ANSWERED", 8: "BUSY"}
    assert dispositions(tmp_path / "absent.csv") == {}


def test_status_command_counts_due_and_waiting(tmp_path: Path) -> None:
    from datetime import timedelta

    from core.vocabulary import TicketStatus

    config = load_config(write_config(tmp_path))
    upgrade(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    now = datetime.now(UTC)
    with unit_of_work(sessions) as s:
        tickets = []
        for caller in ("1", "2", "3"):
            ticket = create_ticket(s, caller_number=caller, local_day=date(2026, 11, 20))
            ticket.status, ticket.closed_at = TicketStatus.CLOSED, now - timedelta(days=2)
            tickets.append(ticket.id)
        attempt(s, tickets[1], now - timedelta(minutes=10), AttemptOutcome.BUSY)
        attempt(s, tickets[2], now - timedelta(days=1), AttemptOutcome.COMPLETED)
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "robot", "status", "--config", str(config.source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "due now  1 tickets" in done.stdout
    assert "waiting to retry 1 tickets" in done.stdout
    assert "done     2" in done.stdout
