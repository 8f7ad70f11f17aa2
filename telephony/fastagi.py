"""The asyncio FastAGI server: an explicit route table, one task per call.

The dialplan calls `AGI(agi://host:port/ROUTE,args)`; the route picks the
handler from the table built in the app factory (no registration by import side
effects). When a handler returns normally the server sets HOTLINE_RESULT=done;
a handler that raises, an unknown route, or garbage on the wire leaves it unset
and sends the channel to the dialplan's fallback, so a caller is never left in
silence. A hang-up is normal life, logged at info level.

Only Asterisk may talk to it: a connection from an address outside the
allow-list is closed unread, a request without the installation's key
(`?key=` in the AGI URL, which only the rendered dialplan knows) is refused,
and past a cap on concurrent connections new ones are closed with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import parse_qs, urlsplit

from telephony.agi import (
    AGI,
    MAX_LINE,
    AGIError,
    AGIHangup,
    CallLog,
    LineReader,
    RoundTrips,
    parse_environment,
)
from telephony.telemetry import AGI_REQUESTS

log = logging.getLogger(__name__)

Handler = Callable[[AGI], Awaitable[None]]
Mask = Callable[[str], str]  # hides citizens' numbers in a text for a log line
RESULT_VARIABLE = "HOTLINE_RESULT"
ENV_TIMEOUT = 10.0
MAX_ENV_LINES = 200
# Asterisk gives a FastAGI connect 2 s. When hundreds of callers hang up at once, every
# `h` extension connects in the same second: asyncio's default listen backlog (100) lets
# the kernel drop the rest of the SYNs, and a dropped SYN is retried after 1 s, then 3 s:
# past Asterisk's limit. The kernel caps this at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 4096


DIGIT_RUN = re.compile(r"(?<![0-9.-])\+?[0-9]{7,}(?![0-9.])")


def hide_digit_runs(text: str) -> str:
    """Every run of 7+ digits starred out: the fallback when no mask is given.

    The hotline's own masking (`138****5678`, and `privacy.log_full_numbers`)
    lives above this floor; the app factory passes it in. A server built
    without it (protocol tests, tools) still never logs a whole number.
    """
    return DIGIT_RUN.sub(lambda match: "*" * len(match.group(0)), text)


def route_name(env: dict[str, str]) -> str:
    """The route of a FastAGI request: `agi://host/ivr?x=1` and `ivr?x=1` both give `ivr`."""
    script = env.get("agi_network_script") or urlsplit(env.get("agi_request", "")).path
    return script.split("?", 1)[0].strip("/")


def request_key(env: dict[str, str]) -> str:
    """The `key` parameter of the AGI URL (`ivr?key=...`), '' when there is none."""
    script = env.get("agi_network_script") or ""
    query = script.split("?", 1)[1] if "?" in script else urlsplit(env.get("agi_request", "")).query
    return parse_qs(query).get("key", [""])[0]


class PeerFilter:
    """The addresses allowed to talk FastAGI (single hosts or networks)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(a, strict=False) for a in allowed]

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks if net.version == address.version)


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
        *,
        key: str | None = None,
        allowed_peers: Iterable[str] = ("127.0.0.1", "::1"),
        max_connections: int = 2000,
        mask: Mask = hide_digit_runs,
    ) -> None:
        self.routes = dict(routes)
        self.host = host
        self.port = port
        self.handler_timeout = handler_timeout
        self.key = key  # None: no key required (unit tests of the protocol only)
        self.peers = PeerFilter(allowed_peers)
        self.max_connections = max_connections
        self.mask = mask  # numbers in the channel name, as the site's privacy settings say
        self.refused = 0  # connections closed unread (address, cap) or refused (key)
        self.round_trips = RoundTrips()
        self._server: asyncio.Server | None = None
        self._calls: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; raises OSError (e.g. address in use) for the caller to report."""
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, limit=MAX_LINE, backlog=LISTEN_BACKLOG
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
        peer = writer.get_extra_info("peername") or ("?", 0)
        if not self.peers.allows(str(peer[0])):
            self.refused += 1
            log.warning(
                "FastAGI connection from %s closed unread: not in agi.allowed_peers", peer[0]
            )
            writer.close()
            return
        if len(self._calls) >= self.max_connections:
            self.refused += 1
            log.error(
                "FastAGI connection from %s closed: %d calls in progress is agi.max_connections",
                peer[0],
                len(self._calls),
            )
            writer.close()
            return
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
        agi = AGI(env, reader, writer, self.round_trips)
        route = route_name(env)
        if self.key is not None and not hmac.compare_digest(request_key(env), self.key):
            self.refused += 1
            agi.log.warning(
                "FastAGI request for route %r refused: wrong or missing key (not our dialplan)",
                route,
            )
            return
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
        # no citizen's number in the log: the Uniqueid is the key (a Local channel's
        # name holds the number it dialled, so long digit runs are masked too)
        call_log.info("%s: call on %s", route, self.mask(agi.channel))
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
