"""The app factory: the FastAGI route table and the background workers, built in one place.

This is the only module that knows every part of a running hotline; the parts
know nothing of each other beyond the floors below them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from agents.callback_dialer import CallbackDialer, run_once
from agents.follow import ingest_once
from agents.missed import follow_missed
from callback_robot.runner import run_robot
from callback_robot.store import RobotStore, robot_operations
from callback_robot.survey import SurveyEndRoute, SurveyFlow
from core.config import ConfigError, HotlineConfig
from core.phone_numbers import log_full_numbers, mask_in_text
from dashboard.app import create_app
from db.lines import LineSpec, sync_lines
from db.migrate import upgrade
from db.runtime import (
    StoreOutage,
    StoreProcess,
    StoreRecipe,
    StoreRuntime,
    combined,
    store_threads,
)
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.agent_sync import run_agent_sync
from hotline.health import Check, Probe, RobotRef, disk_check, operations_app
from hotline.jobs import jobs_enabled
from hotline.kb_answers import StoreAnswers, keep_ranked
from hotline.live_calls import cluster_live_calls
from hotline.priority import as_background, as_ordinary, favour_call_path
from ivr.call_end import CallEndRoute
from ivr.diagnostics import echo_route
from ivr.inbound import InboundFlow
from ivr.kb_flow import vosk_recognizer
from ivr.reconcile import ReconcileReport, reconcile, reconcile_now
from ivr.store import IvrStore, ivr_operations
from ivr.transcribe import Transcriber
from links.ami import ami_client, node_client
from privacy.retention import run_retention
from prompts.build import PromptLibrary
from prompts.phrases import PhraseCache
from speech.recognition import SpeechModel
from telephony.ami import AMIClient, AMIError
from telephony.fastagi import FastAGIServer, Handler

log = logging.getLogger(__name__)


def prepare_store(config: HotlineConfig) -> None:
    """Migrate the store to the newest schema and mirror the configured lines into it."""
    upgrade(config.database_url)
    engine = make_engine(config.database_url, False, config.database.busy_timeout_ms)
    lines = [LineSpec(x.did, x.name, x.greeting, x.default_category) for x in config.lines]
    with unit_of_work(make_session_factory(engine)) as session:
        sync_lines(session, lines)
    engine.dispose()


@dataclass
class Hotline:
    """Everything one running hotline process shares."""

    config: HotlineConfig
    sessions: sessionmaker[Session]
    store: IvrStore
    server: FastAGIServer
    transcriber: Transcriber
    answers: StoreAnswers  # the knowledge base's answers, ranked off the call (keep_ranked)

    @property
    def runtime(self) -> StoreRuntime:
        """The one way into the store of this process: the IVR's, the survey's, the robot's."""
        return self.store.runtime


def build_routes(
    config: HotlineConfig,
    store: IvrStore,
    transcriber: Transcriber | None = None,
    answers: StoreAnswers | None = None,
) -> dict[str, Handler]:
    """Every FastAGI route the dialplan may call, by script name."""
    prompts = PromptLibrary(config)
    speech = transcriber.model if transcriber else SpeechModel(None)
    # the survey's gateway, on the IVR's runtime: their writes take turns
    robot_store = RobotStore(config, store.sessions, runtime=store.runtime)
    # the knowledge base answers waiting and self-service callers (ivr/kb_flow.py)
    answers = answers or StoreAnswers(config, store.sessions)
    inbound = InboundFlow(
        config, prompts, PhraseCache(config), store, answers, vosk_recognizer(speech)
    )
    return {
        "echo": echo_route(prompts),
        "ivr": inbound,
        "ivr-after-queue": inbound.after_queue,
        "ivr-kb": inbound.kb.route,
        "call-end": CallEndRoute(store),
        "survey": SurveyFlow(config, prompts, store.sessions, speech, robot_store),
        "survey-end": SurveyEndRoute(robot_store, config.agi_key()),
    }


def store_process(config: HotlineConfig, engine: Engine) -> StoreProcess | None:
    """The store process (started on first use), unless `ivr.store_process` is off.

    It runs the IVR's operations and the robot's (the survey, the dialer, the
    claim, the heartbeat, recovery): every flow of `hotline serve` takes its
    turn there.
    """
    if not config.ivr.store_process:
        return None
    return StoreProcess(
        StoreRecipe(
            url=config.database_url,
            busy_timeout_ms=config.database.busy_timeout_ms,
            attempt_seconds=flows_budget(config),
            threads=store_threads(engine),
            operations=functools.partial(
                combined,
                (
                    functools.partial(ivr_operations, config),
                    functools.partial(robot_operations, config),
                ),
            ),
        )
    )


def flows_budget(config: HotlineConfig) -> float:
    """The IVR and the robot share the store: no try outlives either one's retry budget."""
    return min(config.ivr.db_retry_seconds, config.robot.db_retry_seconds)


def create_hotline(config: HotlineConfig, port: int | None = None) -> Hotline:
    """Wire the store, the routes and the FastAGI server for this config."""
    log_full_numbers(config.privacy.log_full_numbers)
    engine = make_engine(
        config.database_url,
        config.database.echo,
        config.database.busy_timeout_ms,
        attempt_seconds=flows_budget(config),
    )
    sessions = make_session_factory(engine)
    runtime = StoreRuntime(sessions, store_process(config, engine))
    store = IvrStore(config, sessions, runtime=runtime)
    transcriber = Transcriber(
        config, sessions, SpeechModel(config.speech_model, config.source, config.speech.decoder())
    )
    answers = StoreAnswers(config, sessions)
    server = FastAGIServer(
        build_routes(config, store, transcriber, answers),
        host=config.agi.host,
        port=config.agi.port if port is None else port,
        handler_timeout=config.agi.handler_timeout,
        key=config.agi_key(),
        allowed_peers=config.agi.allowed_peers,
        max_connections=config.agi.max_connections,
        mask=mask_in_text,  # telephony imports nothing of ours: it is handed the masking
    )
    return Hotline(config, sessions, store, server, transcriber, answers)


async def every(seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    """Run job every `seconds` forever; a failure is logged and the next run comes anyway."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; next run in %.0f s", name, seconds)
        await asyncio.sleep(seconds)


def housekeeping(hotline: Hotline, ami: AMIClient | None) -> list[asyncio.Task[None]]:
    """The reconciler, the transcriber and the disk check: each its own job and interval.

    Transcription, retention and the disk check run on one batch thread behind
    Asterisk and the call path (`hotline.priority`): a backlog of recordings
    may wait for a quiet minute, a caller may not.
    """
    config = hotline.config
    batch = ThreadPoolExecutor(1, thread_name_prefix="batch", initializer=as_background)
    loop = asyncio.get_running_loop()

    async def transcribe() -> None:
        await loop.run_in_executor(batch, hotline.transcriber.drain)

    async def retention() -> None:
        await loop.run_in_executor(batch, run_retention, config, hotline.sessions)

    async def analysis() -> None:  # 未诉先办: yesterday's warning, last month's analysis
        from hotline.monthly import run_due  # numpy, statsmodels, jieba: only when it runs

        done = await loop.run_in_executor(
            batch, run_due, hotline.sessions, config, datetime.now(UTC)
        )
        for line in done:
            log.info("%s", line)

    async def disk() -> None:
        check = await loop.run_in_executor(batch, disk_check, config)
        if not check.ok:
            log.warning("recordings disk nearly full: %s", check.detail)

    queue_log = ThreadPoolExecutor(1, thread_name_prefix="queue-log")

    async def follow_queue_log() -> None:
        await loop.run_in_executor(queue_log, ingest_once, hotline.sessions, config.queue_log)
        if config.callback.enabled:  # missed callers become tasks, callers served close theirs
            await loop.run_in_executor(queue_log, follow_missed, hotline.sessions, config)

    jobs = [
        (1.0, follow_queue_log, "queue_log"),
        (config.health.disk_check_seconds, disk, "disk check"),
        (60.0, analysis, "analysis"),
    ]
    if not jobs_enabled(config):  # with jobs on, `hotline jobs worker` processes do these
        jobs += [
            (config.privacy.retention_interval_hours * 3600, retention, "retention"),
            (
                config.ivr.reconcile_interval_seconds,
                lambda: reconcile_now(hotline.store, ami),
                "reconcile",
            ),
            (config.speech.transcribe_interval_seconds, transcribe, "transcription"),
        ]
    if config.callback.enabled and ami is not None:  # missed callers called back, agent first
        # a cluster's dialer links to every node itself and dials through the least busy
        dialer = CallbackDialer.for_config(config, ami, hotline.sessions)
        jobs.append((3.0, lambda: run_once(dialer), "callbacks"))
    tasks = [asyncio.create_task(every(s, job, name), name=name) for s, job, name in jobs]
    return [*tasks, *kb_ranking(hotline)]


def kb_ranking(hotline: Hotline) -> list[asyncio.Task[None]]:
    """The knowledge base's top entries ranked before a caller asks, and kept fresh."""
    if not hotline.config.kb.enabled:
        return []
    return [asyncio.create_task(keep_ranked(hotline.answers), name="kb ranking")]


async def reconcile_once(
    config: HotlineConfig, settle_seconds: int | None = None
) -> ReconcileReport:
    """`hotline reconcile`: one pass, asking Asterisk for live calls when AMI answers.

    In a cluster every node's AMI is asked, and a node found down has no calls
    left (hotline.live_calls): its calls in progress get their tickets now.
    """
    engine = make_engine(config.database_url, False, config.database.busy_timeout_ms)
    store = IvrStore(config, make_session_factory(engine))
    if config.cluster is not None:
        try:
            live = await cluster_live_calls(config)
            return await asyncio.to_thread(reconcile, store, settle_seconds, live)
        finally:
            engine.dispose()
    ami: AMIClient | None = ami_client(config)
    try:
        await ami.connect()  # type: ignore[union-attr]
    except AMIError as exc:
        log.warning("Asterisk's live calls unknown (%s): only calls that ended are closed", exc)
        ami = None
    try:
        return await reconcile_now(store, ami, settle_seconds)
    finally:
        if ami is not None:
            await ami.close()
        engine.dispose()


async def keep_connected(ami: AMIClient, stop: asyncio.Event) -> None:
    """Connect once Asterisk answers (the client reconnects by itself after that)."""
    delay = 1.0
    while not stop.is_set():
        try:
            await ami.connect()
            return
        except AMIError as exc:
            log.warning("AMI for the reconciler and /healthz: %s; next try in %.0f s", exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 30.0)


async def supervise_robot(
    config: HotlineConfig,
    stop: asyncio.Event,
    backoff: tuple[float, float] = (1.0, 60.0),
    robot: RobotRef | None = None,
    runtime: StoreRuntime | None = None,
) -> None:
    """Keep the robot running beside the IVR: any failure is logged and it is restarted.

    An unreachable AMI, a database error at start, a bug: the robot is restarted
    after `backoff[0]` seconds, doubling up to `backoff[1]` while it keeps failing.
    `runtime`: the IVR's, so that the robot's writes take turns with the calls'.
    """
    delay, longest = backoff
    while not stop.is_set():
        try:
            await run_robot(config, stop, on_robot=robot.set if robot else None, runtime=runtime)
            return
        except asyncio.CancelledError:
            raise
        except AMIError as exc:
            log.error("callback robot not running: %s; restarting in %.1f s", exc, delay)
        except Exception:
            log.exception("callback robot stopped by an error; restarting in %.1f s", delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, longest)


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside `hotline serve`: run_forever owns SIGINT/SIGTERM."""

    def capture_signals(self):  # type: ignore[no-untyped-def,override]
        return contextlib.nullcontext()


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound for listening the way uvicorn binds one (SO_REUSEADDR).

    A port whose last connections wait in TIME_WAIT (the console restarted a
    moment after a browser used it) is free to listen on again; a port another
    listener holds is not (OSError).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class Listener:
    """One HTTP app of `hotline serve` on its host and port; `report` hears whether it listens."""

    name: str
    setting: str  # the config key to name in the log
    app: Any
    host: str
    port: int
    report: Callable[[Check], None] = lambda _check: None


class WebThread:
    """The web apps' own thread and event loop: the console and the operations endpoints.

    A port that cannot be listened on is logged, reported (the console's in
    `/healthz`, check `web`) and tried again, backing off up to `backoff[1]`
    seconds, until it is free: the hotline's calls go on meanwhile.
    """

    def __init__(
        self,
        config: HotlineConfig,
        listeners: list[Listener],
        backoff: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        self.config = config
        self.listeners = listeners
        self.backoff = backoff
        self.stopping = threading.Event()
        self.servers: list[EmbeddedServer] = []
        self.thread = threading.Thread(target=self._run, name="web", daemon=True)

    def _run(self) -> None:
        as_ordinary()  # pages are not the call path (see hotline.priority)
        asyncio.run(self._serve_all())

    async def _serve_all(self) -> None:
        await asyncio.gather(*(self._keep_listening(x) for x in self.listeners))

    async def _keep_listening(self, listener: Listener) -> None:
        delay, longest = self.backoff
        while not self.stopping.is_set():
            try:
                sock = listen_socket(listener.host, listener.port)
            except OSError as exc:
                self._cannot_listen(listener, exc.strerror or str(exc), delay)
                await self._pause(delay)
                delay = min(delay * 2, longest)
                continue
            server = EmbeddedServer(
                uvicorn.Config(
                    listener.app,
                    log_level="warning",
                    proxy_headers=False,  # X-Forwarded-For: web.trusted_proxies only
                )
            )
            self.servers.append(server)
            if self.stopping.is_set():
                server.should_exit = True
            listener.report(Check(True, f"{listener.name} listening"))
            try:
                await server.serve(sockets=[sock])
            except (Exception, SystemExit) as exc:  # uvicorn exits on a failed start
                self._cannot_listen(listener, f"{type(exc).__name__}: {exc}", delay)
                sock.close()
                await self._pause(delay)
                delay = min(delay * 2, longest)
                continue
            return

    def _cannot_listen(self, listener: Listener, why: str, delay: float) -> None:
        log.error(
            "%s: %s: cannot listen on %s:%d (%s); the %s is not served, next try in %.0f s",
            self.config.source,
            listener.setting,
            listener.host,
            listener.port,
            why,
            listener.name,
            delay,
        )
        listener.report(
            Check(False, f"{listener.name} not served: cannot listen on port {listener.port}")
        )

    async def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for server in list(self.servers):
            server.should_exit = True


async def serve_web(
    config: HotlineConfig, stop: asyncio.Event, probe: Probe | None = None, console: bool = True
) -> None:
    """The console (and, given a probe, /healthz and /metrics on their own port) until stop.

    They run in a thread of their own with its own event loop (and the pages in
    their own thread pool), so rendering a page or an export never delays a
    FastAGI call; the console follows AMI for the live-calls page on that loop
    too. The operations endpoints answer on `health.host:health.port` only,
    never on the console's port. A port that is taken is logged, shown in
    `/healthz` (check `web`) and tried again until it is free; it never stops
    the calls. A cluster's FastAGI worker serves no console (`console=False`).
    """

    def console_state(check: Check) -> None:
        if probe is not None:
            probe.web = check

    listeners = []
    if console:
        listeners.append(
            Listener(
                "console",
                "web.port",
                create_app(config, follow_ami=True),
                config.web.host,
                config.web.port,
                console_state,
            )
        )
    if probe is not None and config.health.port is not None:
        listeners.append(
            Listener(
                "operations endpoints",
                "health.port",
                operations_app(probe),
                config.health.host,
                config.health.port,
            )
        )
    if console:
        console_state(Check(False, "console starting"))
    web = WebThread(config, listeners)
    web.start()
    await stop.wait()
    web.stop()
    await asyncio.to_thread(web.thread.join)


async def start_serving(config: HotlineConfig) -> Hotline:
    """The hotline built, its spool replayed, its store process and FastAGI server started."""
    refused = favour_call_path(config.agi.nice)  # before any thread: they inherit it
    if refused:
        log.warning("%s", refused)
    hotline = create_hotline(config)
    applied, left = await asyncio.to_thread(hotline.store.spool.replay, hotline.store.apply)
    if applied or left:
        log.warning("spool on start: %d intents applied, %d left for later", applied, left)
    if hotline.runtime.process is not None:
        try:
            await hotline.runtime.process.start()  # before the first call, not during it
        except StoreOutage as exc:  # each call tries again; until one succeeds, writes spool
            log.error("%s; calls spool their store writes until it starts", exc)
    await hotline.server.start()
    return hotline


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_forever(config: HotlineConfig) -> None:
    """Serve FastAGI until SIGINT/SIGTERM, then let calls in progress finish."""
    hotline = await start_serving(config)
    stop = stop_on_signals()
    ami = ami_client(config)
    linking = asyncio.create_task(keep_connected(ami, stop), name="ami")
    workers = housekeeping(hotline, ami)
    # a cluster's console: a link to every node for /healthz (hotline.cluster_health)
    nodes = {
        n.name: node_client(config, n) for n in (config.cluster.nodes if config.cluster else [])
    }
    linking_nodes = [
        asyncio.create_task(keep_connected(link, stop), name=f"ami-{name}")
        for name, link in nodes.items()
    ]
    probe = Probe(
        config,
        hotline.store,
        hotline.server,
        ami,
        nodes=nodes,
        nodes_loop=asyncio.get_running_loop(),
    )
    web = asyncio.create_task(serve_web(config, stop, probe), name="web")
    robot = None
    if config.robot.enabled and config.cluster is not None:
        # one AMI address would dial through one node: a cluster's robots are their own
        # processes with a link to every node (`hotline robot run`, started by cluster up)
        log.info("cluster: the robot runs as its own process (hotline robot run), not here")
    elif config.robot.enabled:
        robot = asyncio.create_task(
            supervise_robot(config, stop, robot=probe.robot, runtime=hotline.runtime), name="robot"
        )
    await stop.wait()
    for worker in workers:
        worker.cancel()
    for worker in workers:
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    if robot is not None:
        await robot
    await web
    await linking
    await ami.close()
    for task in linking_nodes:
        await task
    for link in nodes.values():
        await link.close()
    await hotline.server.stop()
    await hotline.store.close()


def worker_config(config: HotlineConfig, name: str) -> HotlineConfig:
    """The config as the cluster's FastAGI worker `name` runs it (ConfigError if none).

    It listens on the worker's own address and ports (FastAGI, and /healthz
    for its nodes' HAProxy checks), takes AGI sessions from the nodes'
    addresses only (each node's HAProxy connects from its node's address),
    and runs no robot: the cluster's robots are processes of their own.
    """
    cluster = config.cluster
    worker = next((w for w in cluster.workers if w.name == name), None) if cluster else None
    if cluster is None or worker is None:
        known = ", ".join(w.name for w in cluster.workers) if cluster else "no cluster: section"
        raise ConfigError(f"{config.source}: cluster.workers: no worker {name!r} ({known})")
    agi = config.agi.model_copy(
        update={
            "host": worker.address,
            "port": worker.agi_port,
            "allowed_peers": [node.address for node in cluster.nodes],
        }
    )
    health = config.health.model_copy(update={"host": worker.address, "port": worker.health_port})
    robot = config.robot.model_copy(update={"enabled": False})
    return config.model_copy(update={"agi": agi, "health": health, "robot": robot})


async def run_worker(config: HotlineConfig) -> None:
    """A cluster's FastAGI worker until SIGINT/SIGTERM: FastAGI and its /healthz, the
    agents' device-state sync and the knowledge base's ranking.

    No console, no robot and no housekeeping: the job workers transcribe and
    reconcile, the robots and the node daemons are processes of their own. Its
    AMI links are the sync's (one per node: every worker follows every node's
    queue events, the one holding the sync's lock writes). `config` is
    `worker_config`'s.
    """
    hotline = await start_serving(config)
    stop = stop_on_signals()
    probe = Probe(
        config, hotline.store, hotline.server, worker=True, call_loop=asyncio.get_running_loop()
    )
    # the agents' shared device states: every worker follows every node, one writes
    sync = asyncio.create_task(run_agent_sync(config, stop, hotline.sessions), name="agent-sync")
    ranking = kb_ranking(hotline)
    await serve_web(config, stop, probe, console=False)
    stop.set()
    for task in ranking:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await sync
    await hotline.server.stop()
    await hotline.store.close()
