"""The agents' device-state sync as part of a running process (issue 22, agents across nodes).

`run_agent_sync` opens one AMI client per node of `config.cluster` (the
credentials of `asterisk.ami`) and runs `agents.state_sync.DeviceStateSync`
until stop. Every FastAGI worker may run it, but only one at a time writes:
each asks PostgreSQL for one advisory lock, the holder writes, the others
follow every event as standbys and take over within about 5 s when the
holder's connection dies, first sending every node the whole state they
followed. Two writers would write the same changes in the same order, but one
that lags could put a stale NOT_INUSE over a newer RINGING.

The seats of agent-first callbacks' logins come from the store, refreshed in
the background every 30 s (an agent's seat rarely changes; the event loop never
waits on the store for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from agents.cluster_control import seats_by_login
from agents.state_sync import DeviceStateSync
from core.config import HotlineConfig
from db.session import make_engine, make_session_factory, unit_of_work
from links.ami import node_client
from telephony.ami import AMIClient

log = logging.getLogger(__name__)

# the cluster-wide advisory lock of the one writing sync ("12345", issue 22)
LEADER_LOCK = 1_234_500_022
LEADER_CHECK_SECONDS = 5.0  # how often the holder checks it still holds; a standby retries
SEATS_REFRESH_SECONDS = 30.0


class SeatBook:
    """Agents' seats by login, read from the store off the event loop."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.seats: dict[str, str] = {}

    def seat_of(self, login: str) -> str | None:
        return self.seats.get(login)

    def _load(self) -> dict[str, str]:
        with unit_of_work(self.sessions) as session:
            return seats_by_login(session)

    async def keep_fresh(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.seats = await asyncio.to_thread(self._load)
            except Exception as exc:  # the store away: the last seats serve meanwhile
                log.warning("agent state sync: agents' seats not read (%r)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SEATS_REFRESH_SECONDS)


async def run_agent_sync(
    config: HotlineConfig, stop: asyncio.Event, sessions: sessionmaker[Session] | None = None
) -> None:
    """Keep every agent's device state equal on every node until stop (no cluster: nothing)."""
    if config.cluster is None:
        return  # one box: app_queue watches each agent's phone itself
    engine = make_engine(config.database.url) if sessions is None else None
    if engine is not None:
        sessions = make_session_factory(engine)
    assert sessions is not None
    book = SeatBook(sessions)
    bind = sessions.kw["bind"]
    shared = bind.dialect.name == "postgresql"  # else no cluster-wide lock: this process writes
    links: dict[str, AMIClient] = {
        node.name: node_client(config, node) for node in config.cluster.nodes
    }
    sync = DeviceStateSync(
        links,
        book.seat_of,
        grace_seconds=config.cluster.node_lost_grace_seconds,
        writing=not shared,
    )
    tasks = [
        asyncio.create_task(book.keep_fresh(stop), name="agent-sync-seats"),
        asyncio.create_task(sync.run(stop), name="agent-sync"),
    ]
    if shared:
        tasks.append(
            asyncio.create_task(_lead_while_held(bind, stop, sync), name="agent-sync-lock")
        )
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(link.close() for link in links.values()), return_exceptions=True)
        if engine is not None:
            engine.dispose()


async def _lead_while_held(engine: Engine, stop: asyncio.Event, sync: DeviceStateSync) -> None:
    """Write while this process holds the cluster's sync lock; stand by otherwise."""
    while not stop.is_set():
        held = await asyncio.to_thread(_try_lead, engine)
        if held is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LEADER_CHECK_SECONDS)
            continue
        log.info("agent state sync: this process writes the agents' states")
        sync.lead(True)
        try:
            await _hold(held, stop)
        finally:
            sync.lead(False)
            await asyncio.to_thread(_release, held)


async def _hold(connection: Connection, stop: asyncio.Event) -> None:
    """Until stop, or until the lock's connection died (another process may lead then)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LEADER_CHECK_SECONDS)
        if stop.is_set():
            return
        try:
            await asyncio.to_thread(_still_there, connection)
        except Exception as exc:
            log.warning("agent state sync: the sync lock's connection died (%r); standing by", exc)
            return


def _try_lead(engine: Engine) -> Connection | None:
    """A connection holding the cluster's sync lock, or None (another process holds it)."""
    try:
        connection = engine.connect()
    except Exception as exc:
        log.warning("agent state sync: store not reachable for the sync lock (%r)", exc)
        return None
    try:
        held = connection.scalar(select(func.pg_try_advisory_lock(LEADER_LOCK)))
        connection.commit()  # the lock is the session's; no transaction stays open
    except Exception as exc:
        log.warning("agent state sync: the sync lock not asked for (%r)", exc)
        held = False
    if not held:
        _release(connection)
        return None
    return connection


def _release(connection: Connection) -> None:
    with contextlib.suppress(Exception):
        connection.close()  # the session ends: PostgreSQL releases the lock


def _still_there(connection: Connection) -> None:
    connection.scalar(select(1))
    connection.commit()
