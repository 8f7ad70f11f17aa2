"""The robot across cluster nodes (issue 22): node choice in the claim, lost nodes settled once.

A node's health is given as data (`NodeView`): these are store tests, not call
flows. Each runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callback_robot.answers import save_answer
from callback_robot.attempts import create_attempt, finish_attempt
from callback_robot.claim import ClaimedCall, claim_due
from callback_robot.cluster import ClusterRobot
from callback_robot.dispatcher import Dispatcher
from callback_robot.eligibility import DueRules, due_tickets
from callback_robot.front import FrontUnreadable
from callback_robot.lost import NODE_LOST, rejoin_node, settle_lost_node
from callback_robot.nodes import NodeHealth, NodeView
from callback_robot.recovery import settle
from callback_robot.status import node_states
from callback_robot.store import RobotStore
from core.config import load_config
from core.vocabulary import AttemptOutcome, AttemptState, Question, TicketStatus
from db.cdr import CdrLine, add_cdr_lines
from db.cluster import lost_nodes, mark_draining, mark_lost
from db.models import CallbackAttempt, Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket
from telephony.ami import OriginateResult
from tests.support.config import write_config

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, a Wednesday: in the window
RULES = DueRules(
    now=NOW,
    today_start=datetime(2026, 11, 25, tzinfo=ZoneInfo("Asia/Shanghai")),
    closed_before=NOW - timedelta(hours=2),
)


def healthy(*names: str, per_node: int = 3) -> NodeView:
    return NodeView(tuple(NodeHealth(n, ami_up=True, front_active=True) for n in names), per_node)


def closed_tickets(session: Session, count: int, first: int = 0, citizens: int = 0) -> list[int]:
    """Tickets closed three days ago, all due; `citizens` > 0 shares that many numbers."""
    ids = []
    for n in range(first, first + count):
        caller = n % citizens if citizens else n
        ticket = create_ticket(
            session,
            caller_number=f"1380000{caller:04d}",
            local_day=date(2026, 11, 20),
            accepted_at=NOW - timedelta(days=5),
        )
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = NOW - timedelta(days=3)
        session.flush()
        ids.append(ticket.id)
    return ids


def in_flight_on(
    session: Session, node: str, count: int, first: int, started: datetime
) -> list[int]:
    """Attempts dialing on `node` since `started` (each its own ticket and citizen)."""
    attempts = []
    for ticket_id in closed_tickets(session, count, first=first):
        attempt = create_attempt(session, ticket_id, started, "robot-0", node)
        attempt.started_at = started
        attempts.append(attempt.id)
    session.flush()
    return attempts


def by_node(session: Session) -> Counter[str | None]:
    live = (AttemptState.DIALING, AttemptState.IN_CALL)
    nodes = session.scalars(select(CallbackAttempt.node).where(CallbackAttempt.state.in_(live)))
    return Counter(nodes)


# -- the node choice -----------------------------------------------------------------------
def test_each_call_goes_to_the_node_with_the_most_free_slots(
    store: sessionmaker[Session],
) -> None:
    with unit_of_work(store) as session:
        in_flight_on(session, "ast1", 2, first=100, started=NOW - timedelta(minutes=5))
        closed_tickets(session, 10)
    with unit_of_work(store) as session:
        claimed = claim_due(
            session,
            RULES,
            max_channels=20,
            calls_per_minute=20,
            robot_id="r",
            view=healthy("ast1", "ast2"),
        )
        assert [call.node for call in claimed] == ["ast2", "ast2", "ast1", "ast2"]
        for call in claimed:  # the claim wrote each attempt's node
            assert session.get_one(CallbackAttempt, call.attempt_id).node == call.node
    with unit_of_work(store) as session:
        assert by_node(session) == {"ast1": 3, "ast2": 3}  # both full: 3 a node
        again = claim_due(
            session,
            RULES,
            max_channels=20,
            calls_per_minute=20,
            robot_id="r",
            view=healthy("ast1", "ast2"),
        )
        assert again == []


def test_the_cluster_wide_cap_and_pace_still_hold(store: sessionmaker[Session]) -> None:
    with unit_of_work(store) as session:
        in_flight_on(session, "ast1", 2, first=100, started=NOW - timedelta(minutes=5))
        closed_tickets(session, 10)
    view = healthy("ast1", "ast2", per_node=10)
    with unit_of_work(store) as session:
        capped = claim_due(
            session, RULES, max_channels=5, calls_per_minute=20, robot_id="r", view=view
        )
        assert len(capped) == 3  # 5 channels in all, 2 in use
    with unit_of_work(store) as session:
        paced = claim_due(
            session, RULES, max_channels=50, calls_per_minute=4, robot_id="r", view=view
        )
        assert len(paced) == 1  # 3 of 4 started this minute


def test_draining_lost_and_unhealthy_nodes_take_no_call(store: sessionmaker[Session]) -> None:
    with unit_of_work(store) as session:
        closed_tickets(session, 6)
        mark_draining(session, "ast1", NOW)
    both = healthy("ast1", "ast2")

    def claim(view: NodeView) -> list[ClaimedCall]:
        with unit_of_work(store) as session:
            return claim_due(
                session, RULES, max_channels=20, calls_per_minute=20, robot_id="r", view=view
            )

    assert {call.node for call in claim(both)} == {"ast2"}  # ast1 drains
    with unit_of_work(store) as session:
        mark_lost(session, "ast2", NOW)
    assert claim(both) == []  # ast1 drains and ast2 is lost: nothing claimed
    sick = NodeView(
        (
            NodeHealth("ast3", ami_up=False, front_active=True),
            NodeHealth("ast4", ami_up=True, front_active=False),
            NodeHealth("ast5", ami_up=True, front_active=None),
        ),
        per_node=3,
    )
    assert claim(sick) == []
    with unit_of_work(store) as session:
        assert session.query(CallbackAttempt).count() == 3


def test_one_box_claims_are_unchanged(store: sessionmaker[Session]) -> None:
    with unit_of_work(store) as session:
        closed_tickets(session, 3)
    with unit_of_work(store) as session:
        claimed = claim_due(
            session, RULES, max_channels=2, calls_per_minute=20, robot_id="r", node="ast1"
        )
    assert [call.node for call in claimed] == ["ast1", "ast1"]


# -- a lost node ---------------------------------------------------------------------------
def lost_node_calls(session: Session) -> dict[str, int]:
    """On ast2: one call in a survey with an answer, one dialing; on ast1 one dialing."""
    answered, dialing = in_flight_on(
        session, "ast2", 2, first=0, started=NOW - timedelta(minutes=2)
    )
    session.get_one(CallbackAttempt, answered).state = AttemptState.IN_CALL
    save_answer(session, answered, Question.CONTACTED, 1, "dtmf")
    (elsewhere,) = in_flight_on(session, "ast1", 1, first=10, started=NOW - timedelta(minutes=2))
    (ended,) = in_flight_on(session, "ast2", 1, first=20, started=NOW - timedelta(hours=1))
    finish_attempt(session, ended, AttemptOutcome.NO_ANSWER, at=NOW - timedelta(minutes=50))
    return {"answered": answered, "dialing": dialing, "elsewhere": elsewhere, "ended": ended}


def test_a_lost_nodes_calls_are_settled_partial_or_failed_once(
    store: sessionmaker[Session],
) -> None:
    with unit_of_work(store) as session:
        ids = lost_node_calls(session)
    with unit_of_work(store) as session:
        settled = settle_lost_node(session, "ast2", NOW)
    assert sorted(settled or []) == sorted(
        [(ids["answered"], "partial"), (ids["dialing"], "failed")]
    )
    with unit_of_work(store) as session:
        assert settle_lost_node(session, "ast2", NOW + timedelta(seconds=5)) is None  # once
        rows = {a.id: a for a in session.query(CallbackAttempt)}
        for key in ("answered", "dialing"):
            assert rows[ids[key]].state == AttemptState.DONE
            assert rows[ids[key]].hangup_cause == NODE_LOST
            assert rows[ids[key]].ended_at == NOW
        assert rows[ids["elsewhere"]].state == AttemptState.DIALING  # ast1's call goes on
        assert rows[ids["ended"]].outcome == AttemptOutcome.NO_ANSWER  # kept
        assert lost_nodes(session) == {"ast2"}


def test_a_failed_node_lost_attempt_waits_for_the_retry_interval(
    store: sessionmaker[Session],
) -> None:
    with unit_of_work(store) as session:
        ids = lost_node_calls(session)
        settle_lost_node(session, "ast2", NOW)
        ticket = session.get_one(CallbackAttempt, ids["dialing"]).ticket_id
    rules = RULES.__dict__ | {"max_calls_per_citizen_per_day": 5, "max_attempts_per_day": 5}
    with unit_of_work(store) as session:  # "failed" waits 60 minutes, from the loss
        soon = DueRules(**rules | {"now": NOW + timedelta(minutes=59)})
        later = DueRules(**rules | {"now": NOW + timedelta(minutes=61)})
        assert ticket not in due_tickets(session, soon, limit=50)
        assert ticket in due_tickets(session, later, limit=50)
        # nothing was redialled: still one attempt for the ticket
        assert session.query(CallbackAttempt).filter_by(ticket_id=ticket).count() == 1


def test_two_robots_settle_a_lost_node_once(migrated_url: str, tmp_path: Path) -> None:
    """Two robots' stores, on engines of their own, see the loss at the same moment."""
    config = load_config(write_config(tmp_path, database={"url": migrated_url}))
    engines = [make_engine(migrated_url) for _ in range(2)]
    stores = [RobotStore(config, make_session_factory(engine)) for engine in engines]
    with unit_of_work(stores[0].sessions) as session:
        ids = lost_node_calls(session)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def robot(store: RobotStore, at: datetime) -> None:
        barrier.wait()
        results.append(asyncio.run(store.node_lost("ast2", at)))

    threads = [
        threading.Thread(target=robot, args=(s, NOW + timedelta(seconds=i)))
        for i, s in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settled = [r for r in results if r is not None]
    assert len(results) == 2 and len(settled) == 1
    assert sorted(settled[0]) == sorted([(ids["answered"], "partial"), (ids["dialing"], "failed")])  # type: ignore[arg-type]
    with unit_of_work(stores[0].sessions) as session:
        ended = session.get_one(CallbackAttempt, ids["dialing"]).ended_at
        assert ended in (NOW, NOW + timedelta(seconds=1))
    for engine in engines:
        engine.dispose()


def test_a_node_that_answers_again_rejoins_and_takes_calls(store: sessionmaker[Session]) -> None:
    with unit_of_work(store) as session:
        lost_node_calls(session)
        settle_lost_node(session, "ast2", NOW)
        closed_tickets(session, 2, first=30)
    with unit_of_work(store) as session:
        assert rejoin_node(session, "ast2", NOW + timedelta(minutes=1))
        assert not rejoin_node(session, "ast2", NOW + timedelta(minutes=1))
        assert lost_nodes(session) == set()
        claimed = claim_due(
            session, RULES, max_channels=20, calls_per_minute=20, robot_id="r", view=healthy("ast2")
        )
        assert [call.node for call in claimed] == ["ast2", "ast2"]
    with unit_of_work(store) as session:  # lost again later: settled again, the new calls
        assert sorted(settle_lost_node(session, "ast2", NOW + timedelta(hours=1)) or []) == sorted(
            (call.attempt_id, "failed") for call in claimed
        )


# -- recovery, per node ----------------------------------------------------------------------
def test_recovery_on_a_node_reads_its_shipped_call_records(store: sessionmaker[Session]) -> None:
    started = NOW - timedelta(minutes=10)
    with unit_of_work(store) as session:
        busy, silent = in_flight_on(session, "ast1", 2, first=0, started=started)
        (other,) = in_flight_on(session, "ast2", 1, first=10, started=started)
        for offset, (node, attempt, disposition) in enumerate(
            [("ast1", busy, "BUSY"), ("ast2", other, "ANSWERED"), ("ast1", 999, "ANSWERED")]
        ):
            shipped = CdrLine(
                offset=offset,
                disposition=disposition,
                userfield=f"attempt-{attempt}",
                ended_at=NOW - timedelta(minutes=9),
            )
            add_cdr_lines(session, node, 1, [shipped])
    with unit_of_work(store) as session:
        settled = settle(session, set(), NOW - timedelta(minutes=1), None, node="ast1")
    assert sorted(settled) == sorted([(busy, "busy"), (silent, "failed")])
    with unit_of_work(store) as session:
        assert session.get_one(CallbackAttempt, other).state == AttemptState.DIALING


# -- two robots -------------------------------------------------------------------------------
def test_two_cluster_robots_never_double_dial_and_hold_every_cap(
    database_url: str, tmp_path: Path
) -> None:
    from db.migrate import upgrade

    config = load_config(
        write_config(
            tmp_path,
            database={"url": database_url},
            robot={"max_channels": 5, "calls_per_minute": 1000, "max_calls_per_citizen_per_day": 3},
            cluster={"robot": {"max_channels_per_node": 3}},
        )
    )
    upgrade(database_url)
    sessions = make_session_factory(make_engine(database_url))
    with unit_of_work(sessions) as session:
        closed_tickets(session, 60, citizens=20)  # three tickets for each citizen

    async def nothing(attempt_id: int, ticket_id: int, number: str, node: str | None) -> None:
        return None

    view = healthy("ast1", "ast2", per_node=3)
    robots = [
        Dispatcher(config, sessions, nothing, robot_id=f"robot-{i}", nodes=lambda: view)
        for i in range(2)
    ]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    seen: list[tuple[int, Counter[str | None]]] = []

    def work(robot: Dispatcher) -> None:
        try:
            for round_no in range(12):
                barrier.wait()
                at = NOW + timedelta(seconds=round_no)
                robot.claim_here(at)
                with unit_of_work(sessions) as session:
                    nodes = by_node(session)
                    seen.append((sum(nodes.values()), nodes))
                    if round_no % 3 == 2 and robot.robot_id == "robot-0":
                        live = session.scalars(
                            select(CallbackAttempt).where(CallbackAttempt.outcome.is_(None))
                        ).all()
                        for attempt in live[:3]:  # ended on the test's clock, at this round
                            finish_attempt(session, attempt.id, AttemptOutcome.NO_ANSWER, at=at)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(robot,)) for robot in robots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert max(total for total, _ in seen) == 5  # the cluster-wide cap reached, never passed
    assert max(max(nodes.values(), default=0) for _, nodes in seen) <= 3  # per node
    with unit_of_work(sessions) as session:
        attempts = session.query(CallbackAttempt).all()
        assert {a.node for a in attempts} == {"ast1", "ast2"}
        assert len({a.ticket_id for a in attempts}) == len(attempts)  # none dialled twice
        assert_no_citizen_overlaps(session, attempts)


def assert_no_citizen_overlaps(session: Session, attempts: list[CallbackAttempt]) -> None:
    """No citizen had two attempts live at once (an attempt lives from its start to its end)."""
    numbers = {t: n for t, n in session.execute(select(Ticket.id, Ticket.caller_number))}
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for a in attempts:
        end = a.ended_at or datetime.max.replace(tzinfo=UTC)
        spans.setdefault(numbers[a.ticket_id], []).append((a.started_at, end))  # type: ignore[arg-type]
    for number, calls in spans.items():
        calls.sort()
        for (_, first_end), (second_start, _) in itertools.pairwise(calls):
            assert second_start >= first_end, f"citizen {number}: overlapping attempts"


# -- status ---------------------------------------------------------------------------------
def test_status_counts_each_nodes_calls_and_marks(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path, cluster={}))
    with unit_of_work(store) as session:
        lost_node_calls(session)
        mark_draining(session, "ast1", NOW)
    with unit_of_work(store) as session:
        rows = {row.name: row for row in node_states(session, config, NOW)}
    assert (rows["ast1"].dialing, rows["ast1"].in_call, rows["ast1"].placed_today) == (1, 0, 1)
    assert (rows["ast2"].dialing, rows["ast2"].in_call, rows["ast2"].placed_today) == (1, 1, 3)
    assert rows["ast1"].draining_since == NOW and rows["ast2"].lost_since is None


def test_a_robot_that_meets_another_marking_the_node_first_settles_nothing(
    migrated_url: str, tmp_path: Path
) -> None:
    """The first-ever loss of a node: its row does not exist yet, and both robots make it."""
    config = load_config(write_config(tmp_path, database={"url": migrated_url}))
    engines = [make_engine(migrated_url) for _ in range(2)]
    first, second = (make_session_factory(engine) for engine in engines)
    with unit_of_work(first) as session:
        ids = lost_node_calls(session)
    late = RobotStore(config, second)
    outcome: list[object] = []
    with unit_of_work(first) as session:
        assert settle_lost_node(session, "ast2", NOW) is not None  # marked, not committed yet
        waiting = threading.Thread(
            target=lambda: outcome.append(asyncio.run(late.node_lost("ast2", NOW))),
        )
        waiting.start()
        waiting.join(1.0)  # it waits for the first robot's row (or is told to try again)
        assert outcome == []
    waiting.join()
    assert outcome == [None]
    with unit_of_work(first) as session:
        assert session.get_one(CallbackAttempt, ids["dialing"]).hangup_cause == NODE_LOST
    for engine in engines:
        engine.dispose()


# -- the cluster robot's jobs, with its links and Kamailio as data ---------------------------
class FakeClient:
    """A node's AMI client as the dialer sees it: Originates are noted, answered at once."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.on_connect: list[object] = []
        self.on_disconnect: list[object] = []
        self.channels: list[str] = []

    async def originate(self, channel: str, **_: object) -> OriginateResult:
        self.channels.append(channel)
        return OriginateResult("x", True, 4, channel, "ast1-1.1", {})  # answered: stays dialing


class FakeLink:
    """A node's AMI link whose state the test sets."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.client = FakeClient()
        self.up = True
        self.down_since: datetime | None = None

    def drop(self, at: datetime) -> None:
        self.up, self.down_since = False, at

    def back(self) -> None:
        self.up, self.down_since = True, None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class Front:
    """Kamailio's node states as the test sets them (None: unreadable)."""

    def __init__(self) -> None:
        self.states: dict[str, bool] | None = {"ast1": True, "ast2": True}

    def __call__(self) -> dict[str, bool]:
        if self.states is None:
            raise FrontUnreadable("kamcmd: no answer")
        return dict(self.states)


def cluster_robot(
    migrated_url: str, folder: Path, clock: dict[str, datetime], front: Front, name: str
) -> tuple[ClusterRobot, dict[str, FakeLink]]:
    config = load_config(
        write_config(
            folder,
            database={"url": migrated_url},
            robot={"max_channels": 10, "calls_per_minute": 100},
            cluster={"node_lost_grace_seconds": 10, "robot": {"max_channels_per_node": 2}},
        )
    )
    links = {n: FakeLink(n) for n in ("ast1", "ast2")}
    robot = ClusterRobot(
        config,
        links,  # type: ignore[arg-type]
        make_session_factory(make_engine(migrated_url)),
        front,
        outbound_channel=OUTBOUND,
        robot_id=name,
        clock=lambda: clock["now"],
    )
    return robot, links


OUTBOUND = "PJSIP/{number}@sip-front"


async def test_the_cluster_robot_dials_through_the_chosen_node_and_settles_a_lost_one(
    migrated_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, front = {"now": NOW}, Front()
    robot, links = cluster_robot(migrated_url, tmp_path / "a", clock, front, "robot-a")
    other, other_links = cluster_robot(migrated_url, tmp_path / "b", clock, front, "robot-b")
    with unit_of_work(robot.sessions) as session:
        closed_tickets(session, 6)
    await robot.watch_nodes()
    await robot.dispatch()
    await asyncio.gather(*robot.pending)
    for name, link in links.items():  # 2 a node (the per-node cap), through the front
        assert len(link.client.channels) == 2, name
        assert all(
            c.startswith("PJSIP/1380000") and c.endswith("@sip-front") for c in link.client.channels
        )

    for each in (links, other_links):  # ast2 dies: both robots see it
        each["ast2"].drop(NOW + timedelta(seconds=1))
    front.states = {"ast1": True, "ast2": False}
    clock["now"] = NOW + timedelta(seconds=2)
    await robot.watch_nodes()  # inactive for 0 s: not lost yet
    with unit_of_work(robot.sessions) as session:
        assert lost_nodes(session) == set()
    clock["now"] = NOW + timedelta(seconds=13)
    await robot.watch_nodes()  # AMI down 12 s, inactive 11 s: lost
    await other.watch_nodes()  # finds it marked: settles nothing
    with unit_of_work(robot.sessions) as session:
        assert lost_nodes(session) == {"ast2"}
        on_ast2 = session.scalars(
            select(CallbackAttempt).where(CallbackAttempt.node == "ast2")
        ).all()
        assert [(a.outcome, a.hangup_cause) for a in on_ast2] == [
            (AttemptOutcome.FAILED, NODE_LOST)
        ] * 2
    assert caplog.text.count("node ast2 lost") == 1

    caplog.clear()
    for each in (links, other_links):
        each["ast1"].drop(NOW + timedelta(seconds=14))
    await robot.dispatch()
    await robot.dispatch()
    assert caplog.text.count("no node may take a call") == 1  # once, not every pass
    assert (
        "ast1: AMI down" in caplog.text
        and "ast2: AMI down, inactive in Kamailio, lost" in caplog.text
    )

    for each in (links, other_links):
        each["ast1"].back()
        each["ast2"].back()
    front.states = {"ast1": True, "ast2": True}
    clock["now"] = NOW + timedelta(seconds=30)
    await robot.watch_nodes()
    with unit_of_work(robot.sessions) as session:
        assert lost_nodes(session) == set()
    assert "node ast2 rejoined" in caplog.text
    await robot.dispatch()
    await asyncio.gather(*robot.pending)
    assert len(links["ast2"].client.channels) == 4  # it takes calls again (ast1 still full)
    assert len(links["ast1"].client.channels) == 2


async def test_kamailio_unreadable_declares_no_node_lost(migrated_url: str, tmp_path: Path) -> None:
    clock, front = {"now": NOW}, Front()
    robot, links = cluster_robot(migrated_url, tmp_path, clock, front, "robot-a")
    with unit_of_work(robot.sessions) as session:
        (attempt,) = in_flight_on(session, "ast2", 1, first=0, started=NOW)
    links["ast2"].drop(NOW)
    front.states = {"ast1": True, "ast2": False}
    await robot.watch_nodes()
    front.states = None  # the front stops answering kamcmd: what Kamailio thinks is unknown
    for seconds in (5, 30, 600):
        clock["now"] = NOW + timedelta(seconds=seconds)
        await robot.watch_nodes()
    with unit_of_work(robot.sessions) as session:
        assert lost_nodes(session) == set()
        assert session.get_one(CallbackAttempt, attempt).state == AttemptState.DIALING
    front.states = {"ast1": True, "ast2": False}  # readable again: the grace starts over
    clock["now"] = NOW + timedelta(seconds=605)
    await robot.watch_nodes()
    clock["now"] = NOW + timedelta(seconds=616)
    await robot.watch_nodes()
    with unit_of_work(robot.sessions) as session:
        assert lost_nodes(session) == {"ast2"}


def test_robot_status_shows_each_nodes_calls(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from hotline.cli import support as cli_support
    from hotline.cli.main import app

    monkeypatch.setattr(cli_support.console, "width", 200)
    config = write_config(tmp_path, database={"url": migrated_url}, cluster={})
    engine = make_engine(migrated_url)
    with unit_of_work(make_session_factory(engine)) as session:
        lost_node_calls(session)
        settle_lost_node(session, "ast2", NOW)
    engine.dispose()
    done = CliRunner().invoke(app, ["robot", "status", "-c", str(config)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    cells = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in done.output.splitlines()
        if "│ ast" in line
    ]
    rows = {row[0]: row[1:] for row in cells}  # placed today: on the real clock, not checked
    assert (rows["ast1"][:2], rows["ast1"][3]) == (["1", "0"], "可用 in service")  # one dialing
    assert rows["ast2"][:2] == ["0", "0"]  # its calls settled: none in flight
    assert rows["ast2"][3].startswith("失联 lost since")
