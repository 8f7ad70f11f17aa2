"""The app factory: the FastAGI route table, built explicitly in one place."""

from __future__ import annotations

import asyncio
import signal

from hotline.asterisk.fastagi import FastAGIServer, Handler
from hotline.config import HotlineConfig
from ivr.diagnostics import echo_route
from prompts.build import PromptLibrary


def build_routes(config: HotlineConfig) -> dict[str, Handler]:
    """Every FastAGI route the dialplan may call, by script name."""
    prompts = PromptLibrary(config)
    return {
        "echo": echo_route(prompts),
    }


def create_agi_server(config: HotlineConfig, port: int | None = None) -> FastAGIServer:
    """A FastAGI server for this config (port override for tests)."""
    return FastAGIServer(
        build_routes(config),
        host=config.agi.host,
        port=config.agi.port if port is None else port,
        handler_timeout=config.agi.handler_timeout,
    )


async def run_forever(config: HotlineConfig) -> None:
    """Serve FastAGI until SIGINT/SIGTERM, then let calls in progress finish."""
    server = create_agi_server(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
