"""tools.cluster.status: the parts of `hotline cluster status` read from what the programs say.

The HAProxy answers were captured from HAProxy 2.6 running a rendered node
balancer (tools/cluster/haproxy.py) with both workers up, then with one
killed; the Kamailio one is tests/data/kamailio's.
"""

from __future__ import annotations

from pathlib import Path

from core.config import ClusterNode
from telephony.kamailio import parse_dispatcher_list
from tools.cluster.runtime_nodes import channel_count
from tools.cluster.status import front_node_of, worker_states

DATA = Path(__file__).parents[1] / "data"


def test_both_workers_up_in_haproxys_view() -> None:
    stat = (DATA / "haproxy" / "show_stat_up.csv").read_text()
    assert worker_states(stat) == {"agi1": "UP", "agi2": "UP"}


def test_a_killed_worker_is_down_and_the_frontend_is_no_worker() -> None:
    stat = (DATA / "haproxy" / "show_stat_worker_down.csv").read_text()
    assert worker_states(stat) == {"agi1": "UP", "agi2": "DOWN"}


def test_channel_counts() -> None:
    said = "0 active channels\n3 active calls\n12 calls processed\n"
    assert channel_count(said) == 0
    assert channel_count("2 active channels\n1 active call\n") == 2
    assert channel_count("No such command 'core show channels count'") is None


def test_a_node_found_in_the_front_by_name_or_address() -> None:
    listed = parse_dispatcher_list((DATA / "kamailio" / "dispatcher_list_drained.txt").read_text())
    ast2 = ClusterNode(name="ast2", address="127.0.0.112", rtp_start=21000, rtp_end=21999)
    renamed = ast2.model_copy(update={"name": "media2"})
    elsewhere = ast2.model_copy(update={"name": "ast9", "address": "127.0.0.119"})
    assert front_node_of(listed, ast2).flags == "DX"  # type: ignore[union-attr]
    assert front_node_of(listed, renamed).duid == "ast2"  # type: ignore[union-attr]
    assert front_node_of(listed, elsewhere) is None
