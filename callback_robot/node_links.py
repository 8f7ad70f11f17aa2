"""One AMI link per cluster node, each reconnecting on its own (issue 22).

A cluster robot dials through whichever node the claim chose, so it holds a
link to every node's manager (the node's address and AMI port, the credentials
of `asterisk.ami`). A node that is down when the robot starts is tried again
with a growing pause until it answers; after that the AMI client keeps its link
up by itself. Each link remembers since when it has been down: a node is lost
only when that has lasted beyond the grace (`callback_robot.nodes.is_lost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from core.config import ClusterNode, HotlineConfig
from links.ami import ami_client
from telephony.ami import AMIClient, AMIError

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def node_ami_config(config: HotlineConfig, node: ClusterNode) -> HotlineConfig:
    """The config with `asterisk.ami` pointing at this node's manager (same user, same secret)."""
    ami = config.asterisk.ami.model_copy(update={"host": node.address, "port": node.ami_port})
    asterisk = config.asterisk.model_copy(update={"ami": ami})
    return config.model_copy(update={"asterisk": asterisk})


class NodeLink:
    """One node's AMI client, connected as soon as the node answers; `start()` then `close()`."""

    def __init__(
        self,
        name: str,
        client: AMIClient,
        clock: Callable[[], datetime] = utcnow,
        retry_max_seconds: float = 10.0,
    ) -> None:
        self.name = name
        self.client = client
        self.clock = clock
        self.retry_max_seconds = retry_max_seconds
        self.down_since: datetime | None = clock()  # not connected yet
        self.task: asyncio.Task[None] | None = None
        client.on_disconnect.append(self.went_down)
        client.on_connect.append(self.came_back)

    @property
    def up(self) -> bool:
        return self.client.connected.is_set()

    async def start(self) -> None:
        """Connect in the background: an unreachable node must not hold up the others."""
        self.task = asyncio.create_task(self.connect_until_up(), name=f"ami-{self.name}")

    async def connect_until_up(self) -> None:
        """The first connection, tried until it succeeds (the client reconnects after that)."""
        delay = 0.5
        said = False
        while True:
            try:
                await self.client.connect()
            except (AMIError, OSError) as exc:
                (log.debug if said else log.warning)(
                    "node %s: AMI not reachable (%s); trying again", self.name, exc
                )
                said = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_seconds)
                continue
            self.down_since = None
            log.info("node %s: AMI connected", self.name)
            return

    async def went_down(self) -> None:
        self.down_since = self.clock()

    async def came_back(self) -> None:
        self.down_since = None
        log.info("node %s: AMI link back", self.name)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.client.close()


def node_links(
    config: HotlineConfig, clock: Callable[[], datetime] = utcnow
) -> dict[str, NodeLink]:
    """A link (not started) to every node of the config's cluster, by node name."""
    assert config.cluster is not None
    return {
        node.name: NodeLink(node.name, ami_client(node_ami_config(config, node)), clock)
        for node in config.cluster.nodes
    }
