"""`hotline robot run` on a cluster: one AMI link per node, a node chosen per call (issue 22).

The one-box robot (`callback_robot.runner.Robot`) dials through one Asterisk.
Here every node has its own link; each claim chooses, per call, the usable node
with the most free slots (`callback_robot.claim`), and the call goes out through
that node's manager as `PJSIP/{number}@sip-front`, so Kamailio carries it to
the citizen. R robots share the work through the store: the claim lock
serialises them, and the caps are counted there.

Beside the one-box jobs (dispatch, recovery, report) runs the node watch, every
`watch_seconds`: it reads Kamailio's node states, marks a node lost (and settles
its calls in flight, once, whichever robot sees it first) when its AMI has been
unreachable and Kamailio has had it inactive beyond `cluster.node_lost_grace_seconds`,
and rejoins it when both see it again. Recovery runs per node, on that node's
channels and on the call records its node daemon shipped to the store; it only
touches attempts older than the ring timeout plus a grace, since another robot
may have just placed a call whose channel does not exist yet.

What it does is logged: each call's node, a node lost or rejoined, and once
(not every pass) that no node may take a call, with each node's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.orm import Session, sessionmaker

from callback_robot import recovery
from callback_robot.dialer import Dialer
from callback_robot.dispatcher import Dispatcher
from callback_robot.front import FrontReader
from callback_robot.lost import log_lost
from callback_robot.node_links import NodeLink, node_links
from callback_robot.nodes import NodeHealth, NodeView, has_rejoined, is_lost, why_unusable
from callback_robot.runner import (
    DISPATCH_SECONDS,
    GRACE_SECONDS,
    RECOVERY_SECONDS,
    report,
    robot_engine,
    until_stopped,
)
from callback_robot.runner import robot_id as this_process
from callback_robot.store import RobotStore
from callback_robot.watch import NodeWatch
from core.config import HotlineConfig
from core.telemetry import DISPATCH_PASSES
from db.cluster import draining_nodes, lost_nodes
from db.runtime import StoreRuntime
from db.session import make_session_factory, unit_of_work
from telephony.ami import AMIError

log = logging.getLogger(__name__)
WATCH_SECONDS = 1.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def dialing_out(config: HotlineConfig, outbound_channel: str) -> HotlineConfig:
    """The config as the nodes' dialers use it: calls leave through the front."""
    asterisk = config.asterisk.model_copy(update={"outbound_channel": outbound_channel})
    return config.model_copy(update={"asterisk": asterisk})


@dataclass(frozen=True)
class Marks:
    """What the store says of the nodes: draining (`hotline cluster drain`) and lost."""

    draining: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()


class ClusterRobot:
    """The robot's jobs over every node's link and one store; `start()` then `stop()`."""

    def __init__(
        self,
        config: HotlineConfig,
        links: dict[str, NodeLink],
        sessions: sessionmaker[Session],
        front: FrontReader,
        *,
        outbound_channel: str,
        robot_id: str | None = None,
        dispatch_seconds: float = DISPATCH_SECONDS,
        recovery_seconds: float = RECOVERY_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
        watch_seconds: float = WATCH_SECONDS,
        runtime: StoreRuntime | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`outbound_channel`: the nodes' way out through the front (`PJSIP/{number}@sip-front`)."""
        assert config.cluster is not None
        self.config = config
        self.links = links
        self.sessions = sessions
        self.id = robot_id or this_process()
        self.clock = clock
        self.dispatch_seconds = dispatch_seconds
        self.recovery_seconds = recovery_seconds
        self.watch_seconds = watch_seconds
        self.grace = timedelta(seconds=config.robot.ring_timeout_seconds + grace_seconds)
        self.lost_grace = timedelta(seconds=config.cluster.node_lost_grace_seconds)
        self.store = RobotStore(config, sessions, runtime=runtime)
        self.watch = NodeWatch(links, front, config.cluster.robot.max_channels_per_node, clock)
        dialing = dialing_out(config, outbound_channel)
        self.dialers = {
            name: Dialer(dialing, link.client, sessions, self.id, self.store)
            for name, link in links.items()
        }
        self.dispatcher = Dispatcher(
            config,
            sessions,
            self.place,
            robot_id=self.id,
            clock=clock,
            store=self.store,
            nodes=self.watch.view,
        )
        self.marks = Marks()
        self.unusable: dict[str, str] | None = None  # the reasons last logged
        self.started_at = clock()
        self.last_pass: datetime | None = None
        self.passes = 0
        self.pending: set[asyncio.Task[None]] = set()
        self.scheduler = AsyncIOScheduler(timezone=config.timezone)
        self.follower: asyncio.Task[None] | None = None
        self.watcher: asyncio.Task[None] | None = None
        self.hooks = {name: self.reconnected(name) for name in links}

    # -- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Apply the spool, link every node, watch them once, then schedule the jobs."""
        await asyncio.to_thread(self.store.replay)
        for name, link in self.links.items():
            link.client.on_connect.append(self.hooks[name])
            await link.start()
        await self.watch_nodes()
        every = {"max_instances": 1, "coalesce": True}
        jobs = [
            (self.dispatch, self.dispatch_seconds, "dispatch"),
            (self.periodic_recovery, self.recovery_seconds, "recovery"),
        ]
        for job, seconds, name in jobs:
            self.scheduler.add_job(job, "interval", seconds=seconds, id=name, **every)
        self.scheduler.add_job(
            report,
            "interval",
            minutes=self.config.robot.report_minutes,
            id="report",
            args=[self.sessions, self.config],
            **every,
        )
        self.scheduler.start()
        # every second: a task of its own, not a scheduler job that logs each run
        self.watcher = asyncio.create_task(self.keep_watching(), name="node-watch")
        self.follower = asyncio.create_task(
            self.dispatcher.follow(self.dispatch), name="dispatch-on-free"
        )
        await self.dispatch()

    async def stop(self) -> None:
        """Stop the jobs, let the calls being placed finish their Originate, close the links."""
        self.scheduler.shutdown(wait=False)
        for task in (self.watcher, self.follower):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
        for name, link in self.links.items():
            if self.hooks[name] in link.client.on_connect:
                link.client.on_connect.remove(self.hooks[name])
            await link.close()

    # -- the nodes --------------------------------------------------------------------
    def read_marks(self) -> Marks:
        with unit_of_work(self.sessions) as session:
            return Marks(frozenset(draining_nodes(session)), frozenset(lost_nodes(session)))

    async def keep_watching(self) -> None:
        """`watch_nodes` every `watch_seconds` until cancelled."""
        while True:
            await asyncio.sleep(self.watch_seconds)
            await self.watch_nodes()

    async def watch_nodes(self) -> None:
        """Read Kamailio, then mark lost nodes (their calls settled) and rejoined ones."""
        try:
            await self.watch.read()
            self.marks = await asyncio.to_thread(self.read_marks)
            now = self.clock()
            for node in self.watch.view().nodes:
                await self.judge(node, now)
        except Exception:
            log.exception("node watch failed; next one in %.0f s", self.watch_seconds)

    async def judge(self, node: NodeHealth, now: datetime) -> None:
        """Lost beyond the grace: marked and settled (once, cluster-wide); back: rejoined."""
        marks = self.marks
        if node.name not in marks.lost:
            if is_lost(node, now, self.lost_grace):
                log_lost(node.name, await self.store.node_lost(node.name, now, self.id))
                self.marks = Marks(marks.draining, marks.lost | {node.name})
        elif has_rejoined(node):
            if await self.store.node_rejoined(node.name, now):
                log.warning("node %s rejoined: it takes robot calls again", node.name)
            self.marks = Marks(marks.draining, marks.lost - {node.name})

    def usable(self, view: NodeView) -> bool:
        """Whether any node may take a call; said in the log when that changes, not every pass."""
        reasons = why_unusable(view, self.marks.draining, self.marks.lost)
        if len(reasons) < len(view.nodes):
            if self.unusable is not None:
                log.info(
                    "robot: nodes usable again (%s)",
                    ", ".join(sorted(set(view.names()) - set(reasons))),
                )
            self.unusable = None
            return True
        if reasons != self.unusable:
            log.warning(
                "robot: no node may take a call, nothing claimed (%s)",
                "; ".join(f"{name}: {why}" for name, why in reasons.items()),
            )
        self.unusable = reasons
        return False

    # -- dispatching ------------------------------------------------------------------
    async def dispatch(self) -> None:
        """One pass: claim who is due on the usable nodes, record the heartbeat, place the calls."""
        if not self.usable(self.watch.view()):
            return
        try:
            now = self.clock()
            claimed = await self.dispatcher.claim(now)
            await self.beat(now)
        except Exception:
            log.exception("dispatch pass failed; next one in %.0f s", self.dispatch_seconds)
            return
        if claimed:
            spread = Counter(call.node for call in claimed)
            log.info(
                "robot: %d calls claimed (%s)",
                len(claimed),
                ", ".join(f"{node} {count}" for node, count in sorted(spread.items())),
            )
        for call in claimed:
            task = asyncio.create_task(self.dispatcher.place_and_free(call))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def place(self, attempt_id: int, ticket_id: int, number: str, node: str | None) -> None:
        """Place a claimed call through its node's link (`Dispatcher`'s `place`)."""
        dialer = self.dialers.get(node or "")
        if dialer is None:  # a node the claim chose that this robot has no link to: not sent
            log.error("attempt %s: no AMI link to node %s; left for recovery", attempt_id, node)
            return
        await dialer.place(attempt_id, ticket_id, number, node)

    async def beat(self, at: datetime) -> None:
        await self.store.heartbeat(self.id, self.started_at, at)
        self.last_pass = at
        self.passes += 1
        DISPATCH_PASSES.inc()

    # -- recovery ---------------------------------------------------------------------
    def reconnected(self, name: str) -> Callable[[], object]:
        async def hook() -> None:
            # the node may have restarted: its calls placed before the grace that it no
            # longer has are over (later ones may be another robot's, still ringing)
            await self.recover_node(name, self.clock() - self.grace)

        return hook

    async def periodic_recovery(self) -> None:
        """On every node that answers: attempts older than ring timeout + grace it no longer has."""
        started_before = self.clock() - self.grace
        for name, link in self.links.items():
            if not link.up:
                continue  # unreachable: the node watch decides whether it is lost
            try:
                await self.recover_node(name, started_before)
            except Exception:
                log.exception(
                    "recovery on node %s failed; next pass in %.0f s", name, self.recovery_seconds
                )

    async def recover_node(self, name: str, started_before: datetime) -> None:
        """Settle the node's attempts that no channel of it carries (from its call records)."""
        await asyncio.to_thread(self.store.replay)  # the citizens' own answers first
        try:
            live = await recovery.live_attempt_ids(self.links[name].client)
        except (AMIError, TimeoutError) as exc:
            log.warning("recovery on node %s skipped: cannot list its channels (%s)", name, exc)
            return
        settled = await self.store.settle_in_flight(live, started_before, None, node=name)
        recovery.log_settled(settled)


async def run_cluster_robot(
    config: HotlineConfig,
    front: FrontReader,
    outbound_channel: str,
    stop: asyncio.Event | None = None,
    **options: float,
) -> None:
    """Link every node, then watch, dispatch and recover until stopped (SIGINT, SIGTERM).

    `front` reads Kamailio's node states and `outbound_channel` is the nodes' way
    out through it: both come from the cluster's layout, which the composition
    (`hotline robot run`) knows. `options`: the jobs' intervals (`ClusterRobot`).
    """
    links = node_links(config)
    robot: ClusterRobot | None = None
    try:
        runtime = StoreRuntime(make_session_factory(robot_engine(config)))
        robot = ClusterRobot(
            config,
            links,
            runtime.sessions,
            front,
            outbound_channel=outbound_channel,
            runtime=runtime,
            **options,  # type: ignore[arg-type]
        )
        await robot.start()
        await until_stopped(stop or asyncio.Event())
    finally:
        if robot is not None:
            await robot.stop()
        else:
            for link in links.values():
                await link.close()
