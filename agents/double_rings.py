"""Was an agent ever rung by two nodes at once? Read from every node's queue_log.

queue_log writes no line when a member starts ringing, only when the ring ends:
`RINGNOANSWER` (data1: how long it rang, in ms) or `CONNECT` (data3: the ring
time, in s), and the call's end (`COMPLETECALLER` / `COMPLETEAGENT`, same
callid). So each node's lines give an agent's busy spans: each ring, ending at
its line and starting its ring time earlier, and each call from its CONNECT to
its end. Two spans of one agent from two nodes that overlap mean the agent was
rung while ringing or talking elsewhere. queue_log counts whole seconds, so an
overlap of up to `slack` seconds is the clock's grain, not a double ring. A ring
the SIP front refused with 486 lasts ~0 s and overlaps nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.queue_log import QueueEvent

CALL_ENDS = {"COMPLETECALLER", "COMPLETEAGENT", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"}


@dataclass(frozen=True)
class Span:
    """An agent rung or on a call on one node, from start to end."""

    node: str
    agent: str
    start: datetime
    end: datetime
    what: str  # "ring" or "call"
    callid: str


def _number(text: str) -> float:
    try:
        return max(0.0, float(text))
    except ValueError:
        return 0.0


def busy_spans(node: str, events: Iterable[QueueEvent], until: datetime) -> list[Span]:
    """One node's rings and calls per agent (a call not ended yet lasts until `until`)."""
    spans: list[Span] = []
    talking: dict[tuple[str, str], datetime] = {}
    for event in sorted(events, key=lambda e: e.at):
        if not event.agent or event.agent == "NONE":
            continue
        if event.event == "RINGNOANSWER":
            rang = timedelta(milliseconds=_number(event.field(1)))
            spans.append(Span(node, event.agent, event.at - rang, event.at, "ring", event.callid))
        elif event.event == "CONNECT":
            rang = timedelta(seconds=_number(event.field(3)))
            spans.append(Span(node, event.agent, event.at - rang, event.at, "ring", event.callid))
            talking[(event.callid, event.agent)] = event.at
        elif event.event in CALL_ENDS:
            began = talking.pop((event.callid, event.agent), None)
            if began is not None:
                spans.append(Span(node, event.agent, began, event.at, "call", event.callid))
    spans += [
        Span(node, agent, began, until, "call", callid)
        for (callid, agent), began in talking.items()
    ]
    return spans


def double_rings(
    spans_by_node: Mapping[str, list[Span]], slack: timedelta = timedelta(seconds=1)
) -> list[tuple[Span, Span]]:
    """Pairs of one agent's spans from two nodes that overlap by more than slack."""
    spans = sorted((s for node_spans in spans_by_node.values() for s in node_spans), key=_key)
    found: list[tuple[Span, Span]] = []
    for index, first in enumerate(spans):
        for second in spans[index + 1 :]:
            if second.agent != first.agent or second.start >= first.end:
                break
            overlap = min(first.end, second.end) - second.start
            if second.node != first.node and overlap > slack:
                found.append((first, second))
    return found


def _key(span: Span) -> tuple[str, datetime]:
    return span.agent, span.start
