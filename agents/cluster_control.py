"""Agents log in, pause and log out on every node of a cluster at once.

In a cluster every node's queue lists every logged-in agent. A node reaches the
agent's phone through the SIP front, where the phone registered
(`PJSIP/<seat>@sip-front`), and watches the agent's shared custom device state
(`Custom:agent-<seat>`, kept equal on every node by agents.device_state), so an
agent busy on one node is not rung by another.

Each change goes to all nodes together. A node that is down or refuses is
reported by name, never fatal: the reachable nodes still change, and they all
change the same way, so the agent is in the same state wherever a call can
reach them. A node that comes back keeps what it had (app_queue's persistent
members): the agent's next click brings it in line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.control import AgentControlError, Membership, log_in, log_out, pause
from agents.device_state import DeviceState, state_interface
from core.sip_front import front_interface
from db.models import Agent, User
from telephony.ami import AMIActionError, AMIClient, AMIError

NODE_SECONDS = 5.0  # one node's whole change; longer, and it is reported as not reached


def front_membership(login: str, seat: str, queues: tuple[str, ...]) -> Membership:
    """An agent as every node's app_queue knows them in a cluster."""
    return Membership(login, front_interface(seat), queues, state_interface(seat))


def seats_by_login(session: Session) -> dict[str, str]:
    """Every agent's seat by login (an agent-first callback names the agent by login)."""
    rows = session.execute(
        select(User.username, Agent.endpoint).join(User, Agent.user_id == User.id)
    )
    return {login: seat for login, seat in rows}


@dataclass(frozen=True)
class NodesOutcome:
    """Which nodes took the change, and why the others did not."""

    done: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)

    @property
    def anywhere(self) -> bool:
        return bool(self.done)

    def summary(self) -> str:
        """One line for the console: the nodes not reached and why (empty when all were)."""
        return "; ".join(f"{node}: {why}" for node, why in sorted(self.failed.items()))


Work = Callable[[AMIClient], Awaitable[None]]


async def on_every_node(links: Mapping[str, AMIClient], work: Work) -> NodesOutcome:
    """Run work on every node at once; a node down or refusing is reported, never raised."""

    async def one(name: str, link: AMIClient) -> str | None:
        try:
            async with asyncio.timeout(NODE_SECONDS):
                await work(link)
        except TimeoutError:
            return "no answer in time"
        except (AgentControlError, AMIError, OSError) as exc:
            return str(exc) or type(exc).__name__
        return None

    names = list(links)
    errors = await asyncio.gather(*(one(name, links[name]) for name in names))
    return NodesOutcome(
        done=tuple(name for name, error in zip(names, errors, strict=True) if error is None),
        failed={name: error for name, error in zip(names, errors, strict=True) if error},
    )


async def ensure_state(ami: AMIClient, member: Membership) -> None:
    """A state never set reads UNKNOWN, which joinempty counts as nobody: make it NOT_INUSE.

    A state already set (RINGING, INUSE) belongs to the sync and is left alone.
    """
    if not member.state_interface:
        return
    variable = f"DEVICE_STATE({member.state_interface})"
    try:
        current = (await ami.action("Getvar", Variable=variable)).get("Value", "")
        if current in ("", "UNKNOWN", "INVALID"):
            await ami.action("Setvar", Variable=variable, Value=DeviceState.NOT_INUSE)
    except AMIActionError as exc:
        raise AgentControlError(
            f"{member.login}: {member.state_interface} not set: {exc}"
        ) from None


async def log_in_everywhere(
    links: Mapping[str, AMIClient], member: Membership, paused_for: str | None = None
) -> NodesOutcome:
    """Add the agent to their queues on every node (ready, or paused with a reason)."""

    async def work(ami: AMIClient) -> None:
        await ensure_state(ami, member)
        await log_in(ami, member, paused_for=paused_for)
        await pause(ami, member, paused_for)

    return await on_every_node(links, work)


async def pause_everywhere(
    links: Mapping[str, AMIClient], member: Membership, reason: str | None
) -> NodesOutcome:
    """Pause the agent with a reason on every node; None un-pauses."""
    return await on_every_node(links, lambda ami: pause(ami, member, reason))


async def log_out_everywhere(links: Mapping[str, AMIClient], member: Membership) -> NodesOutcome:
    """Remove the agent from their queues on every node."""
    return await on_every_node(links, lambda ami: log_out(ami, member))


async def open_links(clients: Mapping[str, AMIClient]) -> tuple[dict[str, AMIClient], NodesOutcome]:
    """Connect every node's client at once: (the connected ones, which connected and which not)."""

    async def connect(link: AMIClient) -> None:
        await link.connect()

    outcome = await on_every_node(clients, connect)
    return {name: clients[name] for name in outcome.done}, outcome


async def close_links(clients: Mapping[str, AMIClient]) -> None:
    await asyncio.gather(*(link.close() for link in clients.values()), return_exceptions=True)
