"""The node daemon reads its node's queue_log into the store each pass, then the missed callers.

The file sits where the node's app_queue writes it (its astlogdir, beside
cdr-csv); the lines' times are taken from the clock the daemon reads
(`time.time()`, faketime's too), since its missed-caller pass looks a day back
from now.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents.store import SCRIPTED, bind_seat, position
from core.config import HotlineConfig, load_config
from core.vocabulary import CallDirection
from db.models import Call, CallbackTask, Ticket, User
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket
from hotline.node_daemon import NodeDaemonParts, follow_queue_log, node_parts, serve_node
from tests.support.config import free_port, write_config
from tests.support.events import eventually
from tools.cluster.layout import default_layout

ANSWERED = "ast1-1796464800.7"  # answered by wang after 4 s, 30 s of talk
MISSED = "ast1-1796464900.9"  # waited 8 s and hung up: a missed caller


def cluster_config(folder: Path, **overrides: object) -> HotlineConfig:
    """A cluster config whose node ast1's AMI port nobody listens on; callbacks on."""
    node = {
        "name": "ast1",
        "address": "127.0.0.11",
        "ami_port": free_port(),
        "rtp_start": 10000,
        "rtp_end": 10999,
    }
    return load_config(
        write_config(
            folder,
            cluster={"nodes": [node], "recordings_store": "var/store"},
            callback={"abandon_min_seconds": 5},
            **overrides,
        )
    )


def lines(now: float) -> list[str]:
    start = int(now) - 120
    return [
        f"{start}|{ANSWERED}|hotline-agents|NONE|ENTERQUEUE||13900139000|1",
        f"{start + 4}|{ANSWERED}|hotline-agents|wang|CONNECT|4|{ANSWERED}x|2",
        f"{start + 34}|{ANSWERED}|hotline-agents|wang|COMPLETECALLER|4|30|1",
        f"{start + 40}|{MISSED}|hotline-agents|NONE|ENTERQUEUE||13900000009|1",
        f"{start + 48}|{MISSED}|hotline-agents|NONE|ABANDON|1|1|8",
    ]


def calls_and_agent(sessions: sessionmaker[Session], now: float) -> int:
    """The agent wang, the answered call's ticket, the missed call's row; the ticket's id."""
    at = datetime.fromtimestamp(int(now) - 120, UTC)
    with unit_of_work(sessions) as session:
        user = User(username="wang", password_hash="!", role="agent")
        session.add(user)
        session.flush()
        bind_seat(session, user, [], SCRIPTED, ["hotline-agents"])
        ticket = create_ticket(
            session,
            caller_number="13900139000",
            local_day=date(2026, 12, 5),
            accepted_at=at,
            origin_uniqueid=ANSWERED,
        )
        session.add(
            Call(
                uniqueid=MISSED,
                direction=CallDirection.INBOUND,
                caller_number="13900000009",
                started_at=at,
                ended_at=datetime.fromtimestamp(int(now) - 60, UTC),
                last_step="queue",
                node="ast1",
            )
        )
        session.flush()
        return ticket.id


def write_queue_log(parts: NodeDaemonParts, now: float) -> None:
    parts.queue_log.parent.mkdir(parents=True, exist_ok=True)
    parts.queue_log.write_text("".join(line + "\n" for line in lines(now)))


def filled(sessions: sessionmaker[Session], ticket_id: int) -> tuple[object, ...] | None:
    with unit_of_work(sessions) as session:
        ticket = session.get_one(Ticket, ticket_id)
        if ticket.agent_id is None:
            return None
        return (ticket.queue, ticket.wait_seconds, ticket.talk_seconds)


def missed_tasks(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with unit_of_work(sessions) as session:
        return [(t.uniqueid, t.reason) for t in session.scalars(select(CallbackTask))]


def test_the_nodes_queue_log_is_beside_its_call_records(tmp_path: Path) -> None:
    config = cluster_config(tmp_path)
    parts = node_parts(config, "ast1")
    layout = default_layout(config, tmp_path / "etc", Path("/modules"))
    node = config.cluster.nodes[0]  # type: ignore[union-attr]
    # astlogdir => the node's state/log (asterisk.conf); logger.conf's queue_log_name
    assert parts.queue_log == layout.node_state(node) / "log" / "queue_log"
    assert parts.disk.master_csv.parent.parent == parts.queue_log.parent


def test_one_pass_keeps_the_nodes_lines_fills_the_ticket_and_makes_the_task(
    migrated_url: str, tmp_path: Path
) -> None:
    config = cluster_config(tmp_path, database={"url": migrated_url})
    parts = node_parts(config, "ast1")
    engine = make_engine(migrated_url)
    sessions = make_session_factory(engine)
    try:
        now = time.time()
        ticket_id = calls_and_agent(sessions, now)
        write_queue_log(parts, now)
        assert follow_queue_log(sessions, config, parts) == (5, 1, 0)
        assert filled(sessions, ticket_id) == ("hotline-agents", 4, 30)
        assert missed_tasks(sessions) == [(MISSED, "abandoned")]
        assert follow_queue_log(sessions, config, parts) == (0, 0, 0)  # nothing twice
        with unit_of_work(sessions) as session:
            size = parts.queue_log.stat().st_size
            assert position(session, "ast1") == (parts.queue_log.stat().st_ino, size)
            assert position(session) == (0, 0)  # no one box's row
    finally:
        engine.dispose()


def test_with_callbacks_off_the_pass_only_keeps_the_lines(
    migrated_url: str, tmp_path: Path
) -> None:
    config = cluster_config(tmp_path, database={"url": migrated_url})
    config = config.model_copy(
        update={"callback": config.callback.model_copy(update={"enabled": False})}
    )
    parts = node_parts(config, "ast1")
    engine = make_engine(migrated_url)
    sessions = make_session_factory(engine)
    try:
        now = time.time()
        calls_and_agent(sessions, now)
        write_queue_log(parts, now)
        assert follow_queue_log(sessions, config, parts) == (5, 0, 0)
        assert missed_tasks(sessions) == []
    finally:
        engine.dispose()


async def test_the_daemon_reads_its_nodes_queue_log_each_pass(
    migrated_url: str, tmp_path: Path
) -> None:
    """Its node's AMI unreachable (a dead node's files still go): the queue_log is read too."""
    config = cluster_config(tmp_path, database={"url": migrated_url})
    parts = node_parts(config, "ast1")
    engine = make_engine(migrated_url)
    sessions = make_session_factory(engine)
    now = time.time()
    ticket_id = calls_and_agent(sessions, now)
    stop = asyncio.Event()
    daemon = asyncio.create_task(serve_node(config, parts, stop, pass_seconds=0.2))
    try:
        await asyncio.sleep(0.5)  # a pass or two before the file exists: nothing to read
        write_queue_log(parts, now)
        assert await eventually(
            lambda: filled(sessions, ticket_id), timeout=60, what="the ticket's queue figures"
        ) == ("hotline-agents", 4, 30)
        await eventually(lambda: missed_tasks(sessions), timeout=60, what="the missed caller")
        assert missed_tasks(sessions) == [(MISSED, "abandoned")]
    finally:
        stop.set()
        await asyncio.wait_for(daemon, 60)
        engine.dispose()


def test_a_ticket_made_after_its_lines_were_kept_is_filled_on_the_next_pass(
    migrated_url: str, tmp_path: Path
) -> None:
    """The call's end (or the reconciler, for a call cut by a node's death) comes late."""
    config = cluster_config(tmp_path, database={"url": migrated_url})
    parts = node_parts(config, "ast1")
    engine = make_engine(migrated_url)
    sessions = make_session_factory(engine)
    try:
        now = time.time()
        write_queue_log(parts, now)
        assert follow_queue_log(sessions, config, parts)[0] == 5  # no ticket yet
        ticket_id = calls_and_agent(sessions, now)
        assert filled(sessions, ticket_id) is None
        assert follow_queue_log(sessions, config, parts)[0] == 0
        assert filled(sessions, ticket_id) == ("hotline-agents", 4, 30)
    finally:
        engine.dispose()
