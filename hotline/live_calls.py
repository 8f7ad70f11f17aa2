"""A cluster's live calls for the reconciler: every node's AMI asked, a dead node known as such.

On one box the reconciler asks its one Asterisk which channels are up. In a
cluster each node is asked through its own AMI. A node whose AMI does not
answer is *down* when the SIP front has stopped sending it calls too (Kamailio
marked it inactive after its missed OPTIONS probes): nothing runs on it any
more, so its calls in progress are over and get their tickets now, not after
the longest call. A node that only failed to answer AMI while the front still
has it active (a slow or restarting AMI) is *unknown*: its calls stay open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.config import ClusterNode, HotlineConfig
from ivr.reconcile import LiveCalls, live_uniqueids
from links.ami import ami_client
from telephony.ami import AMIError
from telephony.kamailio import FrontNode, KamailioRefused, KamailioUnreachable, dispatcher_list
from tools.cluster.layout import DEBIAN_ASTERISK_MODULES, cluster_of, default_layout
from tools.cluster.nodes import node_config
from tools.cluster.status import front_node_of

log = logging.getLogger(__name__)

AMI_CONNECT_SECONDS = 3.0  # a node's AMI that takes longer is not asked this pass


async def node_channels(config: HotlineConfig, node: ClusterNode) -> set[str] | None:
    """The Uniqueids of the node's channels; None when its AMI cannot be asked."""
    layout = default_layout(config, config.state_dir, DEBIAN_ASTERISK_MODULES)
    ami = ami_client(node_config(config, node, layout))
    try:
        await asyncio.wait_for(ami.connect(), AMI_CONNECT_SECONDS)
    except (AMIError, OSError, TimeoutError):
        with contextlib.suppress(Exception):
            await ami.close()
        return None
    try:
        return await live_uniqueids(ami)
    finally:
        await ami.close()


def front_states(config: HotlineConfig) -> list[FrontNode] | None:
    """Kamailio's view of the nodes; None when the front cannot be asked."""
    layout = default_layout(config, config.state_dir, DEBIAN_ASTERISK_MODULES)
    try:
        return dispatcher_list(layout.kamailio_ctl(), timeout=2.0)
    except (KamailioUnreachable, KamailioRefused) as exc:
        log.warning("reconciler: the SIP front's node states unknown (%s)", exc)
        return None


async def cluster_live_calls(config: HotlineConfig) -> LiveCalls:
    """Every node's channels, and which nodes are down or could not be asked."""
    nodes = cluster_of(config).nodes
    answers = await asyncio.gather(*(node_channels(config, node) for node in nodes))
    silent = [node for node, found in zip(nodes, answers, strict=True) if found is None]
    listed = await asyncio.to_thread(front_states, config) if silent else []
    down: set[str] = set()
    for node in silent:
        entry = front_node_of(listed, node) if listed is not None else None
        if entry is not None and not entry.active:
            down.add(node.name)
    unknown = {node.name for node in silent} - down
    if down:
        log.warning("reconciler: node(s) %s down: their calls are over", ", ".join(sorted(down)))
    if unknown:
        log.warning(
            "reconciler: node(s) %s not asked (AMI silent, still active at the front)",
            ", ".join(sorted(unknown)),
        )
    asked = [found for found in answers if found is not None]
    live = set().union(*asked) if asked else None
    return LiveCalls(live, frozenset(down), frozenset(unknown))
