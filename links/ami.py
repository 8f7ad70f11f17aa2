"""The one AMI client factory: `asterisk.ami` and the secret, mapped to a client once.

`telephony` may not read the config and the store takes plain values, so the
mapping lives on a floor of its own that may import both `core` and
`telephony`; the robot, the console's live calls and `hotline serve` all build
their links here, so a new AMI setting is passed on in one place.

A cluster (`cluster:`) has one manager per node: the same user and secret at the
node's address and AMI port. The console follows every node (`follow_links`),
and acts on a call through the node that carries it (`ami_for_call`): the node's
name is the first part of the call's Uniqueid (`ast2-1700000000.12`). Without
`cluster:` every call is the one Asterisk's, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable

from core.config import ClusterNode, HotlineConfig
from core.uniqueid import node_of
from telephony.ami import AMIClient, AMIError, AMIEvent

log = logging.getLogger(__name__)
ONE_BOX = ""  # the name of one box's only link (a cluster's links are named by node)


class NoSuchNode(AMIError):
    """A call's Uniqueid names no node of `cluster.nodes` (or names none at all)."""


def ami_client(config: HotlineConfig) -> AMIClient:
    """An AMI client for this config (not connected yet)."""
    ami = config.asterisk.ami
    return _client(config, ami.host, ami.port)


def node_client(config: HotlineConfig, node: ClusterNode) -> AMIClient:
    """An AMI client for one cluster node's manager (the `asterisk.ami` user), not connected."""
    return _client(config, node.address, node.ami_port)


def _client(config: HotlineConfig, host: str, port: int) -> AMIClient:
    ami = config.asterisk.ami
    return AMIClient(
        host,
        port,
        ami.username,
        config.ami_secret(),
        connect_timeout=ami.connect_timeout,
        reconnect_max_delay=ami.reconnect_max_delay,
        secret_hint=ami.secret_env,
    )


def link_names(config: HotlineConfig) -> tuple[str, ...]:
    """The links the console keeps: every node's name in a cluster, else ONE_BOX."""
    if config.cluster is None:
        return (ONE_BOX,)
    return tuple(node.name for node in config.cluster.nodes)


def link_client(config: HotlineConfig, name: str) -> AMIClient:
    """The client of one link of `link_names` (NoSuchNode for a name that is not one)."""
    if config.cluster is None:
        if name != ONE_BOX:
            raise NoSuchNode(f"{name!r}: not a cluster (no cluster: section)")
        return ami_client(config)
    return node_client(config, cluster_node(config, name))


def cluster_node(config: HotlineConfig, name: str) -> ClusterNode:
    """The node of `cluster.nodes` by name (NoSuchNode if none, or no cluster)."""
    nodes = config.cluster.nodes if config.cluster is not None else []
    found = next((node for node in nodes if node.name == name), None)
    if found is None:
        known = ", ".join(node.name for node in nodes) or "no cluster: section"
        raise NoSuchNode(f"{name!r} is not a node of cluster.nodes ({known})")
    return found


def node_of_call(config: HotlineConfig, *uniqueids: str | None) -> str:
    """The link that carries a call: the node named by the first of uniqueids that names one.

    One box: ONE_BOX whatever the ids say (the live suite's Asterisk is `ast1`
    too). A cluster call whose ids name no node of the config: NoSuchNode.
    """
    if config.cluster is None:
        return ONE_BOX
    named = next((node for node in map(node_of, uniqueids) if node), None)
    if named is None:
        shown = ", ".join(repr((u or "")[:40]) for u in uniqueids)
        raise NoSuchNode(f"no node named in the call's id ({shown})")
    return cluster_node(config, named).name


def ami_for_call(config: HotlineConfig, *uniqueids: str | None) -> AMIClient:
    """An AMI client (not connected) for the node that carries the call.

    Pass the call's Uniqueid, and other ids of it to fall back on (a callback's
    Linkedid: its own id, callback-TASK-N, names no node). One box: the one
    Asterisk. NoSuchNode, an AMIError, when a cluster call names no node of
    the config: the caller answers it as an unreachable Asterisk.
    """
    return link_client(config, node_of_call(config, *uniqueids))


class LinkStates:
    """Which of the console's AMI links are up now (thread-safe: pages read it)."""

    def __init__(self, names: Iterable[str] = (ONE_BOX,)) -> None:
        self._up = dict.fromkeys(names, False)
        self._lock = threading.Lock()

    def set(self, name: str, up: bool) -> bool:
        """Record one link's state; whether it changed."""
        with self._lock:
            changed = self._up.get(name) != up
            self._up[name] = up
            return changed

    @property
    def connected(self) -> bool:
        """Every link is up (a cluster with one node down is not connected)."""
        with self._lock:
            return bool(self._up) and all(self._up.values())

    def down(self) -> list[str]:
        """The links that are down, by node name (one box: [""] when its link is down)."""
        with self._lock:
            return [name for name, up in self._up.items() if not up]

    def note(self) -> str:
        """One line for a page: which nodes are not connected ("" when all are, or one box)."""
        down = [name for name in self.down() if name != ONE_BOX]
        return f"节点未连接 nodes not connected: {', '.join(down)}" if down else ""


Feed = Callable[[str, AMIEvent], None]  # (link name, event)
Linked = Callable[[str, bool], None]  # (link name, up)
OnConnect = Callable[[str, AMIClient], Awaitable[None]]  # after subscribing, before events


async def follow_events(
    config: HotlineConfig,
    stop: asyncio.Event,
    names: Iterable[str],
    feed: Callable[[AMIEvent], None],
    linked: Callable[[bool], None],
    what: str,
) -> None:
    """Feed the named AMI events to feed until stop, on a link of their own (one box's AMI).

    An unreachable Asterisk is retried every few seconds; linked(up) says
    whether the link is up, on every turn (the console's live pages show it).
    """
    await follow_link(
        lambda: ami_client(config),
        ONE_BOX,
        stop,
        tuple(names),
        lambda _name, event: feed(event),
        lambda _name, up: linked(up),
        what,
    )


async def follow_links(
    config: HotlineConfig,
    stop: asyncio.Event,
    names: Iterable[str],
    feed: Feed,
    linked: Linked,
    what: str,
    on_connect: OnConnect | None = None,
) -> None:
    """Every node's events (one box: its one Asterisk's) to feed until stop, a link per node.

    Each link is retried on its own: a node that is down never holds up the
    others' events. feed and linked are told which link (`link_names`) spoke.
    """
    events = tuple(names)
    await asyncio.gather(
        *(
            follow_link(
                lambda name=name: link_client(config, name),  # type: ignore[misc]
                name,
                stop,
                events,
                feed,
                linked,
                f"{what} ({name})" if name else what,
                on_connect,
            )
            for name in link_names(config)
        )
    )


async def follow_link(
    make: Callable[[], AMIClient],
    name: str,
    stop: asyncio.Event,
    names: tuple[str, ...],
    feed: Feed,
    linked: Linked,
    what: str,
    on_connect: OnConnect | None = None,
) -> None:
    """One link's events to feed until stop; reconnected every few seconds while unreachable."""
    while not stop.is_set():
        client = make()
        try:
            await client.connect()
        except (AMIError, OSError) as exc:
            linked(name, False)
            log.info("%s: AMI not reachable (%s); retrying", what, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 3)
            continue
        queue = client.subscribe(*names)
        was_up = False
        try:
            while not stop.is_set():
                up = client.connected.is_set()
                linked(name, up)
                if up and not was_up and on_connect is not None:  # first link, or relinked
                    with contextlib.suppress(AMIError, TimeoutError):
                        await on_connect(name, client)
                was_up = up
                try:
                    feed(name, await asyncio.wait_for(queue.get(), 1))
                except TimeoutError:
                    continue
        finally:
            linked(name, False)
            client.unsubscribe(queue)
            await client.close()
