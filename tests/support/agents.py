"""Scripted agents for live tests: accounts on Local-channel seats that answer by script."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from agents.control import log_in, log_out
from agents.store import SCRIPTED, membership
from dashboard.agent_accounts import add_agent
from db.models import Agent, AgentStateChange, QueueLogEntry
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient


@dataclass
class ScriptedAgent:
    login: str
    agent_id: int
    endpoint: str


async def scripted_agent(
    hotline: Hotline, ami: AMIClient, login: str, answer_after: str = "1", talk: float = 3
) -> ScriptedAgent:
    """An agent account whose 'phone' answers after answer_after s ("never": rings out)."""
    with unit_of_work(hotline.sessions) as session:
        agent = add_agent(session, hotline.config, login, "!", phone=SCRIPTED)
        found = ScriptedAgent(login, agent.id, agent.endpoint)
    await ami.action("DBPut", Family="simagent", Key=found.endpoint, Val=f"{answer_after}:{talk}")
    return found


async def log_in_agent(hotline: Hotline, ami: AMIClient, agent: ScriptedAgent) -> None:
    with unit_of_work(hotline.sessions) as session:
        member = membership(session.get_one(Agent, agent.agent_id))
    await log_in(ami, member)


async def log_out_everyone(hotline: Hotline, ami: AMIClient) -> None:
    """No member stays in the session's Asterisk after a test (members persist in AstDB)."""
    with unit_of_work(hotline.sessions) as session:
        members = [membership(agent) for agent in session.scalars(select(Agent))]
    for member in members:
        await log_out(ami, member)


def queue_log_rows(hotline: Hotline, callid: str) -> list[tuple[str, str]]:
    """(event, agent) of the call's queue_log lines as the store kept them."""
    with unit_of_work(hotline.sessions) as session:
        rows = session.scalars(
            select(QueueLogEntry)
            .where(QueueLogEntry.callid == callid)
            .order_by(QueueLogEntry.at, QueueLogEntry.id)
        )
        return [(row.event, row.agent) for row in rows]


def agent_states(hotline: Hotline, agent_id: int) -> list[tuple[str, str | None]]:
    with unit_of_work(hotline.sessions) as session:
        rows = session.scalars(
            select(AgentStateChange)
            .where(AgentStateChange.agent_id == agent_id)
            .order_by(AgentStateChange.at, AgentStateChange.id)
        )
        return [(row.state.value, row.reason) for row in rows]
