"""Where an agent-first callback is dialled from: one box's Asterisk, or a cluster node.

In a cluster the agents' phones register at the SIP front, so any node can
ring them (`PJSIP/<seat>@sip-front`), and any node dials the citizen through
the front (`PJSIP/{number}@sip-front`). The dialer keeps one AMI link per node
(`CallbackLinks.of_cluster`, each connected as soon as its node answers, then
kept up by the AMI client), asks every linked node which agents are free, and
places each pass's callbacks through one node:

    the node with the fewest calls now (CoreStatus's CoreCurrentCalls), among
    those whose AMI answers and that the store marks neither draining
    (`hotline cluster drain`) nor lost (the robots' settling); ties go to the
    node listed first in `cluster.nodes`.

Both legs of a callback are on that node, so its recording, its CDR and the
dialplan's word of its end (UserEvent HotlineCallback) come from there; the
`calls` row names the node, and a node marked lost settles its callbacks in
flight as failed ("node lost"), never re-sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agents.store import interface_of
from core.config import HotlineConfig
from core.sip_front import FRONT_OUTBOUND, front_interface
from db.models import Agent
from links.ami import ONE_BOX, node_client
from telephony.ami import AMIClient, AMIError

log = logging.getLogger(__name__)


@dataclass
class CallbackLinks:
    """The dialer's AMI links by node name: one box's one (ONE_BOX), or every node's.

    A cluster's links are the dialer's own: `connect_missing` connects those not
    connected yet, `close` ends them. One box's link belongs to `hotline serve`.
    """

    links: dict[str, AMIClient]
    cluster: bool = False
    linked: set[str] = field(default_factory=set)  # connected once: the client keeps them up
    said: set[str] = field(default_factory=set)  # nodes whose first failure was logged

    @classmethod
    def one_box(cls, ami: AMIClient) -> CallbackLinks:
        return cls({ONE_BOX: ami}, cluster=False, linked={ONE_BOX})

    @classmethod
    def of_cluster(cls, config: HotlineConfig) -> CallbackLinks:
        assert config.cluster is not None
        nodes = config.cluster.nodes
        return cls({node.name: node_client(config, node) for node in nodes}, cluster=True)

    def up(self) -> dict[str, AMIClient]:
        """The links up now, in the config's order."""
        return {name: ami for name, ami in self.links.items() if ami.connected.is_set()}

    async def connect_missing(self) -> None:
        """Connect every cluster link never connected yet, all at once (a dead node costs
        one connect timeout per pass, not one per node)."""
        if not self.cluster:
            return
        missing = [name for name in self.links if name not in self.linked]
        await asyncio.gather(*(self._connect(name) for name in missing))

    async def _connect(self, name: str) -> None:
        try:
            await self.links[name].connect()
        except (AMIError, OSError) as exc:
            if name not in self.said:
                log.warning("callbacks: node %s: AMI not reachable (%s); trying again", name, exc)
                self.said.add(name)
            return
        self.linked.add(name)
        log.info("callbacks: node %s: AMI connected", name)

    async def close(self) -> None:
        if self.cluster:
            await asyncio.gather(
                *(ami.close() for ami in self.links.values()), return_exceptions=True
            )

    def agent_interface(self, agent: Agent) -> str:
        """What rings the agent: their seat (a cluster: through the front, where it
        registered); a scripted agent's Local channel either way."""
        interface = interface_of(agent)
        if self.cluster and interface.startswith("PJSIP/"):
            return front_interface(agent.endpoint)
        return interface

    def citizen_channel(self, config: HotlineConfig) -> str:
        """The dial string template for the citizen's leg, dialled by the agent's node."""
        return FRONT_OUTBOUND if self.cluster else config.asterisk.outbound_channel


async def current_calls(ami: AMIClient) -> int:
    """The node's calls now (CoreStatus: CoreCurrentCalls)."""
    reply = await ami.action("CoreStatus")
    return int(reply.get("CoreCurrentCalls") or 0)


async def least_busy(links: Mapping[str, AMIClient], excluded: Iterable[str]) -> str | None:
    """The usable node with the fewest calls now (ties: the first of links); None if none.

    Usable: its link is up, it answers CoreStatus, and it is not in excluded
    (draining or lost, as the store says).
    """
    skip = set(excluded)
    names = [name for name, ami in links.items() if name not in skip and ami.connected.is_set()]

    async def calls(name: str) -> int | None:
        with contextlib.suppress(AMIError, OSError, TimeoutError, ValueError):
            return await current_calls(links[name])
        return None

    counted = await asyncio.gather(*(calls(name) for name in names))
    usable = [(n, name) for name, n in zip(names, counted, strict=True) if n is not None]
    order = list(links)
    return min(usable, key=lambda item: (item[0], order.index(item[1])))[1] if usable else None
