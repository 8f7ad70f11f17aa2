"""The reconciler: no request is lost, every recording is findable.

Run by `hotline reconcile` and periodically by `hotline serve`. In order:
1. replay the spool (intents written while the database was away);
2. calls that ended (or are too old to be running) without a ticket get one;
3. hotline-named recordings with no call row (the FastAGI server was down for
   the whole call) become a call row and a ticket, caller and line taken from
   the file name;
4. report calls whose recording is missing on disk, and recordings no call
   names (after step 3 these should be none).
Anything younger than `ivr.reconcile_settle_seconds` may still be in progress
and is left for the next run. A call counts as ended only when its hang-up was
recorded or Asterisk no longer has its channel (`live`: the Uniqueids AMI
lists now); without AMI, only when it is older than the longest call the
FastAGI server lets run (`agi.handler_timeout`). In a cluster (issue 22)
every node is asked (`LiveCalls`): a node that is down (its AMI unreachable
and the SIP front no longer sending it calls) carries no call any more, so
its calls in progress get their tickets on the next pass, marked as lost with
the node; a node that only could not be asked keeps its calls open until the
longest call. A pass looks only at the
recordings folders of today and yesterday (local time) and at the calls of
those days, so its cost does not grow with the hotline's history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.phone_numbers import mask_in_text
from core.recording_keys import recordings_root, resolve
from core.telemetry import RECONCILE_FINDINGS
from core.vocabulary import CallStep
from db.calls import (
    calls_with_recording_since,
    calls_without_ticket,
    forget_empty_recording,
    known_recording_paths,
    known_uniqueids,
)
from db.models import Call, Ticket
from db.session import unit_of_work
from ivr import recordings
from ivr.store import CallEnd, IvrStore
from telephony.ami import AMIClient, AMIError

log = logging.getLogger(__name__)


NODE_LOST_CAUSE = "node lost"  # calls.hangup_cause of a call whose node died under it


@dataclass(frozen=True)
class LiveCalls:
    """Which calls Asterisk still carries, as far as the nodes can tell.

    `uniqueids`: the channels of every node that answered (None: none could
    be asked, as on one box without AMI). `down`: nodes that are gone, whose
    calls are all over. `unknown`: nodes that could not be asked but are not
    known to be gone: their calls close only when older than any call can be.
    """

    uniqueids: set[str] | None
    down: frozenset[str] = frozenset()
    unknown: frozenset[str] = frozenset()

    def is_over(self, call: Call, longest: datetime) -> bool:
        """Whether a call with no ticket has ended, as far as anyone can tell."""
        if call.ended_at is not None or call.node in self.down:
            return True
        if self.uniqueids is None or call.node in self.unknown:
            return call.started_at < longest
        return call.uniqueid not in self.uniqueids


@dataclass
class ReconcileReport:
    spool_applied: int = 0
    spool_left: int = 0
    tickets_for_calls: list[str] = field(default_factory=list)
    tickets_for_lost_calls: list[str] = field(default_factory=list)  # their node died
    tickets_for_orphan_recordings: list[str] = field(default_factory=list)
    empty_recordings_removed: list[str] = field(default_factory=list)
    calls_missing_recording: list[tuple[str, str]] = field(default_factory=list)
    recordings_without_call: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.spool_left or self.calls_missing_recording or self.recordings_without_call)


def reconcile(
    store: IvrStore,
    settle_seconds: int | None = None,
    live: set[str] | LiveCalls | None = None,
) -> ReconcileReport:
    """One reconciliation pass (synchronous: run it in a thread from async code).

    `live`: the Uniqueids of the channels Asterisk has now (None: AMI could not
    be asked), or a cluster's `LiveCalls`; a call whose channel is live is
    never closed.
    """
    calls = live if isinstance(live, LiveCalls) else LiveCalls(live)
    config = store.config
    settle = config.ivr.reconcile_settle_seconds if settle_seconds is None else settle_seconds
    report = ReconcileReport()
    report.spool_applied, report.spool_left = store.spool.replay(store.apply)
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=settle)
    longest = now - timedelta(seconds=config.agi.handler_timeout)
    days = recordings.recent_days(now, config.tz)
    root = recordings_root(config)  # a cluster's store (shipped recordings), else the folder
    name = _namer(root, keys=config.cluster is not None)
    recent = recordings.scan(root, days)  # one scan of two folders per pass
    report.empty_recordings_removed = _remove_empty(store, recent, settle, name)
    recent = [r for r in recent if name(r.path) not in report.empty_recordings_removed]

    with unit_of_work(store.sessions) as session:
        pending = [
            Pending(
                c.uniqueid,
                c.caller_number,
                c.did,
                c.recording_path,
                c.started_at,
                c.last_step,
                c.node if c.ended_at is None and c.node in calls.down else None,
            )
            for c in calls_without_ticket(session, cutoff)
            if calls.is_over(c, longest)
        ]
    for call in pending:
        number = _ticket_for_call(store, call)
        report.tickets_for_calls.append(number)
        if call.lost_with:
            report.tickets_for_lost_calls.append(number)

    found = [r for r in recent if time.time() - _mtime(r.path) >= settle]
    by_call: dict[str, list[recordings.RecordingName]] = {}
    for rec in found:
        by_call.setdefault(rec.uniqueid, []).append(rec)
    with unit_of_work(store.sessions) as session:
        known = known_uniqueids(session, by_call)
    for uniqueid, files in sorted(by_call.items()):
        if uniqueid in known:
            continue
        first = files[0]
        whole = next((name(f.path) for f in files if not f.is_request), None)
        requests = [name(f.path) for f in files if f.is_request]
        started = datetime.fromtimestamp(min(_mtime(f.path) for f in files), UTC)
        number = _ticket(
            store,
            uniqueid,
            first.caller,
            first.did,
            whole,
            requests,
            started,
            CallStep.NO_CALL_ROW,
        )
        report.tickets_for_orphan_recordings.append(number)

    since = datetime.combine(days[0], datetime.min.time(), config.tz)
    whole = [name(r.path) for r in recent if not r.is_request]
    with unit_of_work(store.sessions) as session:
        # in a cluster a row naming a node's own path waits for its node daemon: not missing
        report.calls_missing_recording = [
            (uid, path)
            for uid, path in calls_with_recording_since(session, since)
            if (config.cluster is None or not Path(path).is_absolute())
            and not resolve(path, root).exists()  # a cluster's rows name store keys
        ]
        named = known_recording_paths(session, whole)
    report.recordings_without_call = [
        name(r.path)
        for r in recent
        if not r.is_request and name(r.path) not in named and time.time() - _mtime(r.path) >= settle
    ]
    _log(report)
    return report


@dataclass(frozen=True)
class Pending:
    """A call that is over and has no ticket yet, as its row says."""

    uniqueid: str
    caller: str | None
    did: str | None
    recording: str | None
    started_at: datetime
    step: str | None
    lost_with: str | None  # the node that died under the call, if it did


def _ticket_for_call(store: IvrStore, call: Pending) -> str:
    """The call's ticket; a call whose node died is marked so, on its row and its ticket."""
    request = recordings.request_path(call.recording) if call.recording else None
    end = CallEnd(
        call.uniqueid,
        call.caller or "unknown",
        call.did or "",
        call.recording,
        [r for r in (request, _message(call.recording)) if r],
        NODE_LOST_CAUSE if call.lost_with else None,
        CallStep.read(call.step),
        call.started_at,
    )

    def write(session: Session) -> str:
        number = store.apply_call_end(session, end)
        if call.lost_with:
            note_node_lost(session, number, call.lost_with)
        return number

    number = store.transaction(write)
    if call.lost_with:
        log.warning(
            "call %s: node %s died during the call; ticket %s",
            call.uniqueid,
            call.lost_with,
            number,
        )
    return number


def note_node_lost(session: Session, number: str, node: str) -> None:
    """Say on the ticket that the call's node died under it (the caller did not hang up)."""
    ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
    note = f"节点 {node} 在通话中失联 node {node} lost during the call"
    if note not in (ticket.description or ""):
        ticket.description = f"{ticket.description}; {note}" if ticket.description else note


def _remove_empty(
    store: IvrStore,
    found: list[recordings.RecordingName],
    settle: int,
    name: Callable[[Path], str],
) -> list[str]:
    """Header-only recordings (a call that ended before any audio) are deleted, with a note."""
    removed = []
    for rec in found:
        if rec.has_audio or time.time() - _mtime(rec.path) < settle:
            continue
        rec.path.unlink(missing_ok=True)
        with unit_of_work(store.sessions) as session:
            forget_empty_recording(
                session,
                name(rec.path),
                "recording had no audio (ended before anyone spoke); removed",
            )
        removed.append(name(rec.path))
    return removed


def _namer(root: Path, keys: bool) -> Callable[[Path], str]:
    """How rows name a recording found under root: its store key (cluster), else its path."""
    return (lambda path: path.relative_to(root).as_posix()) if keys else str


def _message(recording: str | None) -> str | None:
    return recording[:-4] + "-message.wav" if recording and recording.endswith(".wav") else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _ticket(
    store: IvrStore,
    uniqueid: str,
    caller: str,
    did: str,
    recording: str | None,
    requests: list[str],
    started: datetime,
    step: CallStep,
) -> str:
    end = CallEnd(uniqueid, caller, did, recording, requests, None, step, started)
    return store.transaction(lambda s: store.apply_call_end(s, end))


def _log(report: ReconcileReport) -> None:
    for finding, count in (
        ("spool_applied", report.spool_applied),
        ("ticket_for_call", len(report.tickets_for_calls)),
        ("ticket_for_orphan_recording", len(report.tickets_for_orphan_recordings)),
        ("empty_recording_removed", len(report.empty_recordings_removed)),
        ("call_missing_recording", len(report.calls_missing_recording)),
        ("recording_without_call", len(report.recordings_without_call)),
    ):
        RECONCILE_FINDINGS.labels(finding).inc(count)
    made = len(report.tickets_for_calls) + len(report.tickets_for_orphan_recordings)
    if made or report.spool_applied:
        log.warning(
            "reconciler: %d spooled intents applied, %d tickets created for calls that had none",
            report.spool_applied,
            made,
        )
    for uid, path in report.calls_missing_recording:
        log.error("call %s names recording %s, which is not on disk", uid, mask_in_text(path))
    for path in report.recordings_without_call:
        log.error("recording %s belongs to no call", mask_in_text(path))


async def live_uniqueids(ami: AMIClient | None) -> set[str] | None:
    """The Uniqueids of every channel Asterisk has now; None when AMI cannot tell."""
    if ami is None or not ami.connected.is_set():
        return None
    queue = ami.subscribe("CoreShowChannel", "CoreShowChannelsComplete")
    try:
        await ami.action("CoreShowChannels")
        live: set[str] = set()
        while True:
            event = await asyncio.wait_for(queue.get(), 10)
            if event.name == "CoreShowChannelsComplete":
                return live
            live.add(event.get("Uniqueid"))
    except (AMIError, TimeoutError) as exc:
        log.warning("reconciler: cannot list Asterisk's channels (%s)", exc)
        return None
    finally:
        ami.unsubscribe(queue)


async def reconcile_now(
    store: IvrStore, ami: AMIClient | None, settle_seconds: int | None = None
) -> ReconcileReport:
    """A pass that first asks Asterisk which calls are still live (off the loop for the rest)."""
    live = await live_uniqueids(ami)
    return await asyncio.to_thread(reconcile, store, settle_seconds, live)
