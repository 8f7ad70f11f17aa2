"""AMI client: the `asterisk-ami` package, wrapped so its known problems cannot hurt us.

What the wrapper fixes, and why:
- its default socket timeout (3 s) kills the reader thread after 3 s of
  silence: the socket is blocking with no timeout once connected, and liveness
  is checked by our own Ping instead;
- its `AutoReconnect` blocks forever on a dead link and re-sends nothing but
  logs nothing either: we reconnect ourselves, with backoff, from asyncio;
- a callback or a parser error raised on its reader thread ends that thread
  silently: every packet is parsed under a guard that logs malformed input;
- its reader thread must do no slow work: events and responses are handed to
  the asyncio loop with `call_soon_threadsafe`, and consumers read queues;
- actions are correlated by ActionID, an async Originate resolves on its
  `OriginateResponse` event, and an action in flight when the link drops fails
  with `AMIDisconnected`; nothing is ever re-sent after a reconnect (a re-sent
  Originate is a double dial).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asterisk.ami import Action, Event, Response
from asterisk.ami import AMIClient as LibraryClient

from telephony.telemetry import AMI_RECONNECTS

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


class AMIError(Exception):
    """Base of AMI failures."""


class AMIConnectError(AMIError):
    """Nothing (or no Asterisk manager) answers on the configured host and port."""


class AMIAuthError(AMIError):
    """The manager refused our username or secret."""


class AMIDisconnected(AMIError):
    """The link dropped while an action was in flight; the action was not re-sent."""


class AMIActionError(AMIError):
    """Asterisk answered an action with `Response: Error`."""


class AMIFieldError(ValueError):
    """An action field holds CR or LF: sent, it would inject headers or a whole action.

    Raised before anything is written to the socket. Not an AMIError: the link is
    fine, the caller passed data that was never validated.
    """


def check_fields(action: Action) -> None:
    """Refuse any action whose name, header or variable contains a line break or NUL."""
    parts = [action.name, *action.keys.keys(), *map(str, action.keys.values())]
    parts += [*action.variables.keys(), *map(str, action.variables.values())]
    for part in parts:
        if any(c in part for c in "\r\n\0"):
            shown = part.encode("unicode_escape").decode("ascii")[:60]
            raise AMIFieldError(f"{action.name}: field {shown!r} holds a line break; not sent")


@dataclass
class AMIEvent:
    name: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)


@dataclass
class OriginateResult:
    """The outcome of an async Originate: Asterisk's OriginateResponse event."""

    action_id: str
    success: bool
    reason: int
    channel: str
    uniqueid: str
    fields: dict[str, str]


class _GuardedClient(LibraryClient):
    """The library client with a connect timeout only for connecting, and guarded parsing."""

    def __init__(self, *args: object, connect_timeout: float, **kwargs: object) -> None:
        super().__init__(*args, timeout=None, **kwargs)  # type: ignore[arg-type]
        self._connect_timeout = connect_timeout

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self._port), self._connect_timeout)
        sock.settimeout(None)
        self._socket = sock
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._listen_guarded, daemon=True, name="ami-reader")
        self._thread.start()

    def disconnect(self) -> None:
        # close() alone does not wake a recv() blocked in the reader thread; shutdown() does.
        self.finished.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._socket.close()
        if self._thread is not threading.current_thread():
            self._thread.join(2)

    def _listen_guarded(self) -> None:
        try:
            self.listen()
        except Exception as exc:  # a bad banner raises inside the library's listen()
            log.warning("AMI reader stopped: %r", exc)
            self._fire_on_disconnect(error=exc)

    def fire_recv_pack(self, pack: str) -> None:
        # The library splits on a blank line; a packet may then start with a stray CRLF
        # (seen after VarSet bursts), which its "^Event: " match rejects: the event is lost.
        pack = pack.lstrip("\r\n")
        if not pack:
            return
        try:
            super().fire_recv_pack(pack)
        except Exception as exc:
            log.warning("malformed AMI packet ignored (%r): %r", exc, pack[:300])


class AMIClient:
    """An asyncio-facing AMI client with reconnect, ActionID correlation and event queues."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        connect_timeout: float = 5.0,
        action_timeout: float = 10.0,
        reconnect_max_delay: float = 10.0,
        ping_interval: float = 15.0,
        secret_hint: str = "HOTLINE_AMI_SECRET",
    ) -> None:
        self.host, self.port = host, port
        self.username, self._secret, self._secret_hint = username, secret, secret_hint
        self.connect_timeout = connect_timeout
        self.action_timeout = action_timeout
        self.reconnect_max_delay = reconnect_max_delay
        self.ping_interval = ping_interval
        self.connected = asyncio.Event()
        self.on_connect: list[Hook] = []
        self.on_disconnect: list[Hook] = []
        self.reconnects = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lib: _GuardedClient | None = None
        self._generation = 0
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]
        self._pending: dict[str, asyncio.Future[dict[str, str]]] = {}
        self._originates: dict[str, asyncio.Future[OriginateResult]] = {}
        self._subscribers: list[tuple[frozenset[str] | None, asyncio.Queue[AMIEvent]]] = []
        self._lost = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._hook_tasks: set[asyncio.Future[None]] = set()

    # -- life cycle -------------------------------------------------------------
    async def connect(self) -> None:
        """Connect and log in once; errors here are final and clear. Then keep the link up."""
        self._loop = asyncio.get_running_loop()
        await self._open()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="ami-supervisor"),
            asyncio.create_task(self._keepalive(), name="ami-keepalive"),
        ]

    async def close(self) -> None:
        """Log off and stop reconnecting."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        lib = self._lib
        if lib is not None and self.connected.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.action("Logoff"), 2)
        if lib is not None:
            await asyncio.to_thread(lib.disconnect)
        self._fail_pending("the AMI client was closed")
        self.connected.clear()

    async def _open(self) -> None:
        assert self._loop is not None
        self._generation += 1
        generation = self._generation
        banner = asyncio.get_running_loop().create_future()
        lib = _GuardedClient(self.host, self.port, connect_timeout=self.connect_timeout)
        lib.add_listener(
            on_connect=lambda source, **_: self._threadsafe(_resolve, banner, True),
            on_disconnect=lambda source, error=None, **_: self._threadsafe(
                self._on_lost, generation, error
            ),
            on_event=lambda source, event, **_: self._threadsafe(self._dispatch, event),
            on_unknown=lambda source, pack, **_: log.warning(
                "unknown AMI packet: %r", str(pack)[:300]
            ),
        )
        where = f"{self.host}:{self.port}"
        try:
            await asyncio.to_thread(lib.connect)
        except OSError as exc:
            raise AMIConnectError(
                f"cannot reach the Asterisk manager on {where}: {exc.strerror or exc}"
            ) from None
        try:
            await asyncio.wait_for(banner, self.connect_timeout)
        except TimeoutError:
            await asyncio.to_thread(lib.disconnect)
            raise AMIConnectError(f"{where} answered but is not an Asterisk manager") from None
        self._lib = lib
        try:
            await self._send(Action("Login", {"Username": self.username, "Secret": self._secret}))
        except AMIActionError as exc:
            await asyncio.to_thread(lib.disconnect)
            raise AMIAuthError(
                f"AMI login as {self.username!r} on {where} refused ({exc}); "
                f"check {self._secret_hint} and asterisk.ami.username"
            ) from None
        except AMIDisconnected:
            raise AMIConnectError(f"{where} closed the connection during login") from None
        except TimeoutError:
            await asyncio.to_thread(lib.disconnect)
            raise AMIConnectError(f"{where} did not answer the login in time") from None
        self._lost.clear()
        self.connected.set()
        log.info("AMI connected to %s as %s", where, self.username)

    def _threadsafe(self, callback: Callable[..., None], *args: object) -> None:
        """Run callback on the asyncio loop; called from the library's reader thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, *args)

    def _on_lost(self, generation: int, error: object) -> None:
        if generation != self._generation:
            return  # a stale connection we already replaced
        was_up = self.connected.is_set()
        self.connected.clear()
        self._fail_pending("the AMI link dropped before Asterisk answered; not re-sent")
        if was_up and not self._closing:
            log.warning(
                "AMI link to %s:%s lost (%s); reconnecting",
                self.host,
                self.port,
                error or "closed by Asterisk",
            )
            self._lost.set()
            for hook in self.on_disconnect:
                task = asyncio.ensure_future(hook())
                self._hook_tasks.add(task)
                task.add_done_callback(self._hook_tasks.discard)

    def _fail_pending(self, reason: str) -> None:
        for table in (self._pending, self._originates):
            for future in table.values():
                if not future.done():
                    future.set_exception(AMIDisconnected(reason))
            table.clear()

    async def _supervise(self) -> None:
        delay = 0.5
        while not self._closing:
            await self._lost.wait()
            try:
                await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever it is, the link must be tried again
                log.warning("AMI reconnect failed: %r; next try in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_delay)
                continue
            delay = 0.5
            self.reconnects += 1
            AMI_RECONNECTS.inc()
            for hook in self.on_connect:
                try:
                    await hook()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a hook's failure is its own; supervision goes on
                    log.exception("AMI reconnect hook %s failed", getattr(hook, "__name__", hook))

    async def _keepalive(self) -> None:
        """Ping so a half-open link is noticed; a failed ping drops the link for reconnect."""
        while not self._closing:
            await asyncio.sleep(self.ping_interval)
            if not self.connected.is_set():
                continue
            try:
                await self.action("Ping", timeout=self.ping_interval)
            except (AMIError, TimeoutError):
                lib = self._lib
                if lib is not None:
                    await asyncio.to_thread(lib.disconnect)

    # -- actions ----------------------------------------------------------------
    def next_action_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    async def _send(self, action: Action, timeout: float | None = None) -> dict[str, str]:
        check_fields(action)
        lib = self._lib
        if lib is None:
            raise AMIDisconnected("not connected to the Asterisk manager")
        assert self._loop is not None
        action_id = action.keys.setdefault("ActionID", self.next_action_id())
        future: asyncio.Future[dict[str, str]] = self._loop.create_future()
        self._pending[action_id] = future

        def on_response(response: Response) -> None:
            self._threadsafe(self._resolve_response, action_id, response)

        try:
            lib.send_action(action, callback=on_response)
        except OSError as exc:
            self._pending.pop(action_id, None)
            raise AMIDisconnected(f"sending {action.name} failed: {exc}") from None
        try:
            return await asyncio.wait_for(future, timeout or self.action_timeout)
        finally:
            self._pending.pop(action_id, None)
            lib._futures.pop(action_id, None)

    def _resolve_response(self, action_id: str, response: Response) -> None:
        future = self._pending.get(action_id)
        if future is None or future.done():
            return
        fields = dict(response.keys)
        if response.is_error():
            future.set_exception(AMIActionError(fields.get("Message", "error")))
        else:
            fields["Response"] = response.status
            if response.follows:
                fields["Output"] = "\n".join(response.follows)
            future.set_result(fields)

    async def action(
        self,
        name: str,
        timeout: float | None = None,
        variables: dict[str, str] | None = None,
        **fields: str,
    ) -> dict[str, str]:
        """Send one action and return its response fields (raises AMIActionError on Error)."""
        if not self.connected.is_set() and name != "Logoff":
            raise AMIDisconnected(f"{name} not sent: the AMI link is down")
        return await self._send(Action(name, dict(fields), variables or {}), timeout)

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        variables: dict[str, str] | None = None,
        caller_id: str = "",
        timeout_ms: int = 30000,
        action_id: str | None = None,
        result_timeout: float | None = None,
    ) -> OriginateResult:
        """Place a call asynchronously; resolve when Asterisk reports its OriginateResponse."""
        if not self.connected.is_set():
            raise AMIDisconnected("Originate not sent: the AMI link is down")
        assert self._loop is not None
        action_id = action_id or self.next_action_id()
        outcome: asyncio.Future[OriginateResult] = self._loop.create_future()
        self._originates[action_id] = outcome
        fields = {
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "Async": "true",
            "Timeout": str(timeout_ms),
            "ActionID": action_id,
        }
        if caller_id:
            fields["CallerID"] = caller_id
        try:
            await self._send(Action("Originate", fields, variables or {}))
            wait = result_timeout or (timeout_ms / 1000 + self.action_timeout)
            return await asyncio.wait_for(outcome, wait)
        finally:
            self._originates.pop(action_id, None)

    # -- events -----------------------------------------------------------------
    def subscribe(self, *names: str, maxsize: int = 10000) -> asyncio.Queue[AMIEvent]:
        """A queue receiving the named events (all events when no name is given)."""
        queue: asyncio.Queue[AMIEvent] = asyncio.Queue(maxsize)
        self._subscribers.append((frozenset(names) if names else None, queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AMIEvent]) -> None:
        self._subscribers = [(n, q) for n, q in self._subscribers if q is not queue]

    def _dispatch(self, raw: Event) -> None:
        event = AMIEvent(raw.name, dict(raw.keys))
        if event.name == "OriginateResponse":
            future = self._originates.get(event.get("ActionID"))
            if future is not None and not future.done():
                future.set_result(
                    OriginateResult(
                        action_id=event.get("ActionID"),
                        success=event.get("Response") == "Success",
                        reason=int(event.get("Reason", "0") or 0),
                        channel=event.get("Channel"),
                        uniqueid=event.get("Uniqueid"),
                        fields=event.fields,
                    )
                )
        for names, queue in self._subscribers:
            if names is None or event.name in names:
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    log.warning("AMI event queue full; dropped %s", event.name)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
