"""The robot and the agent-first callbacks share one channel cap and one pace.

Both dial citizens on the same outbound trunk: the robot's claim must count
the callback dialer's live calls (and those started in the last minute) as
the callback dialer counts the robot's attempts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agents.callback_dialer import budget
from callback_robot.attempts import create_attempt
from callback_robot.claim import claim_due
from callback_robot.eligibility import DueRules
from core.config import HotlineConfig, load_config
from core.vocabulary import CallDirection, TicketStatus
from db.callbacks import AGENT_CALLBACK_PREFIX, outbound_load
from db.models import Call
from db.session import unit_of_work
from db.tickets import create_ticket
from tests.support.config import write_config

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, inside the window
RULES = DueRules(
    now=NOW,
    today_start=datetime(2026, 11, 25, tzinfo=ZoneInfo("Asia/Shanghai")),
    closed_before=NOW - timedelta(hours=2),
)


def closed_tickets(session: Session, count: int, first: int = 0) -> list[int]:
    """Tickets closed three days ago: all due for the robot's survey call."""
    tickets = []
    for n in range(first, first + count):
        ticket = create_ticket(
            session,
            caller_number=f"1380000{n:04d}",
            local_day=date(2026, 11, 20),
            accepted_at=NOW - timedelta(days=5),
        )
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = NOW - timedelta(days=3)
        tickets.append(ticket)
    session.flush()
    return [ticket.id for ticket in tickets]


def agent_callback(session: Session, n: int, started: datetime, *, live: bool = True) -> None:
    """A callback dialer's call, as it writes one: a `calls` row callback-TASK-N."""
    session.add(
        Call(
            uniqueid=f"{AGENT_CALLBACK_PREFIX}{n}-1",
            direction=CallDirection.OUTBOUND,
            caller_number=f"1390000{n:04d}",
            started_at=started,
            ended_at=None if live else started + timedelta(seconds=10),
        )
    )


@pytest.mark.parametrize("live_callbacks", [0, 2, 5, 7])
def test_the_robot_claims_only_the_channels_the_callbacks_leave(
    store: sessionmaker[Session], live_callbacks: int
) -> None:
    with unit_of_work(store) as session:
        closed_tickets(session, 10)
        for n in range(live_callbacks):  # long in a call: they hold channels, not the pace
            agent_callback(session, n, NOW - timedelta(minutes=5))
    with unit_of_work(store) as session:
        claimed = claim_due(session, RULES, max_channels=5, calls_per_minute=100, robot_id="r")
    assert len(claimed) == max(0, 5 - live_callbacks)


def test_callbacks_started_in_the_last_minute_spend_the_robots_pace(
    store: sessionmaker[Session],
) -> None:
    with unit_of_work(store) as session:
        closed_tickets(session, 10)
        agent_callback(session, 1, NOW - timedelta(seconds=20), live=False)  # ended, this minute
        agent_callback(session, 2, NOW - timedelta(seconds=50), live=False)
        agent_callback(session, 3, NOW - timedelta(seconds=61), live=False)  # over a minute ago
    with unit_of_work(store) as session:
        claimed = claim_due(session, RULES, max_channels=10, calls_per_minute=4, robot_id="r")
    assert len(claimed) == 2


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path, robot={"max_channels": 4, "calls_per_minute": 6}))


def test_both_dialers_read_the_same_count(
    store: sessionmaker[Session], config: HotlineConfig
) -> None:
    with unit_of_work(store) as session:
        closed_tickets(session, 1)
        agent_callback(session, 1, NOW - timedelta(seconds=30))  # live, started this minute
    with unit_of_work(store) as session:
        assert len(claim_due(session, RULES, max_channels=4, calls_per_minute=6, robot_id="r")) == 1
        (earlier,) = closed_tickets(session, 1, first=1)
        old = create_attempt(session, earlier, NOW - timedelta(minutes=10), "r")
        old.started_at = NOW - timedelta(minutes=10)  # live, not started this minute
    with unit_of_work(store) as session:
        load = outbound_load(session, NOW - timedelta(minutes=1))
        assert (load.live, load.started) == (3, 2)
        # the callback dialer: 4 channels less 3 live; 6 a minute less 2 started
        assert budget(session, config, NOW) == 1


def test_the_robot_sees_a_channel_freed_when_an_agent_callback_ends(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    """The dispatcher's follower passes again when live outbound calls drop, and an agent
    callback that ends frees a channel too (it counted against the same cap)."""
    from callback_robot.dispatcher import Dispatcher

    config = load_config(write_config(tmp_path))

    async def nothing(*_: object) -> None:
        return None

    dispatcher = Dispatcher(config, store, nothing, clock=lambda: NOW)
    with unit_of_work(store) as session:
        agent_callback(session, 1, NOW - timedelta(seconds=30))
    assert dispatcher.live() == 1
    with unit_of_work(store) as session:
        call = session.query(Call).one()
        call.ended_at = NOW
    assert dispatcher.live() == 0
