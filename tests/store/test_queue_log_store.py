"""queue_log kept in the store: lines, agent states, and the tickets they describe."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from agents.follow import ingest_once
from agents.queue_log import Chunk, parse_line
from agents.store import SCRIPTED, bind_seat, keep, position
from core.vocabulary import AgentState
from db.models import AgentStateChange, QueueLogEntry, User
from db.session import unit_of_work
from db.tickets import create_ticket

LINES = [
    "1796430000|NONE|hotline-agents|wang|ADDMEMBER|",
    "1796430000|NONE|hotline-agents-en|wang|ADDMEMBER|",
    "1796430010|1796430008.5|hotline-agents|NONE|ENTERQUEUE||13900139000|1",
    "1796430013|1796430008.5|hotline-agents|wang|CONNECT|3|1796430010.6|2",
    "1796430043|1796430008.5|hotline-agents|wang|COMPLETECALLER|3|30|1",
    "1796430050|NONE|hotline-agents|wang|PAUSE|break",
    "1796430050|NONE|hotline-agents-en|wang|PAUSE|break",
]


def chunk(lines: list[str], offset: int) -> Chunk:
    events = [e for line in lines if (e := parse_line(line)) is not None]
    return Chunk(events, 42, offset)


def test_one_pass_keeps_lines_states_ticket_facts_and_position(
    store: sessionmaker[Session],
) -> None:
    with unit_of_work(store) as session:
        user = User(username="wang", password_hash="!", role="agent")
        session.add(user)
        session.flush()
        agent = bind_seat(session, user, [], SCRIPTED, ["hotline-agents", "hotline-agents-en"])
        ticket = create_ticket(
            session,
            caller_number="13900139000",
            local_day=date(2026, 12, 5),
            accepted_at=datetime(2026, 12, 5, 1, tzinfo=UTC),
            origin_uniqueid="1796430008.5",
        )
        agent_id, ticket_id = agent.id, ticket.id
    with unit_of_work(store) as session:
        assert keep(session, chunk(LINES[:4], 100)) == 4
    with unit_of_work(store) as session:
        assert keep(session, chunk(LINES[4:], 200)) == 3
        assert position(session) == (42, 200)
        assert session.scalar(select(func.count()).select_from(QueueLogEntry)) == 7
        states = session.execute(
            select(AgentStateChange.state, AgentStateChange.reason)
            .where(AgentStateChange.agent_id == agent_id)
            .order_by(AgentStateChange.at, AgentStateChange.id)
        ).all()
        # two queues add and pause the agent twice: one change each
        assert [tuple(s) for s in states] == [
            (AgentState.READY, None),
            (AgentState.RINGING, None),
            (AgentState.ON_CALL, None),
            (AgentState.WRAP_UP, None),
            (AgentState.PAUSED, "break"),
        ]
        filled = session.get_one(type(ticket), ticket_id)
        assert (filled.agent_id, filled.queue, filled.wait_seconds, filled.talk_seconds) == (
            agent_id,
            "hotline-agents",
            3,
            30,
        )


def test_two_readers_at_once_keep_each_line_once(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    """hotline serve and an open wallboard read queue_log in one process: no line kept twice."""
    log = tmp_path / "queue_log"
    log.write_text("".join(line + "\n" for line in LINES))
    barrier = threading.Barrier(2)

    def read() -> None:
        barrier.wait()
        with contextlib.suppress(OperationalError, IntegrityError):  # the loser tries again
            ingest_once(store, log)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ingest_once(store, log)  # whatever the loser left
    with unit_of_work(store) as session:
        assert session.scalar(select(func.count()).select_from(QueueLogEntry)) == len(LINES)
