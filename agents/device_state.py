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

The runner that writes these actions to the nodes is agents.state_sync
(`DeviceStateSync`); agents.shared_pause spreads a pause the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from agents.callback_dialer import POP, read_pop
from telephony.ami import AMIEvent

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


def state_interface(seat: str) -> str:
    """The member's StateInterface for a seat: `Custom:agent-<seat>`."""
    return f"{DEVICE_PREFIX}{seat}"


def seat_of_interface(interface: str) -> str | None:
    """The seat a member interface rings: `PJSIP/s1@sip-front`, `PJSIP/s1`, `Local/s1@ctx`.

    `PJSIP/<endpoint>/sip:s1@host` (an endpoint's settings, any URI) rings the URI's user.
    """
    tech, _, rest = interface.partition("/")
    if tech == "PJSIP" and "/" in rest:
        rest = rest.split("/", 1)[1].removeprefix("sips:").removeprefix("sip:")
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

    ami_action = "Setvar"

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
