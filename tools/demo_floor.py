"""A call centre without people: scripted agents answer scripted citizens, live.

`hotline demo-floor` (with `hotline up` running and the simulators on) makes N
scripted agent accounts (`demo-agent-1` ...: app_queue members that ring, answer
after a delay, talk a while and hang up: dialplan `sim-agent`), logs them in
over AMI, and sends citizens to a line as a Poisson process. Its figures are
read from Asterisk's queue_log as it grows, exactly as the wallboard and the
reports read them: offered, answered, answered within the service level,
abandoned, the longest wait. Anyone can watch the ACD work without people.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents.control import log_in, log_out
from agents.queue_log import QueueEvent, read_from
from agents.store import SCRIPTED, membership
from core.config import HotlineConfig
from dashboard.agent_accounts import add_agent
from db.models import Agent, User
from db.session import unit_of_work
from telephony.ami import AMIClient

SCRIPT_IDS = itertools.count(900_000)  # scripted citizens' AstDB keys, apart from the tests'
LEFT = {"ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY", "EXITEMPTY"}


class DemoFloorError(Exception):
    """The demo cannot run here (simulators off, no such line)."""


@dataclass(frozen=True)
class FloorPlan:
    agents: int = 4
    calls_per_minute: float = 6.0
    minutes: float = 3.0
    answer_after: float = 2.0  # seconds an agent lets the phone ring
    talk: float = 20.0  # seconds an agent talks
    line: str = "12345"
    seed: int = 12345


@dataclass
class FloorFigures:
    """The queue's figures so far, from queue_log lines of this demo's calls."""

    placed: int = 0
    offered: int = 0
    answered: int = 0
    within_level: int = 0
    left: int = 0
    longest_wait: int = 0
    calls: set[str] = field(default_factory=set)

    @property
    def service_level(self) -> float | None:
        return self.within_level / self.offered if self.offered else None

    def add(self, event: QueueEvent, level_seconds: int) -> None:
        if event.event == "ENTERQUEUE":
            self.offered += 1
        elif event.event == "CONNECT":
            wait = int(event.field(1) or 0)
            self.answered += 1
            self.within_level += wait <= level_seconds
            self.longest_wait = max(self.longest_wait, wait)
        elif event.event in LEFT:
            self.left += 1


def demo_agents(config: HotlineConfig, sessions: sessionmaker[Session], count: int) -> list[Agent]:
    """demo-agent-1 … demo-agent-N, scripted, made once (they cannot log in to the console)."""
    found = []
    with unit_of_work(sessions) as session:
        for n in range(1, count + 1):
            login = f"demo-agent-{n}"
            agent = session.scalars(
                select(Agent).join(User, Agent.user_id == User.id).where(User.username == login)
            ).one_or_none()
            if agent is None:
                agent = add_agent(session, config, login, "!", phone=SCRIPTED)
            agent.user  # noqa: B018 (loaded while the session is open)
            found.append(agent)
        session.expunge_all()
    return found


async def run_floor(
    config: HotlineConfig,
    sessions: sessionmaker[Session],
    ami: AMIClient,
    plan: FloorPlan,
    show: Callable[[FloorFigures], None],
) -> FloorFigures:
    """Run the floor for plan.minutes; show the figures every second; log the agents out."""
    if not config.asterisk.include_simulators:
        raise DemoFloorError("asterisk.include_simulators is false: no scripted agents here")
    if plan.line not in {line.did for line in config.lines}:
        raise DemoFloorError(f"--line {plan.line}: not a line of {config.source}")
    agents = demo_agents(config, sessions, plan.agents)
    members = [membership(agent) for agent in agents]
    script = f"{plan.answer_after:g}:{plan.talk:g}"
    for agent in agents:
        await ami.action("DBPut", Family="simagent", Key=agent.endpoint, Val=script)
    for member in members:
        await log_in(ami, member)
    line = next(line for line in config.lines if line.did == plan.line)
    queue = config.queue(line.queue)
    figures = FloorFigures()
    try:  # read on from the end of what queue_log holds now
        stat = config.queue_log.stat()
        inode, offset = stat.st_ino, stat.st_size
    except FileNotFoundError:
        inode, offset = 0, 0
    rng = random.Random(plan.seed)
    loop = asyncio.get_running_loop()
    end = loop.time() + plan.minutes * 60
    # after the last arrival: until every citizen is answered or gone (or a generous while)
    grace = end + queue.max_wait_seconds + plan.talk + 60
    calls: list[asyncio.Task[None]] = []
    next_call = loop.time() + rng.expovariate(plan.calls_per_minute / 60)

    def pending() -> bool:
        return figures.placed > figures.answered + figures.left or not all(c.done() for c in calls)

    try:
        while loop.time() < end or (pending() and loop.time() < grace):
            if loop.time() >= next_call and loop.time() < end:
                calls.append(asyncio.create_task(_citizen(ami, plan.line, figures)))
                next_call += rng.expovariate(plan.calls_per_minute / 60)
            chunk = read_from(config.queue_log, inode, offset)
            inode, offset = chunk.inode, chunk.offset
            for event in chunk.events:
                if event.callid in figures.calls or event.event == "ENTERQUEUE":
                    figures.calls.add(event.callid)
                    figures.add(event, queue.service_level_seconds)
            show(figures)
            await asyncio.sleep(min(1.0, max(0.05, next_call - loop.time())))
    finally:
        for member in members:
            await log_out(ami, member)
    return figures


async def _citizen(ami: AMIClient, line: str, figures: FloorFigures) -> None:
    """One citizen: calls the line and stays on until the agent ends the call."""
    key = str(next(SCRIPT_IDS))
    await ami.action("DBPut", Family="sim", Key=key, Val="w300")
    figures.placed += 1
    await ami.originate(
        f"Local/script{key}@sim-citizen",
        context="hotline-in",
        exten=line,
        caller_id=f"1390000{int(key) % 10000:04d}",
        timeout_ms=10000,
    )
