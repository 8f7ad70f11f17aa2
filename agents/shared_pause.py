"""An agent paused on one node is paused on every node (issue 22, agents across nodes).

The console pauses and un-pauses an agent on all nodes at once
(agents.cluster_control), but app_queue also pauses by itself: an agent whose
phone rings out is auto-paused (`autopause = all`) on the node that rang, and
only there. Every other node would go on ringing a phone nobody answers, one
caller's 15 s each. This core follows `QueueMemberPause` from all nodes and
writes the newest pause (or un-pause) to the others with `QueuePause`.

Writing to a node makes that node report the change back. Those echoes must not
start another round, or two nodes that paused differently at the same moment
would flip each other for ever. So each write is remembered per node as
expected: an event that matches it is the echo and is only checked against the
newest pause (a node that an older write reached after a newer one gets the
newest again). Any other event is the node's own change: the newest one by the
node's event time wins, and an older one is corrected on its node.

One auto-pause is not the agent's: when the SIP front refuses a node's ring
because the agent already rings or talks on another node (486), app_queue on
that node reads the refusal as no answer and auto-pauses them there. An
auto-pause of an agent who is busy elsewhere is undone on its node, not spread. A write not
reported back within 10 s is forgotten (its node was away; it gets everything
again when it comes back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agents.device_state import event_time, seat_of_interface
from telephony.ami import AMIEvent

EVENTS = ("QueueMemberPause",)
# a write not reported back within this long never will be (the node was away)
ECHO_SECONDS = 10.0
AUTO_PAUSE = "Auto-Pause"  # app_queue's reason when a member it rang did not answer


@dataclass(frozen=True)
class Pause:
    """A member's pause: paused or not, and why (empty when not paused)."""

    paused: bool
    reason: str = ""

    @classmethod
    def of(cls, event: AMIEvent) -> Pause:
        paused = event.get("Paused") == "1"
        reason = event.get("PausedReason") or event.get("Reason")
        return cls(paused, reason if paused else "")


@dataclass(frozen=True)
class SetPause:
    """Pause (or un-pause) one member in all their queues on one node."""

    node: str
    seat: str
    interface: str
    pause: Pause
    ami_action = "QueuePause"

    def ami_fields(self) -> dict[str, str]:
        return {
            "Interface": self.interface,
            "Paused": "true" if self.pause.paused else "false",
            "Reason": self.pause.reason,
        }


@dataclass
class Newest:
    pause: Pause
    at: float  # the node's event time of the change
    interface: str


@dataclass
class PauseStates:
    """The pure core: the newest pause of each agent, and the writes that spread it."""

    nodes: Sequence[str]
    # whether an agent rings or talks on some node now (agents.device_state)
    busy: Callable[[str], bool] = lambda seat: False
    newest: dict[str, Newest] = field(default_factory=dict)
    # writes not reported back yet, per (node, seat): (the pause, when written)
    expected: dict[tuple[str, str], list[tuple[Pause, float]]] = field(default_factory=dict)

    def feed(self, node: str, event: AMIEvent, now: float) -> list[SetPause]:
        """One QueueMemberPause of one node; the writes it calls for."""
        interface = event.get("Interface")
        seat = seat_of_interface(interface)
        if event.name != "QueueMemberPause" or seat is None:
            return []
        pause, at = Pause.of(event), event_time(event, now)
        known = self.newest.get(seat)
        if self._echo(node, seat, pause, now):  # one of our writes, reported back
            return self._correct(node, seat, known, now) if known and known.pause != pause else []
        if pause == Pause(True, AUTO_PAUSE) and self.busy(seat):
            # the agent rings or talks elsewhere: the front refused this node's ring with
            # 486, which app_queue reads as no answer. Undone here, never spread.
            kept = known or Newest(Pause(False), at, interface)
            return self._correct(node, seat, kept, now)
        if known is not None and at < known.at:  # an older change than the newest: undone
            return self._correct(node, seat, known, now) if known.pause != pause else []
        self.newest[seat] = Newest(pause, at, interface)
        if known is not None and known.pause == pause:
            return []
        newest = self.newest[seat]
        return [self._write(other, seat, newest, now) for other in self.nodes if other != node]

    def replay(self, node: str, now: float) -> list[SetPause]:
        """Every known pause for a node that came back (what it was sent before is void)."""
        for key in [key for key in self.expected if key[0] == node]:
            del self.expected[key]
        return [
            self._write(node, seat, newest, now) for seat, newest in sorted(self.newest.items())
        ]

    def _echo(self, node: str, seat: str, pause: Pause, now: float) -> bool:
        pending = [
            (sent, at)
            for sent, at in self.expected.get((node, seat), [])
            if now - at <= ECHO_SECONDS
        ]
        for index, (sent, _) in enumerate(pending):
            if sent == pause:
                del pending[index]
                self.expected[(node, seat)] = pending
                return True
        self.expected[(node, seat)] = pending
        return False

    def _correct(self, node: str, seat: str, known: Newest, now: float) -> list[SetPause]:
        """Put a node back to the newest pause (unless that write is on its way already)."""
        if any(sent == known.pause for sent, _ in self.expected.get((node, seat), [])):
            return []
        return [self._write(node, seat, known, now)]

    def _write(self, node: str, seat: str, newest: Newest, now: float) -> SetPause:
        self.expected.setdefault((node, seat), []).append((newest.pause, now))
        return SetPause(node, seat, newest.interface, newest.pause)
