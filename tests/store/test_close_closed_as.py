"""办结 says how the ticket ended: closing without `closed_as` (or with a word that is
not one of 已解决/已解释/无法解决) is refused and changes nothing."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.config import load_config
from core.vocabulary import ClosedAs, EventKind, TicketStatus
from db.migrate import upgrade
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket, ticket_by_number
from db.workflow import WorkflowError
from tests.support.config import write_config
from tests.support.metrics_city import build_city
from tickets import handling, workflow

ACCEPTED = datetime(2026, 3, 2, 1, tzinfo=UTC)


@pytest.fixture
def site(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    upgrade(database_url)
    path = write_config(tmp_path / "cfg", database={"url": database_url})
    engine = make_engine(database_url)
    yield load_config(path), make_session_factory(engine), path
    engine.dispose()


def signed_ticket(session, config) -> str:  # type: ignore[no-untyped-def]
    build_city(session)
    ticket = create_ticket(
        session, caller_number="13800000000", local_day=ACCEPTED.date(), accepted_at=ACCEPTED
    )
    handling.dispatch(session, ticket.number, "S1", "operator", config)
    handling.sign(session, ticket.number, "S1", "unit")
    return ticket.number


@pytest.mark.parametrize("missing", [None, "", "  ", "done", "已办结"])
def test_close_without_a_valid_closed_as_is_refused_and_changes_nothing(site, missing) -> None:  # type: ignore[no-untyped-def]
    config, sessions, _ = site
    with unit_of_work(sessions) as session:
        number = signed_ticket(session, config)
        ticket = ticket_by_number(session, number)
        assert ticket is not None
        with pytest.raises(WorkflowError, match="closed_as") as refused:
            workflow.close(session, ticket, ticket.department, "已修复", "unit", missing)
        assert "已解决 resolved" in str(refused.value)  # the choices are named
        assert ticket.status == TicketStatus.SIGNED and ticket.closed_as is None
        assert EventKind.CLOSED not in [e.kind for e in ticket.events]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (ClosedAs.EXPLAINED, ClosedAs.EXPLAINED),
        ("resolved", ClosedAs.RESOLVED),
        ("已解决", ClosedAs.RESOLVED),
        ("无法解决", ClosedAs.UNRESOLVABLE),
    ],
)
def test_close_records_how_it_ended(site, given, stored) -> None:  # type: ignore[no-untyped-def]
    config, sessions, _ = site
    with unit_of_work(sessions) as session:
        number = signed_ticket(session, config)
        closed = handling.close(session, number, "S1", "已答复市民", "unit", given)
        assert closed.status == TicketStatus.CLOSED and closed.closed_as == stored


def test_cli_close_requires_closed_as(site) -> None:  # type: ignore[no-untyped-def]
    config, sessions, path = site
    with unit_of_work(sessions) as session:
        number = signed_ticket(session, config)

    def close(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "hotline.cli", "tickets", "close", number, "S1"]
        return subprocess.run(
            [*command, "--reply", "已修复", "--config", str(path), *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = close()
    assert missing.returncode == 2 and "--closed-as" in missing.stderr
    wrong = close("--closed-as", "maybe")
    assert wrong.returncode == 2 and "closed_as" in wrong.stderr + wrong.stdout
    done = close("--closed-as", "已解释")
    assert done.returncode == 0, done.stderr
    with unit_of_work(sessions) as session:
        ticket = ticket_by_number(session, number)
        assert ticket is not None and ticket.closed_as == ClosedAs.EXPLAINED
