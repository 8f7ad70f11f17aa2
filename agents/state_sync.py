"""The agents' shared state written to every node: the runner of the two pure cores.

Given one AMI client per node, it follows every node's events, feeds them to
the two pure cores (each agent's device state from their calls; each agent's
newest pause) and writes what they call for to every node, each node's writes
in order and one at a time (well within 1 s on a live link: never merged, see
agents.device_state). A node down at the start is retried; a node that comes
back gets the whole state (its legs that ended meanwhile settled first); a node
away longer than the grace has lost its calls; a node it cannot reach is
logged once per outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from agents import shared_pause
from agents.device_state import EVENTS, AgentStates, DeviceState, SetState, state_interface
from agents.shared_pause import PauseStates, SetPause
from telephony.ami import AMIError, AMIEvent

log = logging.getLogger(__name__)

ACTION_TIMEOUT = 1.0  # a write not answered in this long: the node is treated as away
FOLLOWED = (*EVENTS, *shared_pause.EVENTS)
Write = SetState | SetPause


class NodeLink(Protocol):
    """What the runner needs of a node's AMI client (telephony.ami.AMIClient)."""

    connected: asyncio.Event
    on_connect: list[Callable[[], Awaitable[None]]]
    on_disconnect: list[Callable[[], Awaitable[None]]]

    async def connect(self) -> None: ...

    async def action(
        self, name: str, timeout: float | None = None, **fields: str
    ) -> dict[str, str]: ...

    def subscribe(self, *names: str, maxsize: int = 10000) -> asyncio.Queue[AMIEvent]: ...

    def unsubscribe(self, queue: asyncio.Queue[AMIEvent]) -> None: ...


@dataclass
class NodeWatch:
    """What the runner knows of one node's link."""

    up: bool = False
    away_since: float | None = None
    lost: bool = False  # its legs were settled for this outage
    warned: bool = False  # its outage was logged


class DeviceStateSync:
    """Keeps every agent's custom device state equal on every node, from all nodes' events.

    Give it one AMI client per node, not connected yet: it connects them (a
    node down at the start is retried), follows their events and writes the
    states. `grace_seconds`: a node away longer than this has lost its calls.
    """

    def __init__(
        self,
        links: Mapping[str, NodeLink],
        seat_of_login: Callable[[str], str | None] = lambda login: None,
        *,
        grace_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        tick_seconds: float = 1.0,
        retry_seconds: float = 2.0,
        writing: bool = True,
    ) -> None:
        self.links = dict(links)
        self.writing = writing  # a standby follows every event but writes nothing
        self.core = AgentStates(list(self.links), seat_of_login)
        self.pauses = PauseStates(list(self.links), busy=self._busy)
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.retry_seconds = retry_seconds
        self.watch = {name: NodeWatch() for name in self.links}
        self.outboxes: dict[str, asyncio.Queue[Write]] = {
            name: asyncio.Queue() for name in self.links
        }
        self.applied: dict[str, int] = dict.fromkeys(self.links, 0)  # Setvars a node accepted

    async def run(self, stop: asyncio.Event) -> None:
        """Follow and write until stop is set."""
        subscriptions = {name: link.subscribe(*FOLLOWED) for name, link in self.links.items()}
        hooks = {
            name: (self._hook(self._came_back, name), self._hook(self._went_away, name))
            for name in self.links
        }
        tasks = [asyncio.create_task(self._ticks(), name="agent-sync-ticks")]
        for name, link in self.links.items():
            link.on_connect.append(hooks[name][0])
            link.on_disconnect.append(hooks[name][1])
            tasks += [
                asyncio.create_task(self._link(name), name=f"agent-sync-link-{name}"),
                asyncio.create_task(
                    self._follow(name, subscriptions[name]), name=f"agent-sync-events-{name}"
                ),
                asyncio.create_task(self._send(name), name=f"agent-sync-send-{name}"),
            ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for name, link in self.links.items():
                link.unsubscribe(subscriptions[name])
                link.on_connect.remove(hooks[name][0])
                link.on_disconnect.remove(hooks[name][1])

    def _busy(self, seat: str) -> bool:
        return self.core.state_of(seat) != DeviceState.NOT_INUSE

    def lead(self, writing: bool) -> None:
        """Start or stop writing; a new writer first sends every node the whole state.

        A standby follows every node's events all along, so when the writer it
        replaces dies it knows each agent's calls and pauses without asking.
        """
        if writing and not self.writing:
            now = self.clock()
            for name, watch in self.watch.items():
                if watch.up:
                    self._post(self.core.replay(name))
                    self._post(self.pauses.replay(name, now))
        self.writing = writing

    def logged_in(self, seat: str) -> None:
        """An agent this process logged in: their state goes to every node now."""
        self._post(self.core.know(seat))

    # -- links -----------------------------------------------------------------------------
    def _hook(self, what: Callable[[str], object], name: str) -> Callable[[], Awaitable[None]]:
        async def hook() -> None:
            result = what(name)
            if asyncio.iscoroutine(result):
                await result

        return hook

    async def _link(self, name: str) -> None:
        """Connect once (retrying while the node is down); the client reconnects by itself after."""
        link = self.links[name]
        while not link.connected.is_set():
            try:
                await link.connect()
            except (AMIError, OSError) as exc:
                self._went_away(name, reason=str(exc))
                await asyncio.sleep(self.retry_seconds)
        await self._came_back(name)

    def _went_away(self, name: str, reason: str = "link lost") -> None:
        watch = self.watch[name]
        watch.up = False
        if watch.away_since is None:
            watch.away_since = self.clock()
        if not watch.warned:
            watch.warned = True
            log.warning("agent state sync: node %s not reachable (%s)", name, reason)

    async def _came_back(self, name: str) -> None:
        """A node (re)connected: settle its legs that ended meanwhile, then send it everything."""
        watch = self.watch[name]
        was_away = watch.warned
        watch.up, watch.away_since, watch.lost, watch.warned = True, None, False, False
        if was_away:
            log.info("agent state sync: node %s reachable again; sending the agents' states", name)
        suspects = self.core.live_on(name)
        if suspects:
            try:
                alive = await live_uniqueids(self.links[name])
            except (AMIError, TimeoutError) as exc:
                log.warning("agent state sync: channels of %s not listed (%s)", name, exc)
            else:
                self._post(self.core.keep_live(name, suspects, alive, self.clock()))
        self._post(self.core.replay(name))
        self._post(self.pauses.replay(name, self.clock()))

    # -- events in, actions out --------------------------------------------------------------
    async def _follow(self, name: str, events: asyncio.Queue[AMIEvent]) -> None:
        while True:
            event = await events.get()
            try:
                self.take(name, event)
            except Exception:  # one odd event must not stop the node's sync
                log.exception("agent state sync: %s event of %s not followed", event.name, name)

    def take(self, node: str, event: AMIEvent) -> None:
        """One event of one node into both cores; their writes queued for the nodes."""
        now = self.clock()
        self._post(self.core.feed(node, event, now))
        self._post(self.pauses.feed(node, event, now))

    def _post(self, actions: Iterable[Write]) -> None:
        for action in actions:
            self.outboxes[action.node].put_nowait(action)

    async def _send(self, name: str) -> None:
        """Write the node's actions in order, one at a time (never merged: see the module)."""
        link, outbox = self.links[name], self.outboxes[name]
        while True:
            action = await outbox.get()
            if not self.writing or not link.connected.is_set():
                continue  # the node gets the whole state when it comes back or we lead
            try:
                await link.action(action.ami_action, timeout=ACTION_TIMEOUT, **action.ami_fields())
            except (AMIError, TimeoutError) as exc:
                log.warning(
                    "agent state sync: %s of %s not done on %s (%s)",
                    action.ami_action,
                    state_interface(action.seat),
                    name,
                    exc or "no answer",
                )
                continue
            self.applied[name] += 1

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            now = self.clock()
            actions = self.core.expire(now)
            for name, watch in self.watch.items():
                away = watch.away_since
                if away is not None and not watch.lost and now - away > self.grace_seconds:
                    watch.lost = True
                    log.warning(
                        "agent state sync: node %s away %.0f s; its agents' calls are over",
                        name,
                        now - away,
                    )
                    actions += self.core.node_lost(name, now)
            self._post(actions)


async def live_uniqueids(link: NodeLink, timeout: float = 10.0) -> set[str]:
    """The Uniqueids of the channels a node has right now (CoreShowChannels)."""
    queue = link.subscribe("CoreShowChannel", "CoreShowChannelsComplete")
    try:
        await link.action("CoreShowChannels", timeout=timeout)
        alive: set[str] = set()
        async with asyncio.timeout(timeout):
            while (event := await queue.get()).name != "CoreShowChannelsComplete":
                alive.add(event.get("Uniqueid"))
        return alive
    finally:
        link.unsubscribe(queue)
