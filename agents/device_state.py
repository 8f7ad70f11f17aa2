"""An agent's one device state on every node: what app_queue reads before it rings them.

In a cluster every node's queue lists every logged-in agent, and the agent's
phone is reached through the SIP front (`PJSIP/<seat>@sip-front`). A node
cannot see the calls another node gives the agent, so each member's
`StateInterface` is a custom device state, `Custom:agent-<seat>`, that this
module keeps equal on every node from the AMI events of all nodes. With
`ringinuse = no` app_queue rings a member only while that state reads
NOT_INUSE (or UNKNOWN); RINGING and INUSE keep every node's queue off them.

The core (`AgentStates`) is pure: AMI events in, `SetState` actions out. It
follows each call an agent is on as a *leg* keyed by (node, the call's
Uniqueid), whose phase only moves forward — ringing, up, ended — so a repeated
event or one that arrives late (an `AgentConnect` after its `AgentComplete`)
changes nothing. The agent's state is the strongest of their live legs (any up:
INUSE; else any ringing: RINGING; else NOT_INUSE), so a 486 from the front on
node 1 (`AgentRingNoAnswer` there) never frees an agent who is talking on
node 2. Each change is emitted for every node, in order, never merged: app_queue
lets a member it rang go only when their state *changes* (its pending-members
guard), so RINGING then NOT_INUSE must both reach the node that rang.

The runner (`DeviceStateSync`) is given one AMI client per node. It applies
the actions to every node as they come (well within 1 s on a live link),
re-sends the whole state to a node that comes back, settles the legs of a node
that came back without them or stayed away longer than the grace, and logs a
node it cannot reach (once per outage).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Protocol

from agents.callback_dialer import POP, read_pop
from telephony.ami import AMIError, AMIEvent

log = logging.getLogger(__name__)

# the custom device state of an agent's seat: named here and nowhere else
DEVICE_PREFIX = "Custom:agent-"
# a leg still ringing after this long lost its end event: it no longer holds the agent
RING_LIMIT_SECONDS = 180.0
# ended legs are remembered this long, so a late event of theirs is known as late
ENDED_KEPT_SECONDS = 3600.0
# the events the sync follows (the manager.conf event filter lets these through)
QUEUE_EVENTS = ("AgentCalled", "AgentConnect", "AgentComplete", "AgentRingNoAnswer", "AgentDump")
CALLBACK_EVENTS = ("VarSet", "Newstate", "Hangup")
EVENTS = (*QUEUE_EVENTS, *CALLBACK_EVENTS)
ACTION_TIMEOUT = 1.0  # a Setvar not answered in this long: the node is treated as away


def state_interface(seat: str) -> str:
    """The member's StateInterface for a seat: `Custom:agent-<seat>`."""
    return f"{DEVICE_PREFIX}{seat}"


def seat_of_interface(interface: str) -> str | None:
    """The seat a member interface rings: `PJSIP/s1@sip-front`, `PJSIP/s1`, `Local/s1@ctx`."""
    tech, _, rest = interface.partition("/")
    seat = rest.split("@", 1)[0]
    if tech not in ("PJSIP", "Local") or not seat or not seat.isascii():
        return None
    return seat


class DeviceState(StrEnum):
    """The device states the sync writes (func_devstate's names)."""

    NOT_INUSE = "NOT_INUSE"
    RINGING = "RINGING"
    INUSE = "INUSE"


class Phase(IntEnum):
    """A leg's phase; it only moves forward."""

    RINGING = 1
    UP = 2
    ENDED = 3


@dataclass(frozen=True)
class SetState:
    """Set one seat's custom device state on one node."""

    node: str
    seat: str
    state: DeviceState

    def ami_fields(self) -> dict[str, str]:
        """The AMI `Setvar` fields (no channel: a dialplan function, global)."""
        return {"Variable": f"DEVICE_STATE({state_interface(self.seat)})", "Value": self.state}


@dataclass
class Leg:
    """One call an agent is on, on one node."""

    seat: str
    phase: Phase
    since: float  # when it reached its phase (the node's event time)


def event_time(event: AMIEvent, now: float) -> float:
    """The node's own time of the event (manager.conf timestampevents), else now."""
    try:
        return float(event.get("Timestamp"))
    except ValueError:
        return now


@dataclass
class AgentStates:
    """The pure core: each agent's legs on every node, and the one state all nodes show.

    `seat_of_login` names the seat of an agent's login (the agent-first
    callback's pop carries a login, the queue events an interface); unknown: None.
    """

    nodes: Sequence[str]
    seat_of_login: Callable[[str], str | None] = lambda login: None
    legs: dict[tuple[str, str], Leg] = field(default_factory=dict)
    states: dict[str, DeviceState] = field(default_factory=dict)

    # -- events ------------------------------------------------------------------------
    def feed(self, node: str, event: AMIEvent, now: float) -> list[SetState]:
        """One event of one node; the actions it calls for (none when nothing changed)."""
        found = self._leg_of(node, event)
        if found is None:
            return []
        key, seat, phase = found
        self._advance(key, seat, phase, event_time(event, now))
        return self._settle({seat})

    def _leg_of(self, node: str, event: AMIEvent) -> tuple[tuple[str, str], str, Phase] | None:
        uniqueid = event.get("Uniqueid")
        if not uniqueid:
            return None
        key = (node, uniqueid)
        if event.name in QUEUE_EVENTS:
            seat = seat_of_interface(event.get("Interface"))
            phase = {"AgentCalled": Phase.RINGING, "AgentConnect": Phase.UP}.get(
                event.name, Phase.ENDED
            )
            return (key, seat, phase) if seat else None
        if event.name == "VarSet" and event.get("Variable") == POP:
            # an agent-first callback rings the agent on this channel (agents.callback_dialer)
            pop = read_pop(event.get("Value"))
            seat = self.seat_of_login(pop[0]) if pop else None
            return (key, seat, Phase.RINGING) if seat else None
        leg = self.legs.get(key)
        if leg is None:
            return None  # Newstate and Hangup matter only for a callback leg we follow
        if event.name == "Newstate" and event.get("ChannelStateDesc") == "Up":
            return key, leg.seat, Phase.UP
        if event.name == "Hangup":
            return key, leg.seat, Phase.ENDED
        return None

    def _advance(self, key: tuple[str, str], seat: str, phase: Phase, at: float) -> None:
        leg = self.legs.get(key)
        if leg is None:
            self.legs[key] = Leg(seat, phase, at)
        elif phase > leg.phase:
            leg.phase, leg.since = phase, at

    # -- the agents' states --------------------------------------------------------------
    def state_of(self, seat: str) -> DeviceState:
        """The state every node should show for seat, from its live legs."""
        phases = {leg.phase for leg in self.legs.values() if leg.seat == seat}
        if Phase.UP in phases:
            return DeviceState.INUSE
        if Phase.RINGING in phases:
            return DeviceState.RINGING
        return DeviceState.NOT_INUSE

    def _settle(self, seats: Iterable[str]) -> list[SetState]:
        actions: list[SetState] = []
        for seat in sorted(seats):
            state = self.state_of(seat)
            if self.states.get(seat) == state:
                continue
            self.states[seat] = state
            actions += [SetState(node, seat, state) for node in self.nodes]
        return actions

    def know(self, seat: str) -> list[SetState]:
        """An agent logged in: their state is set on every node (NOT_INUSE unless on a call)."""
        if seat in self.states:
            return []
        self.states[seat] = self.state_of(seat)
        return [SetState(node, seat, self.states[seat]) for node in self.nodes]

    def replay(self, node: str) -> list[SetState]:
        """The whole state for a node that came back (restarted, or its link was down)."""
        return [SetState(node, seat, state) for seat, state in sorted(self.states.items())]

    # -- legs that lost their end ----------------------------------------------------------
    def live_on(self, node: str) -> set[str]:
        """The Uniqueids of the node's legs not ended yet."""
        return {
            uid for (at, uid), leg in self.legs.items() if at == node and leg.phase < Phase.ENDED
        }

    def keep_live(
        self, node: str, suspects: set[str], alive: set[str], now: float
    ) -> list[SetState]:
        """A node came back: of its legs from before (suspects), those without a channel are over.

        Only legs known before the node's channels were listed are judged: a call
        that began after the listing is not in it and is not over.
        """
        gone = suspects - alive
        return self._end(lambda key, leg: key[0] == node and key[1] in gone, now)

    def node_lost(self, node: str, now: float) -> list[SetState]:
        """A node stayed away past the grace: its calls are gone, its agents free."""
        return self._end(lambda key, leg: key[0] == node and leg.phase < Phase.ENDED, now)

    def expire(self, now: float) -> list[SetState]:
        """Ringing legs that lost their end are ended; long-ended legs forgotten."""
        for key in [k for k, leg in self.legs.items() if _forgotten(leg, now)]:
            del self.legs[key]
        return self._end(
            lambda key, leg: leg.phase == Phase.RINGING and now - leg.since > RING_LIMIT_SECONDS,
            now,
        )

    def _end(self, which: Callable[[tuple[str, str], Leg], bool], now: float) -> list[SetState]:
        ended = [key for key, leg in self.legs.items() if which(key, leg)]
        for key in ended:
            self._advance(key, self.legs[key].seat, Phase.ENDED, now)
        return self._settle({self.legs[key].seat for key in ended})


def _forgotten(leg: Leg, now: float) -> bool:
    return leg.phase == Phase.ENDED and now - leg.since > ENDED_KEPT_SECONDS


# -- the runner ---------------------------------------------------------------------------
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
    ) -> None:
        self.links = dict(links)
        self.core = AgentStates(list(self.links), seat_of_login)
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.retry_seconds = retry_seconds
        self.watch = {name: NodeWatch() for name in self.links}
        self.outboxes: dict[str, asyncio.Queue[SetState]] = {
            name: asyncio.Queue() for name in self.links
        }
        self.applied: dict[str, int] = dict.fromkeys(self.links, 0)  # Setvars a node accepted

    async def run(self, stop: asyncio.Event) -> None:
        """Follow and write until stop is set."""
        subscriptions = {name: link.subscribe(*EVENTS) for name, link in self.links.items()}
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

    # -- events in, actions out --------------------------------------------------------------
    async def _follow(self, name: str, events: asyncio.Queue[AMIEvent]) -> None:
        while True:
            event = await events.get()
            self._post(self.core.feed(name, event, self.clock()))

    def _post(self, actions: Iterable[SetState]) -> None:
        for action in actions:
            self.outboxes[action.node].put_nowait(action)

    async def _send(self, name: str) -> None:
        """Write the node's actions in order, one at a time (never merged: see the module)."""
        link, outbox = self.links[name], self.outboxes[name]
        while True:
            action = await outbox.get()
            if not link.connected.is_set():
                continue  # the node gets the whole state when it comes back
            try:
                await link.action("Setvar", timeout=ACTION_TIMEOUT, **action.ami_fields())
            except (AMIError, TimeoutError) as exc:
                log.warning(
                    "agent state sync: %s %s not set on %s (%s)",
                    state_interface(action.seat),
                    action.state,
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
