"""Kamailio's view of the nodes, by node name: which ones the SIP front sends calls to.

The robot asks the front the way an operator does (`kamcmd dispatcher.list`,
`telephony.kamailio`) and keeps only what the node choice needs: active or not.
The control socket's path is the composition's business (`hotline robot run`
takes it from the cluster layout), so this module is handed it.
"""

from __future__ import annotations

from collections.abc import Callable

from core.config import ClusterConfig
from telephony.kamailio import FrontNode, KamailioRefused, KamailioUnreachable, dispatcher_list

# node name -> active in Kamailio; raises FrontUnreadable (synchronous: run it in a thread)
FrontReader = Callable[[], dict[str, bool]]


class FrontUnreadable(Exception):
    """Kamailio's node states could not be read now (not running, no answer, an RPC error)."""


def front_states(cluster: ClusterConfig, listed: list[FrontNode]) -> dict[str, bool]:
    """Each configured node: active in the front's dispatcher list or not.

    A destination is matched by its `duid` (the node's name, as rendered) or else
    by address and SIP port; a node the front does not list gets no calls from it,
    so it counts as not active.
    """
    by_name = {node.duid: node for node in listed if node.duid}
    by_address = {(node.address, node.port): node for node in listed}
    states: dict[str, bool] = {}
    for node in cluster.nodes:
        found = by_name.get(node.name) or by_address.get((node.address, node.sip_port))
        states[node.name] = found is not None and found.active
    return states


def front_reader(cluster: ClusterConfig, ctl: str, timeout: float = 2.0) -> FrontReader:
    """A reader of the running front's node states over its control socket `ctl`."""

    def read() -> dict[str, bool]:
        try:
            return front_states(cluster, dispatcher_list(ctl, timeout=timeout))
        except (KamailioUnreachable, KamailioRefused) as exc:
            raise FrontUnreadable(str(exc)) from None

    return read
