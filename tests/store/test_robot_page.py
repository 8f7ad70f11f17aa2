"""The console's robot page through the app: the heartbeat card and the queue figures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session, sessionmaker

from callback_robot.attempts import create_attempt, finish_attempt
from core.config import HotlineConfig, load_config
from core.vocabulary import AttemptOutcome, TicketStatus
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.users import add_user
from db.models import RobotHeartbeat, RobotLock
from db.session import unit_of_work
from db.tickets import create_ticket
from tests.support.config import write_config
from tests.support.console_city import PASSWORD, login

DUE = 60  # more due tickets than any statement of the page may carry values


@pytest.fixture
def site(
    tmp_path: Path, migrated_url: str, store: sessionmaker[Session]
) -> Iterator[tuple[TestClient, HotlineConfig]]:
    config = load_config(write_config(tmp_path / "cfg", database={"url": migrated_url}))
    with unit_of_work(store) as session:
        add_user(session, "boss", hash_password(PASSWORD), "supervisor", None)
    with TestClient(create_app(config, store), base_url="http://127.0.0.1") as client:
        login(client, "boss")
        yield client, config


def card(html: str, name: str) -> str:
    """The text of one queue card, by its English name."""
    found = re.search(rf'<span class="en">{name}</span>(.*?)</div>', html, re.S)
    assert found, html
    return found.group(1)


def test_heartbeat_card_shows_the_last_dispatch_pass_not_the_claim_lock(
    site: tuple[TestClient, HotlineConfig], store: sessionmaker[Session]
) -> None:
    client, config = site
    taken = datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)  # the last claim (not every pass claims)
    beat = datetime(2026, 11, 25, 2, 4, 6, tzinfo=UTC)  # the last successful dispatch pass
    with unit_of_work(store) as session:
        session.execute(
            update(RobotLock).where(RobotLock.id == 1).values(holder="claimer:1", taken_at=taken)
        )
        session.add(RobotHeartbeat(robot_id="beater:2", started_at=taken, beat_at=beat))
    heartbeat = card(client.get("/robot").text, "Heartbeat")
    local = "%Y-%m-%d %H:%M:%S"
    assert beat.astimezone(config.tz).strftime(local) in heartbeat
    assert "beater:2" in heartbeat
    assert taken.astimezone(config.tz).strftime(local) not in heartbeat
    assert "claimer:1" not in heartbeat


def closed(session: Session, caller: str, at: datetime) -> int:
    ticket = create_ticket(session, caller_number=caller, local_day=date(2026, 11, 1))
    ticket.status, ticket.closed_at = TicketStatus.CLOSED, at
    session.flush()
    return ticket.id


def tried(session: Session, ticket_id: int, at: datetime, outcome: AttemptOutcome | None) -> None:
    attempt = create_attempt(session, ticket_id, at, "r")
    attempt.started_at = at
    if outcome is not None:
        finish_attempt(session, attempt.id, outcome)
        attempt.ended_at = at


@pytest.fixture
def statements() -> Iterator[list[int]]:
    """How many values each SQL statement run meanwhile carried."""
    carried: list[int] = []

    def count(_conn, _cursor, _statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        first = parameters[0] if executemany and parameters else parameters
        carried.append(len(first or ()))

    event.listen(Engine, "before_cursor_execute", count)
    yield carried
    event.remove(Engine, "before_cursor_execute", count)


def test_queue_figures_are_counted_in_sql_whatever_the_queue_length(
    site: tuple[TestClient, HotlineConfig], store: sessionmaker[Session], statements: list[int]
) -> None:
    client, _config = site
    now = datetime.now(UTC)
    with unit_of_work(store) as session:
        for i in range(DUE):
            closed(session, f"due-{i}", now - timedelta(days=1))
        for i in range(2):  # tried two days ago, unanswered: due again, so not "retrying"
            tried(
                session,
                closed(session, f"again-{i}", now - timedelta(days=3)),
                now - timedelta(days=2),
                AttemptOutcome.NO_ANSWER,
            )
        for i in range(3):  # busy ten minutes ago: waiting for the retry interval
            tried(
                session,
                closed(session, f"wait-{i}", now - timedelta(days=1)),
                now - timedelta(minutes=10),
                AttemptOutcome.BUSY,
            )
        tried(
            session,
            closed(session, "done", now - timedelta(days=1)),
            now - timedelta(days=1),
            AttemptOutcome.COMPLETED,
        )
        tried(session, closed(session, "ringing", now - timedelta(days=1)), now, None)
    statements.clear()
    html = client.get("/robot").text
    assert card(html, "Due") == f"<b>{DUE + 2}</b>"
    assert card(html, "Retrying") == "<b>3</b>"
    assert card(html, "Dialing") == "<b>1</b>"
    # the queue is aggregated in the database: no statement ships the due tickets' ids
    assert max(statements) < DUE
