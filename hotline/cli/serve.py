"""`hotline serve`, `hotline web` and `hotline up`: running the hotline."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from hotline.cli.asterisk import asterisk_up
from hotline.cli.prompts import prompts_build
from hotline.cli.store import db_upgrade
from hotline.cli.support import ConfigOption, config_or_exit, console, fail, setup_logging


def web(config: ConfigOption = None) -> None:
    """Serve only the web app (the supervisors' console, the import API) on web.host:web.port."""
    import uvicorn

    from dashboard.app import create_app

    cfg = config_or_exit(config)
    console.print(f"web app on http://{cfg.web.host}:{cfg.web.port}/ (Ctrl-C stops)")
    uvicorn.run(
        create_app(cfg, follow_ami=True),
        host=cfg.web.host,
        port=cfg.web.port,
        log_level="info",
        proxy_headers=False,  # X-Forwarded-For: web.trusted_proxies only (dashboard.auth)
    )


WorkerOption = Annotated[
    str | None,
    typer.Option(
        "--worker",
        help="Run as the cluster's FastAGI worker of this name (cluster.workers): FastAGI and "
        "/healthz on its address only; no console, robot or housekeeping.",
    ),
]


def serve(config: ConfigOption = None, verbose: bool = False, worker: WorkerOption = None) -> None:
    """Run the FastAGI server with every route (IVR, survey, diagnostics)."""
    from core.config import ConfigError
    from db.migrate import SchemaOutOfDate, check_current
    from hotline.app import run_forever, run_worker, worker_config

    cfg = config_or_exit(config)
    if worker is not None:
        try:
            cfg = worker_config(cfg, worker)
        except ConfigError as exc:
            raise fail(str(exc)) from None
    setup_logging(verbose, cfg)
    try:
        check_current(cfg.database_url)
    except SchemaOutOfDate as exc:
        raise fail(str(exc)) from None
    try:
        asyncio.run(run_forever(cfg) if worker is None else run_worker(cfg))
    except OSError as exc:
        raise fail(
            f"{cfg.source}: agi.port: cannot listen on {cfg.agi.host}:{cfg.agi.port}: "
            f"{exc.strerror}"
        ) from None
    except KeyboardInterrupt:
        pass


def up(config: ConfigOption = None, verbose: bool = False) -> None:
    """Bring the whole hotline up: Asterisk, the database, prompts, then serve."""
    asterisk_up(config)
    db_upgrade(config)
    prompts_build(config)
    cfg = config_or_exit(config)
    console.print(
        f"[bold green]hotline up[/]: call 12345 from SIP phone "
        f"{cfg.asterisk.sip.citizen_phones[0]}@{cfg.asterisk.sip.bind}:{cfg.asterisk.sip.port}; "
        f"FastAGI on {cfg.agi.host}:{cfg.agi.port}; web app on "
        f"http://{cfg.web.host}:{cfg.web.port}/. Ctrl-C stops serving."
    )
    serve(config, verbose)
