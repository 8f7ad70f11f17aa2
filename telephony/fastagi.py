"""The asyncio FastAGI server: an explicit route table, one task per call.

The dialplan calls `AGI(agi://host:port/ROUTE,args)`; the route picks the
handler from the table built in the app factory (no registration by import side
effects). When a handler returns normally the server sets HOTLINE_RESULT=done;
a handler that raises, an unknown route, or garbage on the wire leaves it unset
and sends the channel to the dialplan's fallback, so a caller is never left in
silence. A hang-up is normal life, logged at info level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from telephony.agi import (
    AGI,
    MAX_LINE,
    AGIError,
    AGIHangup,
    CallLog,
    LineReader,
    parse_environment,
)
from telephony.telemetry import AGI_REQUESTS

log = logging.getLogger(__name__)

Handler = Callable[[AGI], Awaitable[None]]
RESULT_VARIABLE = "HOTLINE_RESULT"
ENV_TIMEOUT = 10.0
MAX_ENV_LINES = 200


def route_name(env: dict[str, str]) -> str:
    """The route of a FastAGI request: `agi://host/ivr?x=1` and `ivr?x=1` both give `ivr`."""
    script = env.get("agi_network_script") or urlsplit(env.get("agi_request", "")).path
    return script.split("?", 1)[0].strip("/")


async def read_environment(lines: LineReader) -> dict[str, str]:
    """Read the environment block up to its blank line."""
    raw: list[str] = []
    while True:
        line = await lines.readline()
        if line == "":
            return parse_environment(raw)
        raw.append(line)
        if len(raw) > MAX_ENV_LINES:
            raise AGIError(f"AGI environment longer than {MAX_ENV_LINES} lines")


class FastAGIServer:
    """Serves FastAGI requests from Asterisk with the handlers of a route table."""

    def __init__(
        self,
        routes: dict[str, Handler],
        host: str = "127.0.0.1",
        port: int = 4573,
        handler_timeout: float = 3600.0,
    ) -> None:
        self.routes = dict(routes)
        self.host = host
        self.port = port
        self.handler_timeout = handler_timeout
        self._server: asyncio.Server | None = None
        self._calls: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; raises OSError (e.g. address in use) for the caller to report."""
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, limit=MAX_LINE
        )
        sockets = self._server.sockets or []
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]
        log.info("FastAGI listening on %s:%s routes=%s", self.host, self.port, sorted(self.routes))

    async def stop(self) -> None:
        """Stop listening and wait for calls in progress to end."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)

    def is_serving(self) -> bool:
        """Whether the server accepts connections (for /healthz)."""
        return self._server is not None and self._server.is_serving()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._calls.add(task)
        try:
            await self.serve_connection(reader, writer)
        finally:
            if task is not None:
                self._calls.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Handle one FastAGI request from its environment block to its end."""
        lines = LineReader(reader)
        try:
            env = await asyncio.wait_for(read_environment(lines), ENV_TIMEOUT)
        except (AGIError, TimeoutError) as exc:
            log.warning("rejected a FastAGI connection: %s", exc)
            return
        agi = AGI(env, reader, writer)
        route = route_name(env)
        handler = self.routes.get(route)
        if handler is None:
            agi.log.error(
                "unknown FastAGI route %r (known: %s); dialplan fallback",
                route,
                ", ".join(sorted(self.routes)),
            )
            return
        await self._run(agi, route, handler)

    async def _run(self, agi: AGI, route: str, handler: Handler) -> None:
        call_log = CallLog(log, {"uniqueid": agi.uniqueid})
        call_log.info("%s: call from %s on %s", route, agi.caller_number, agi.channel)
        try:
            await asyncio.wait_for(handler(agi), self.handler_timeout)
        except AGIHangup as exc:
            call_log.info("%s: caller hung up (%s)", route, exc)
            AGI_REQUESTS.labels(route, "hangup").inc()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            call_log.exception(
                "%s: handler failed; sending the call to the dialplan fallback", route
            )
            AGI_REQUESTS.labels(route, "failed").inc()
            with contextlib.suppress(AGIError, OSError):
                await agi.set_variable(RESULT_VARIABLE, "failed")
            return
        with contextlib.suppress(AGIHangup):
            await agi.set_variable(RESULT_VARIABLE, "done")
        AGI_REQUESTS.labels(route, "done").inc()
        call_log.info("%s: done", route)
