"""`hotline cluster drain NODE` and `undrain NODE`: a node out of rotation and back.

Draining takes the node out of both ways a call reaches it: Kamailio sets it
disabled (its probes do not bring it back, unlike `inactive`), and the store
marks it draining, so no robot picks it for a survey call. The calls it has
go on to their end; `drain` waits until the node has no channel left.
`undrain` sets it active in Kamailio and ends the draining in the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from core.config import ClusterConfig, ClusterNode, ConfigError
from db.cluster import end_draining, mark_draining
from db.session import make_engine, make_session_factory, unit_of_work
from telephony.kamailio import set_node_state
from tools.cluster.kamailio import node_uri
from tools.cluster.runtime_nodes import NodeAsterisk, channel_count

Progress = Callable[[str], None]


class DrainTimeout(Exception):
    """The node still had calls when the wait ended."""


def node_named(cluster: ClusterConfig, name: str) -> ClusterNode:
    node = next((n for n in cluster.nodes if n.name == name), None)
    if node is None:
        known = ", ".join(n.name for n in cluster.nodes)
        raise ConfigError(f"cluster.nodes: no node {name!r} (nodes: {known})")
    return node


def mark_in_store(database_url: str, name: str, draining: bool) -> None:
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            now = datetime.now(UTC)
            if draining:
                mark_draining(session, name, now)
            else:
                end_draining(session, name, now)
    finally:
        engine.dispose()


def drain(
    cluster: ClusterConfig,
    ctl: str,
    node: NodeAsterisk,
    timeout: float,
    progress: Progress = lambda _line: None,
    poll: float = 1.0,
) -> None:
    """Take the node out of the front and the robots, then wait for its last call to end."""
    name = node.node.name
    set_node_state(ctl, node_uri(node.node), "disabled")
    progress(f"{name}: disabled in Kamailio (no new calls from the front)")
    mark_in_store(cluster.database_url, name, draining=True)
    progress(f"{name}: draining in the store (no new robot calls)")
    deadline = time.monotonic() + timeout
    last: int | None = None
    while True:
        count = channel_count(node.rx("core show channels count", timeout=5))
        if count == 0:
            progress(f"{name}: drained, no channels left")
            return
        if count != last:
            progress(f"{name}: {count} channels still up")
            last = count
        if time.monotonic() >= deadline:
            raise DrainTimeout(
                f"{name} still has {count} channels after {timeout:.0f} s; it stays out of "
                "rotation (`hotline cluster undrain` puts it back)"
            )
        time.sleep(poll)


def undrain(
    cluster: ClusterConfig, ctl: str, node: ClusterNode, progress: Progress = lambda _line: None
) -> None:
    """Put the node back: active in Kamailio, no longer draining in the store."""
    set_node_state(ctl, node_uri(node), "active")
    progress(f"{node.name}: active in Kamailio")
    mark_in_store(cluster.database_url, node.name, draining=False)
    progress(f"{node.name}: takes robot calls again")
