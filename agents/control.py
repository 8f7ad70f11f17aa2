"""Agents log in, pause and log out: app_queue's dynamic members, over AMI.

An agent is a member of each of their queues under their login (MemberName,
which queue_log names), ringing their seat's interface, with the same
interface as `StateInterface`, so that an agent already on any call is never
rung (ringinuse = no). A pause carries its reason into queue_log. Nothing from
a web form reaches AMI but an agent's own seat, their queues (from config) and
a pause reason from config.
"""

from __future__ import annotations

from dataclasses import dataclass

from telephony.ami import AMIActionError, AMIClient


class AgentControlError(Exception):
    """Asterisk refused a membership change (the message says which and why)."""


@dataclass(frozen=True)
class Membership:
    """Who an agent is to app_queue: their login, the interface rung, their queues.

    `state_interface`: the device app_queue watches for them; empty, the
    interface itself (one box). A cluster's agents watch a custom device state
    every node shares (agents.device_state).
    """

    login: str
    interface: str
    queues: tuple[str, ...]
    state_interface: str = ""


async def log_in(ami: AMIClient, member: Membership, paused_for: str | None = None) -> None:
    """Add the agent to each of their queues (already a member: left as it is)."""
    for queue in member.queues:
        try:
            await ami.action(
                "QueueAdd",
                Queue=queue,
                Interface=member.interface,
                MemberName=member.login,
                StateInterface=member.state_interface or member.interface,
                Paused="true" if paused_for else "false",
                Reason=paused_for or "",
            )
        except AMIActionError as exc:
            if "Already there" not in str(exc):
                raise AgentControlError(f"{member.login} not added to {queue}: {exc}") from None


async def log_out(ami: AMIClient, member: Membership) -> None:
    """Remove the agent from each of their queues (not a member: nothing to do)."""
    for queue in member.queues:
        try:
            await ami.action("QueueRemove", Queue=queue, Interface=member.interface)
        except AMIActionError as exc:
            if "Not there" not in str(exc) and "Unable to remove" not in str(exc):
                raise AgentControlError(f"{member.login} not removed from {queue}: {exc}") from None


async def pause(ami: AMIClient, member: Membership, reason: str | None) -> None:
    """Pause the agent in all their queues with a reason; None un-pauses."""
    try:
        await ami.action(
            "QueuePause",
            Interface=member.interface,
            Paused="true" if reason else "false",
            Reason=reason or "",
        )
    except AMIActionError as exc:
        raise AgentControlError(f"{member.login}: pause not changed: {exc}") from None
