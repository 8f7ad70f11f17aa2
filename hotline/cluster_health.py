"""What `/healthz` of `hotline serve` shows in a cluster: every part, as `hotline cluster status`.

On one box `/healthz` looks at one Asterisk and at the robot running in the
process. In a cluster neither is there: calls are spread over the nodes, and
the robots are processes of their own. So the console's `/healthz` shows the
cluster's parts instead, one check each, named as `cluster status` names its
rows:

- `kamailio NODE`: the front's view of the node (`kamcmd dispatcher.list` on
  Kamailio's control socket); a node disabled at the front while the store has
  it draining was taken out on purpose and passes;
- `node NODE`: the node's AMI, over a link this process keeps, and its calls
  now (CoreStatus);
- `haproxy NODE`: the node's HAProxy view of the FastAGI workers (its stats
  socket);
- `robot ID`, `jobs queue`, `drain NODE`: the robots' heartbeats, the job
  queue's depth, the nodes draining, from the store.

Kamailio's control socket and the HAProxy stats sockets are read on this host
(one box, or the front's host); elsewhere those checks say they cannot reach
them. Everything is looked at most every `health.cache_seconds`, however many
ask, off the event loop where it blocks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.config import HotlineConfig
from telephony.ami import AMIClient, AMIError
from tools.cluster.layout import cluster_of, default_layout
from tools.cluster.status import Row, StoreView, front_rows, haproxy_rows, store_view, view_rows

StoreReader = Callable[[Callable[..., StoreView]], Awaitable[StoreView]]
CORE_STATUS_TIMEOUT = 3.0


@dataclass
class ClusterLook:
    """The cluster's checks as last looked at, kept for `health.cache_seconds`."""

    at: float = -1e9
    rows: list[Row] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def node_row(name: str, ami: AMIClient) -> Row:
    """The node's AMI link, and its calls now."""
    if not ami.connected.is_set():
        return Row("node", name, False, "AMI down")
    try:
        reply = await asyncio.wait_for(ami.action("CoreStatus"), CORE_STATUS_TIMEOUT)
    except (AMIError, OSError, TimeoutError) as exc:
        return Row("node", name, False, f"AMI up, CoreStatus unanswered ({type(exc).__name__})")
    return Row("node", name, True, f"AMI up, {reply.get('CoreCurrentCalls', '?')} calls")


def outside_rows(config: HotlineConfig, draining: frozenset[str]) -> list[Row]:
    """Kamailio's and each HAProxy's view (blocking: their sockets, kamcmd)."""
    cluster = cluster_of(config)
    layout = default_layout(config, config.state_dir / "cluster" / "etc")
    return [*front_rows(cluster, layout, draining), *haproxy_rows(cluster, layout)]


async def ask_nodes(nodes: Mapping[str, AMIClient]) -> list[Row]:
    return list(await asyncio.gather(*(node_row(name, ami) for name, ami in nodes.items())))


async def node_rows(
    nodes: Mapping[str, AMIClient], loop: asyncio.AbstractEventLoop | None
) -> list[Row]:
    """Every node's row, asked on the loop its link lives on (the console's `/healthz`
    answers on a thread and loop of its own)."""
    if loop is None or loop is asyncio.get_running_loop():
        return await ask_nodes(nodes)
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(ask_nodes(nodes), loop))


async def look_at_cluster(
    config: HotlineConfig,
    nodes: Mapping[str, AMIClient],
    read_store: StoreReader,
    looked: ClusterLook,
    links_loop: asyncio.AbstractEventLoop | None = None,
) -> list[Row]:
    """Every part's row, asked at most every `health.cache_seconds`."""
    async with looked.lock:
        if time.monotonic() - looked.at < config.health.cache_seconds:
            return looked.rows
        view: StoreView | None = None
        stored: list[Row]
        try:
            view = await read_store(store_view)
            stored = view_rows(view, datetime.now(UTC))
        except Exception as exc:  # the database check says more; here: what cannot be shown
            stored = [Row("robot", "heartbeats", False, f"store unreadable ({type(exc).__name__})")]
        draining = view.draining if view is not None else frozenset()
        outside = asyncio.to_thread(outside_rows, config, draining)
        front_and_haproxy, nodes_seen = await asyncio.gather(outside, node_rows(nodes, links_loop))
        looked.rows = order_rows([*front_and_haproxy, *nodes_seen, *stored])
        looked.at = time.monotonic()
        return looked.rows


def order_rows(rows: list[Row]) -> list[Row]:
    """In the order a call meets the parts: the front, the nodes, HAProxy, then the store's."""
    rank = {"kamailio": 0, "node": 1, "haproxy": 2}
    return sorted(rows, key=lambda row: rank.get(row.part, 3))
