"""One Asterisk node's daemon: its call records and finished recordings shipped into the store.

`hotline cluster node-daemon --node ast1` runs one per node (started by
`hotline cluster up`). Every few seconds it ships the node's new Master.csv
lines, then its finished recordings (ivr.cdr_tail, ivr.shipping), asking the
node's own AMI which channels are still up; then it reads the node's
queue_log on from the node's own position (agents.follow: every queue and
agent figure, the tickets' agent and wait/talk) and, with callbacks on, turns
the missed callers into callback tasks (agents.missed, one pass at a time
across the daemons). Once per retention interval it cuts the node's own
expired call records from Master.csv (NodeRetention). An unreachable AMI means a dead
node, whose files go once settled; the link is tried again on every pass.
With the job queue on, each ticket whose recording just landed gets its
transcription deferred at once (the queue's 5 s sweep would find it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from procrastinate import App
from sqlalchemy.orm import Session, sessionmaker

from agents.follow import fill_late, ingest_once
from agents.missed import follow_missed
from core.config import ClusterNode, ConfigError, HotlineConfig
from core.recording_keys import recordings_root
from db.session import make_engine, make_session_factory
from hotline.jobs import build_jobs_app, jobs_enabled
from ivr.jobs import defer_transcription_async
from ivr.reconcile import live_uniqueids
from ivr.shipping import SETTLE_SECONDS, NodeDisk, ShipReport, ship_node
from links.ami import ami_client
from privacy.retention import expire_cdrs
from telephony.ami import AMIClient, AMIError
from tools.cluster.layout import DEBIAN_ASTERISK_MODULES, cluster_of, default_layout
from tools.cluster.nodes import node_config

log = logging.getLogger(__name__)

PASS_SECONDS = 3.0  # between two passes over the node
LATE_TICKETS = timedelta(minutes=15)  # queue_log lines looked at for tickets made after them


@dataclass(frozen=True)
class NodeDaemonParts:
    """What one node's daemon works on: the node's disk and the config its Asterisk sees."""

    disk: NodeDisk
    node_config: HotlineConfig  # its AMI's address and port are the node's
    queue_log: Path  # where the node's app_queue writes (its astlogdir, logger.conf)


def node_parts(config: HotlineConfig, node_name: str) -> NodeDaemonParts:
    """The node's folders as `hotline cluster render` laid them out; an unknown name is refused."""
    cluster = cluster_of(config)
    node = _node_named(cluster.nodes, node_name, config)
    # only the hosts' state folders matter here, never the rendered files or the modules
    layout = default_layout(config, config.state_dir, DEBIAN_ASTERISK_MODULES)
    own = node_config(config, node, layout)
    disk = NodeDisk(
        node=node.name,
        recordings_dir=own.recordings_dir,
        master_csv=layout.node_state(node) / "log" / "cdr-csv" / "Master.csv",
        store_dir=recordings_root(config),
    )
    return NodeDaemonParts(disk, own, layout.node_state(node) / "log" / "queue_log")


def _node_named(nodes: list[ClusterNode], name: str, config: HotlineConfig) -> ClusterNode:
    for node in nodes:
        if node.name == name:
            return node
    known = ", ".join(n.name for n in nodes)
    raise ConfigError(f"{config.source}: cluster.nodes has no node {name!r} (known: {known})")


async def ship_once(
    sessions: sessionmaker[Session],
    disk: NodeDisk,
    ami: AMIClient | None,
    jobs: App | None = None,
    now: float | None = None,
    settle: float = SETTLE_SECONDS,
) -> ShipReport:
    """One pass over the node: call records, then finished recordings, then deferrals.

    `ami` None or down: the node is taken for dead (its files go once settled).
    `jobs`: the job queue, open, when jobs are on.
    """
    live = await live_uniqueids(ami)
    report = await asyncio.to_thread(ship_node, sessions, disk, live, now, settle)
    if jobs is not None:
        for ticket_id in report.tickets:
            try:
                report.deferred += await defer_transcription_async(jobs, ticket_id)
            except Exception as exc:  # the queue's sweep defers it later; the pass goes on
                log.warning("node %s: ticket %d not deferred: %s", disk.node, ticket_id, exc)
    return report


def follow_queue_log(
    sessions: sessionmaker[Session], config: HotlineConfig, parts: NodeDaemonParts
) -> tuple[int, int, int]:
    """The node's new queue_log lines kept; then missed callers' tasks made and closed.

    The lines read, the tasks made, the tasks closed (0, 0 with callbacks off).
    """
    lines = ingest_once(sessions, parts.queue_log, parts.disk.node)
    # a ticket made after its lines were kept (at the call's end, or by the reconciler)
    fill_late(sessions, datetime.now(UTC) - LATE_TICKETS)
    if not config.callback.enabled:
        return lines, 0, 0
    made, closed = follow_missed(sessions, config)
    return lines, made, closed


@dataclass
class NodeRetention:
    """The node's own Master.csv keeps call records no longer than the store does.

    Every `privacy.retention_interval_hours` (the first pass at start) the
    lines that ended before `privacy.retention_days.cdr` are cut from the file
    (`privacy.retention.expire_cdrs`, audited). The rewrite gives the file a
    new inode, so the next pass reads it from its start again; the store knows
    a line by its values (`line_key`), so nothing is shipped twice.
    """

    days: int
    every_seconds: float
    due_at: float = 0.0  # monotonic

    @classmethod
    def of(cls, config: HotlineConfig) -> NodeRetention:
        privacy = config.privacy
        return cls(privacy.retention_days.cdr, privacy.retention_interval_hours * 3600.0)

    def trim(
        self, sessions: sessionmaker[Session], master: Path, now: datetime, clock: float
    ) -> int | None:
        """Lines removed from the node's file; None when not due yet."""
        if clock < self.due_at:
            return None
        self.due_at = clock + self.every_seconds
        return expire_cdrs(sessions, master, now - timedelta(days=self.days))


def run_node_daemon(config: HotlineConfig, node_name: str) -> None:
    """Ship the node's records and recordings every few seconds until SIGTERM or SIGINT."""
    parts = node_parts(config, node_name)  # an unknown node fails before anything starts
    cluster = cluster_of(config)
    asyncio.run(
        serve_node(
            config,
            parts,
            pass_seconds=cluster.ship_interval_seconds,
            settle=cluster.ship_settle_seconds,
        )
    )


async def serve_node(
    config: HotlineConfig,
    parts: NodeDaemonParts,
    stop: asyncio.Event | None = None,
    pass_seconds: float = PASS_SECONDS,
    settle: float = SETTLE_SECONDS,
) -> None:
    """The daemon's loop (stopped by `stop`, or by SIGTERM/SIGINT when none is given)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    link, queue = NodeLink(parts), QueueLink(config)
    retention = NodeRetention.of(config)
    log.info(
        "node daemon %s: %s -> %s", parts.disk.node, parts.disk.recordings_dir, parts.disk.store_dir
    )
    try:
        while not stop.is_set():
            try:
                ami, jobs = await link.client(), await queue.opened()
                log_report(await ship_once(sessions, parts.disk, ami, jobs, settle=settle))
                followed = await asyncio.to_thread(follow_queue_log, sessions, config, parts)
                log_followed(parts.disk.node, followed)
                trimmed = await asyncio.to_thread(
                    retention.trim,
                    sessions,
                    parts.disk.master_csv,
                    datetime.now(UTC),
                    time.monotonic(),
                )
                if trimmed:
                    log.info("node %s: %d expired call records cut", parts.disk.node, trimmed)
            except Exception:
                log.exception("node %s: pass failed; next in %.0f s", parts.disk.node, pass_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pass_seconds)
    finally:
        await link.close()
        await queue.close()
        engine.dispose()


class NodeLink:
    """The daemon's one AMI client to its node: connected on demand, tried again each pass.

    Once connected the client keeps itself up (it reconnects on its own); a
    first connection that fails is tried again on the next pass.
    """

    def __init__(self, parts: NodeDaemonParts) -> None:
        self.parts = parts
        self.ami: AMIClient | None = None
        self.was_up: bool | None = None

    async def client(self) -> AMIClient | None:
        if self.ami is None:
            ami = ami_client(self.parts.node_config)
            try:
                await ami.connect()
            except (AMIError, OSError) as exc:
                self._saw(False, str(exc))
                return None
            self.ami = ami
        self._saw(self.ami.connected.is_set(), "link lost")
        return self.ami

    def _saw(self, up: bool, why: str) -> None:
        if up != self.was_up:
            node = self.parts.disk.node
            if up:
                log.info("node %s: AMI up", node)
            else:
                log.warning("node %s: AMI unreachable (%s): taken for dead", node, why)
        self.was_up = up

    async def close(self) -> None:
        if self.ami is not None:
            await self.ami.close()
            self.ami = None


class QueueLink:
    """The job queue, opened on demand when jobs are on (PostgreSQL with `cluster:`).

    A queue that cannot be opened (the database away) is tried again on the
    next pass; meanwhile the queue's own sweep defers what landed.
    """

    def __init__(self, config: HotlineConfig) -> None:
        self.app = build_jobs_app(config, max_connections=2) if jobs_enabled(config) else None
        self.open = False
        self.warned = False

    async def opened(self) -> App | None:
        if self.app is None:
            return None
        if not self.open:
            try:
                await self.app.open_async()
            except Exception as exc:
                if not self.warned:  # once, not every pass while the database is away
                    log.warning("job queue not reachable (%s): its sweep defers them", exc)
                self.warned = True
                return None
            self.open, self.warned = True, False
        return self.app

    async def close(self) -> None:
        if self.app is not None and self.open:
            await self.app.close_async()
            self.open = False


def log_report(report: ShipReport) -> None:
    """A line when the pass did something (each failed file is logged where it failed)."""
    if report.shipped or report.cdr_lines:
        log.info(
            "node %s: %d call records, %d recordings shipped (%d WAV headers rebuilt), "
            "%d transcriptions deferred; %d live, %d settling",
            report.node,
            report.cdr_lines,
            len(report.shipped),
            len(report.repaired),
            report.deferred,
            len(report.live),
            len(report.growing),
        )


def log_followed(node: str, followed: tuple[int, int, int]) -> None:
    """A line when the queue_log pass kept lines or moved callback tasks."""
    lines, made, closed = followed
    if lines or made or closed:
        log.info(
            "node %s: %d queue_log lines kept; %d missed callers to call back, %d tasks closed",
            node,
            lines,
            made,
            closed,
        )
