"""One cluster robot's view of its nodes: its AMI links and Kamailio's states (issue 22).

Read every second or so. Kamailio reports a node's state, not since when it has
had it, so the watch remembers when it first saw each node inactive. A failed
read forgets that: after a gap in what we saw, a node must be seen inactive
for a whole grace period again before it can be called lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from callback_robot.front import FrontReader, FrontUnreadable
from callback_robot.node_links import NodeLink
from callback_robot.nodes import NodeHealth, NodeView

log = logging.getLogger(__name__)


class NodeWatch:
    """The nodes' health as this robot sees it; `read()` refreshes Kamailio's part."""

    def __init__(
        self,
        links: Mapping[str, NodeLink],
        front: FrontReader,
        per_node: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.links = links
        self.front = front
        self.per_node = per_node
        self.clock = clock
        self.front_active: dict[str, bool] | None = None  # None: not read, or unreadable
        self.inactive_since: dict[str, datetime] = {}
        self.front_error: str | None = None

    async def read(self) -> None:
        """Ask Kamailio (in a thread: kamcmd is a process) and note what changed."""
        now = self.clock()
        try:
            states: dict[str, bool] | None = await asyncio.to_thread(self.front)
        except FrontUnreadable as exc:
            if self.front_error is None:
                log.warning("Kamailio's node states unreadable (%s): no node is chosen", exc)
            self.front_error = str(exc)
            states = None
        else:
            if self.front_error is not None:
                log.info("Kamailio's node states readable again")
            self.front_error = None
        self.observe(states, now)

    def observe(self, states: Mapping[str, bool] | None, now: datetime) -> None:
        """Kamailio's states at `now` (None: unreadable, which forgets the inactive times)."""
        if states is None:
            self.front_active = None
            self.inactive_since.clear()
            return
        self.front_active = {name: bool(states.get(name, False)) for name in self.links}
        for name, active in self.front_active.items():
            if active:
                self.inactive_since.pop(name, None)
            else:
                self.inactive_since.setdefault(name, now)

    def view(self) -> NodeView:
        """Every node's health now, in the config's order."""
        return NodeView(
            nodes=tuple(
                NodeHealth(
                    name=name,
                    ami_up=link.up,
                    front_active=None if self.front_active is None else self.front_active[name],
                    ami_down_since=None if link.up else link.down_since,
                    front_inactive_since=self.inactive_since.get(name),
                )
                for name, link in self.links.items()
            ),
            per_node=self.per_node,
        )
