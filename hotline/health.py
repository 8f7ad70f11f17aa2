"""`/healthz` and `/metrics` for operators, served by `hotline serve` on a port of their own.

They answer on `health.host:health.port` (loopback by default), never on the
console's port: the console is for people who log in, these are for the host's
scraper. `/healthz` answers 200 when every check passes and 503 otherwise, with
one line per check: Asterisk reachable over AMI, the database writable within
the flows' retry budget, FastAGI accepting, the robot's AMI link up and its
heartbeat fresh, the spools empty (nothing waiting, nothing quarantined), the
recordings disk above `health.min_free_disk_mb`, and, in `hotline serve`, the
console listening. In a cluster's console the one Asterisk and the robot give
way to the cluster's parts (`hotline.cluster_health`). The checks that ask the
store (the write, the robot's heartbeat) are made at most every
`health.cache_seconds`, however many ask at once, so a burst of requests never
queues writes on the store thread the calls use; the others are read at each
request. A detail never carries an error text from the database driver (it may
name the server's host and the user): the kind of error only, the text goes to
the log. `/metrics` is the Prometheus text format of the process's registry
(see `core.telemetry` and `telephony.telemetry`), with the gauges read at
scrape time; with the job queue on (`hotline.jobs.jobs_enabled`), each queue's
jobs to do and how long the oldest due one has waited.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from callback_robot.heartbeat import latest_heartbeat
from callback_robot.runner import Robot
from callback_robot.status import is_stalled
from core.config import HotlineConfig
from core.telemetry import (
    RECORDINGS_FREE_BYTES,
    ROBOT_HEARTBEAT_AGE,
    SPOOL_PENDING,
    SPOOL_QUARANTINED,
)
from db.health import probe_write
from db.jobs import queue_backlog
from db.runtime import Spool, StoreUnavailable
from hotline.cluster_health import ClusterLook, look_at_cluster
from hotline.jobs import QUEUES, jobs_enabled
from ivr.store import IvrStore
from telephony.ami import AMIClient
from telephony.fastagi import FastAGIServer

log = logging.getLogger(__name__)

JOBS_TODO = Gauge("hotline_jobs_todo", "Jobs waiting in the job queue", ["queue"])
JOBS_OLDEST_AGE = Gauge(
    "hotline_jobs_oldest_todo_age_seconds",
    "How long the job queue's oldest due job has waited (0: none due)",
    ["queue"],
)


@dataclass
class RobotRef:
    """The robot running in this process, if any (set and cleared by its supervisor)."""

    robot: Robot | None = None

    def set(self, robot: Robot | None) -> None:
        self.robot = robot


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


@dataclass
class StoreLook:
    """The store checks' last answers, kept for `health.cache_seconds`."""

    at: float = -1e9
    database: Check = Check(False, "not checked yet")
    beat: datetime | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class Probe:
    """What the checks look at: the parts of one running hotline."""

    config: HotlineConfig
    store: IvrStore
    server: FastAGIServer
    ami: AMIClient | None = None  # the hotline's own AMI link (reconciler, health)
    robot: RobotRef = field(default_factory=RobotRef)
    # the console's listener (set by `hotline.app.serve_web`); None: not part of this process
    web: Check | None = None
    looked: StoreLook = field(default_factory=StoreLook)
    # a cluster's FastAGI worker (`hotline serve --worker`): it has no AMI link of its own, its
    # FastAGI loop is checked from the health thread, and only `vital` checks make a 503, so
    # HAProxy drops a worker whose loop is stuck, not every worker while the store is down
    # (calls spool their writes meanwhile)
    worker: bool = False
    call_loop: asyncio.AbstractEventLoop | None = None
    # a cluster's console (`hotline serve` with `cluster:`): a link to every node's AMI, and
    # the cluster's checks in place of one Asterisk and an in-process robot (hotline.cluster_health)
    nodes: dict[str, AMIClient] = field(default_factory=dict)
    nodes_loop: asyncio.AbstractEventLoop | None = None  # where those links live
    cluster_looked: ClusterLook = field(default_factory=ClusterLook)

    @property
    def in_cluster(self) -> bool:
        """The console of a cluster (a cluster's FastAGI worker keeps to its own checks)."""
        return self.config.cluster is not None and not self.worker

    @property
    def vital(self) -> frozenset[str] | None:
        """The checks that decide 200 or 503 (None: every check)."""
        return frozenset({"fastagi", "event loop"}) if self.worker else None

    @property
    def spools(self) -> dict[str, Spool]:
        return {"tickets": self.store.spool, "robot": Spool(self.config.robot_spool_dir)}


async def check_health(probe: Probe) -> dict[str, Check]:
    """Every check: the store's as last looked at (see `look_at_store`), the rest now."""
    config = probe.config
    looked = await look_at_store(probe)
    checks = {
        "asterisk": Check(True, "AMI link up")
        if probe.ami is not None and probe.ami.connected.is_set()
        else Check(False, "no AMI link to Asterisk"),
        "database": looked.database,
        "fastagi": Check(True, "accepting calls")
        if probe.server.is_serving()
        else Check(False, "FastAGI server not accepting"),
        "robot": _robot(probe, looked.beat),
        "spool": await asyncio.to_thread(_spool, probe),
        "disk": disk_check(config),
    }
    if probe.web is not None:
        checks["web"] = probe.web
    if probe.worker:
        del checks["asterisk"]  # the nodes have the AMI links, not the workers
    if probe.in_cluster:
        del checks["asterisk"], checks["robot"]  # many nodes; robots of their own
        rows = await look_at_cluster(
            config, probe.nodes, probe.store.gateway.run, probe.cluster_looked, probe.nodes_loop
        )
        checks.update({f"{row.part} {row.name}": Check(row.ok, row.detail) for row in rows})
    if probe.call_loop is not None:
        checks["event loop"] = await loop_check(probe.call_loop)
    return checks


async def loop_check(loop: asyncio.AbstractEventLoop, timeout: float = 1.0) -> Check:
    """The FastAGI event loop runs a no-op within `timeout` (asked from the health thread)."""
    started = time.monotonic()
    try:
        done = asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop)
        await asyncio.wait_for(asyncio.wrap_future(done), timeout)
    except (TimeoutError, RuntimeError):
        return Check(False, f"FastAGI event loop did not answer within {timeout:g} s")
    return Check(True, f"FastAGI event loop answered in {time.monotonic() - started:.3f} s")


def is_healthy(probe: Probe, checks: dict[str, Check]) -> bool:
    """Every vital check passes (every check, outside a cluster's worker)."""
    vital = probe.vital
    return all(c.ok for name, c in checks.items() if vital is None or name in vital)


async def look_at_store(probe: Probe) -> StoreLook:
    """The write check and the robot's heartbeat, asked at most every `health.cache_seconds`.

    Requests that come together wait for one look instead of each queueing its own.
    """
    looked = probe.looked
    async with looked.lock:
        if time.monotonic() - looked.at < probe.config.health.cache_seconds:
            return looked
        looked.database = await _database(probe)
        try:
            looked.beat = await probe.store.gateway.run(lambda s: _beat_of(latest_heartbeat(s)))
        except Exception as exc:
            looked.beat = None
            log.warning("healthz: cannot read the robot heartbeat: %s", exc)
        looked.at = time.monotonic()
        return looked


async def _database(probe: Probe) -> Check:
    """Writable or not; the error's text (host, user ...) goes to the log, not the answer."""
    try:
        await probe.store.gateway.run(probe_write)
    except StoreUnavailable as exc:
        log.warning("healthz: the store is not writable: %s", exc)
        return Check(False, "not writable: unreachable or busy past the retry budget (see the log)")
    except Exception as exc:
        log.warning("healthz: the store is not writable: %s", exc)
        return Check(False, f"not writable: {type(exc).__name__} (see the log)")
    return Check(True, "writable")


def _robot(probe: Probe, beat: datetime | None) -> Check:
    now = datetime.now(UTC)
    age = "never" if beat is None else f"{(now - beat).total_seconds():.0f} s ago"
    if not probe.config.robot.enabled:
        return Check(True, f"not run by this process; last dispatch pass {age}")
    robot = probe.robot.robot
    if robot is None:
        return Check(False, f"not running (restarting?); last dispatch pass {age}")
    if not robot.ami.connected.is_set():
        return Check(False, f"robot's AMI link is down; last dispatch pass {age}")
    if is_stalled(beat, now):
        return Check(False, f"stalled: last dispatch pass {age}")
    return Check(True, f"last dispatch pass {age}")


def _beat_of(row: object) -> datetime | None:
    return getattr(row, "beat_at", None)


def _spool(probe: Probe) -> Check:
    waiting = {name: len(spool.pending()) for name, spool in probe.spools.items()}
    bad = {name: len(spool.quarantined()) for name, spool in probe.spools.items()}
    detail = ", ".join(
        f"{name}: {waiting[name]} waiting, {bad[name]} quarantined" for name in waiting
    )
    return Check(not any(waiting.values()) and not any(bad.values()), detail)


def disk_check(config: HotlineConfig) -> Check:
    """Free space on the recordings disk against health.min_free_disk_mb."""
    folder = config.recordings_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    need = config.health.min_free_disk_mb * 1024 * 1024
    detail = f"{free // (1024 * 1024)} MB free for recordings (minimum {need // (1024 * 1024)})"
    return Check(free >= need, detail)


def health_router(probe: Probe) -> APIRouter:
    """GET /healthz and GET /metrics."""
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        checks = await check_health(probe)
        healthy = is_healthy(probe, checks)
        body = {
            "status": "ok" if healthy else "unhealthy",
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        await asyncio.to_thread(_scrape_gauges, probe)
        beat = (await look_at_store(probe)).beat
        age = -1.0 if beat is None else (datetime.now(UTC) - beat).total_seconds()
        ROBOT_HEARTBEAT_AGE.set(age)
        if jobs_enabled(probe.config):
            await scrape_job_queue(probe)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def operations_app(probe: Probe) -> FastAPI:
    """The app on `health.host:health.port`: /healthz and /metrics, nothing else."""
    app = FastAPI(title="12345 hotline operations", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(probe))
    return app


async def scrape_job_queue(probe: Probe) -> None:
    """Each queue's depth and oldest due job's age; an empty queue reads 0, not absent."""
    try:
        backlog = {b.queue: b for b in await probe.store.gateway.run(queue_backlog)}
    except Exception as exc:
        log.warning("metrics: cannot read the job queue: %s", exc)
        return
    for queue in sorted(set(QUEUES) | set(backlog)):
        found = backlog.get(queue)
        JOBS_TODO.labels(queue).set(found.todo if found else 0)
        JOBS_OLDEST_AGE.labels(queue).set(found.oldest_age_seconds if found else 0.0)


def _scrape_gauges(probe: Probe) -> None:
    for name, spool in probe.spools.items():
        SPOOL_PENDING.labels(name).set(len(spool.pending()))
        SPOOL_QUARANTINED.labels(name).set(len(spool.quarantined()))
    folder = probe.config.recordings_dir
    if folder.exists():
        RECORDINGS_FREE_BYTES.set(shutil.disk_usage(folder).free)
