"""The app factory: the FastAGI route table and the background workers, built in one place.

This is the only module that knows every part of a running hotline; the parts
know nothing of each other beyond the floors below them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from dataclasses import dataclass

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from callback_robot.runner import run_robot
from callback_robot.store import RobotStore
from callback_robot.survey import SurveyEndRoute, SurveyFlow
from core.config import HotlineConfig
from dashboard.app import create_app
from db.lines import LineSpec, sync_lines
from db.migrate import upgrade
from db.session import make_engine, make_session_factory, unit_of_work
from ivr.call_end import CallEndRoute
from ivr.diagnostics import echo_route
from ivr.inbound import InboundFlow
from ivr.reconcile import reconcile
from ivr.store import IvrStore
from ivr.transcribe import Transcriber
from prompts.build import PromptLibrary
from prompts.phrases import PhraseCache
from speech.recognition import SpeechModel
from telephony.ami import AMIError
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


def build_routes(
    config: HotlineConfig, store: IvrStore, transcriber: Transcriber | None = None
) -> dict[str, Handler]:
    """Every FastAGI route the dialplan may call, by script name."""
    prompts = PromptLibrary(config)
    speech = transcriber.model if transcriber else SpeechModel(None)
    robot_store = RobotStore(config, store.sessions)  # the survey's retry-then-spool path
    return {
        "echo": echo_route(prompts),
        "ivr": InboundFlow(config, prompts, PhraseCache(config), store),
        "call-end": CallEndRoute(store),
        "survey": SurveyFlow(config, prompts, store.sessions, speech, robot_store),
        "survey-end": SurveyEndRoute(robot_store),
    }


def create_hotline(config: HotlineConfig, port: int | None = None) -> Hotline:
    """Wire the store, the routes and the FastAGI server for this config."""
    engine = make_engine(
        config.database_url,
        config.database.echo,
        config.database.busy_timeout_ms,
        attempt_seconds=config.ivr.db_retry_seconds,  # no try outlives the flows' retry budget
    )
    sessions = make_session_factory(engine)
    store = IvrStore(config, sessions)
    transcriber = Transcriber(config, sessions, SpeechModel(config.speech_model, config.source))
    server = FastAGIServer(
        build_routes(config, store, transcriber),
        host=config.agi.host,
        port=config.agi.port if port is None else port,
        handler_timeout=config.agi.handler_timeout,
    )
    return Hotline(config, sessions, store, server, transcriber)


async def housekeeping(hotline: Hotline) -> None:
    """Reconcile and transcribe periodically, off the event loop."""
    interval = hotline.config.ivr.reconcile_interval_seconds
    while True:
        try:
            await asyncio.to_thread(reconcile, hotline.store)
            await asyncio.to_thread(hotline.transcriber.run_once)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("housekeeping pass failed; next one in %d s", interval)
        await asyncio.sleep(min(interval, hotline.config.speech.transcribe_interval_seconds))


async def supervise_robot(
    config: HotlineConfig, stop: asyncio.Event, backoff: tuple[float, float] = (1.0, 60.0)
) -> None:
    """Keep the robot running beside the IVR: any failure is logged and it is restarted.

    An unreachable AMI, a database error at start, a bug: the robot is restarted
    after `backoff[0]` seconds, doubling up to `backoff[1]` while it keeps failing.
    """
    delay, longest = backoff
    while not stop.is_set():
        try:
            await run_robot(config, stop)
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


async def serve_web(config: HotlineConfig, stop: asyncio.Event) -> None:
    """The web app (import API) beside the IVR until stop; a taken port is logged, not fatal."""

    class EmbeddedServer(uvicorn.Server):
        def capture_signals(self):  # type: ignore[no-untyped-def,override]
            return contextlib.nullcontext()  # run_forever owns SIGINT/SIGTERM

    with socket.socket() as probe:
        try:
            probe.bind((config.web.host, config.web.port))
        except OSError as exc:
            log.error(
                "%s: web.port: cannot listen on %s:%d (%s); the web app is not served",
                config.source,
                config.web.host,
                config.web.port,
                exc.strerror,
            )
            return
    server = EmbeddedServer(
        uvicorn.Config(
            create_app(config), host=config.web.host, port=config.web.port, log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve(), name="web")
    await stop.wait()
    server.should_exit = True
    await task


async def run_forever(config: HotlineConfig) -> None:
    """Serve FastAGI until SIGINT/SIGTERM, then let calls in progress finish."""
    hotline = create_hotline(config)
    applied, left = await asyncio.to_thread(hotline.store.spool.replay, hotline.store.apply)
    if applied or left:
        log.warning("spool on start: %d intents applied, %d left for later", applied, left)
    await hotline.server.start()
    worker = asyncio.create_task(housekeeping(hotline), name="housekeeping")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    web = asyncio.create_task(serve_web(config, stop), name="web")
    robot = None
    if config.robot.enabled:
        robot = asyncio.create_task(supervise_robot(config, stop), name="robot")
    await stop.wait()
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker
    if robot is not None:
        await robot
    await web
    await hotline.server.stop()
