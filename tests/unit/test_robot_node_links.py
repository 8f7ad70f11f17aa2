"""A cluster robot's link to each node: tried until the node answers, down-since remembered.

A loopback fake manager plays the node's AMI (issue 22): one node down at the
robot's start must not hold up the others, and the link says since when it is down.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from callback_robot.node_links import NodeLink, node_ami_config, node_links
from core.config import load_config
from telephony.ami import AMIClient
from tests.support.config import write_config
from tests.support.events import eventually
from tests.support.fake_ami import FakeManager

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


class DyingManager(FakeManager):
    """A fake manager that can die: its server and every link it holds closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await super()._serve(reader, writer)

    def die(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()


async def test_a_node_down_at_start_is_linked_once_it_answers_and_its_loss_is_timed() -> None:
    clock = {"now": T0}
    manager = DyingManager()
    client = AMIClient("127.0.0.1", manager.port, "robot", "secret", reconnect_max_delay=0.2)
    link = NodeLink("ast2", client, clock=lambda: clock["now"], retry_max_seconds=0.2)
    await link.start()
    try:
        assert not link.up and link.down_since == T0  # nothing listens yet: down since start
        async with manager:
            await eventually(lambda: link.up, timeout=30, what="the link, once the node answers")
            assert link.down_since is None
            clock["now"] = T0 + timedelta(seconds=5)
            manager.die()
        await eventually(lambda: not link.up, timeout=30, what="the link to drop")
        await eventually(lambda: link.down_since is not None, timeout=30, what="the drop noted")
        assert link.down_since == T0 + timedelta(seconds=5)
    finally:
        await link.close()


def test_each_nodes_link_uses_its_address_and_the_robots_credentials(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = load_config(
        write_config(tmp_path, asterisk={"ami": {"username": "robot-user"}}, cluster={})
    )
    assert config.cluster is not None
    second = node_ami_config(config, config.cluster.nodes[1]).asterisk.ami
    assert (second.host, second.port, second.username) == ("127.0.0.12", 5038, "robot-user")
    links = node_links(config)
    assert list(links) == ["ast1", "ast2"]
    assert (links["ast1"].client.host, links["ast1"].client.port) == ("127.0.0.11", 5038)
