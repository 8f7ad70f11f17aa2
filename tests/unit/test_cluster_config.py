"""The cluster: section (issue 22): one box needs none, and a wrong cluster is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ClusterConfig, ConfigError, HotlineConfig, load_config
from tests.support.config import write_config

NODES = [
    {"name": "ast1", "address": "127.0.0.11", "rtp_start": 10000, "rtp_end": 14999},
    {"name": "ast2", "address": "127.0.0.12", "rtp_start": 15000, "rtp_end": 19999},
]


def refusal(tmp_path: Path, **cluster: object) -> str:
    path = write_config(tmp_path, cluster=cluster)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_one_box_has_no_cluster(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path)).cluster is None
    assert HotlineConfig().cluster is None


def test_an_empty_cluster_is_the_one_box_topology(tmp_path: Path) -> None:
    cluster = load_config(write_config(tmp_path, cluster={})).cluster
    assert cluster == ClusterConfig()
    assert cluster.front.address == "127.0.0.10"
    assert [(n.name, n.address) for n in cluster.nodes] == [
        ("ast1", "127.0.0.11"),
        ("ast2", "127.0.0.12"),
    ]
    assert [w.address for w in cluster.workers] == ["127.0.0.21", "127.0.0.22"]
    assert "@127.0.0.30:" in cluster.database_url
    front = cluster.front
    assert (front.algorithm, front.probing_interval_seconds, front.probing_threshold) == (10, 1, 2)
    assert front.fr_timer_ms <= 2000


def test_algorithm_4_is_allowed_and_others_are_not(tmp_path: Path) -> None:
    four = load_config(write_config(tmp_path / "four", cluster={"front": {"algorithm": 4}}))
    assert four.cluster is not None and four.cluster.front.algorithm == 4
    message = refusal(tmp_path / "nine", front={"algorithm": 9})
    assert "cluster.front.algorithm" in message and "(got 9)" in message


def test_fr_timer_above_two_seconds_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, front={"fr_timer_ms": 2500})
    assert "cluster.front.fr_timer_ms" in message and "(got 2500)" in message


def test_overlapping_rtp_ranges_are_refused_at_the_later_node(tmp_path: Path) -> None:
    nodes = [NODES[0], {**NODES[1], "rtp_start": 14000}]
    message = refusal(tmp_path, nodes=nodes)
    assert "cluster.nodes.1.rtp_start" in message
    assert "ast1" in message and "10000-14999" in message


def test_an_empty_rtp_range_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, nodes=[{**NODES[0], "rtp_end": 10000}])
    assert "cluster.nodes.0.rtp_end" in message


def test_a_name_twice_is_refused(tmp_path: Path) -> None:
    nodes = [NODES[0], {**NODES[1], "name": "ast1"}]
    assert "cluster.nodes.1.name" in refusal(tmp_path / "n", nodes=nodes)
    workers = [{"name": "ast1", "address": "127.0.0.21"}]
    assert "cluster.workers.0.name" in refusal(tmp_path / "w", nodes=NODES, workers=workers)


def test_two_hosts_on_one_address_are_refused(tmp_path: Path) -> None:
    nodes = [NODES[0], {**NODES[1], "address": "127.0.0.11"}]
    message = refusal(tmp_path / "nodes", nodes=nodes)
    assert "cluster.nodes.1.address" in message and "nodes.0.address" in message
    front = refusal(tmp_path / "front", front={"address": "127.0.0.21"})
    assert "cluster.workers.0.address" in front and "front.address" in front


def test_an_address_must_be_an_ip_address(tmp_path: Path) -> None:
    message = refusal(tmp_path, nodes=[{**NODES[0], "address": "node-one"}])
    assert "cluster.nodes.0.address" in message and "'node-one'" in message


def test_loopback_addresses_are_hosts_of_their_own(tmp_path: Path) -> None:
    nodes = [{**node, "address": f"127.0.5.{i}"} for i, node in enumerate(NODES, 1)]
    cluster = load_config(write_config(tmp_path, cluster={"nodes": nodes})).cluster
    assert cluster is not None and [n.address for n in cluster.nodes] == ["127.0.5.1", "127.0.5.2"]


def test_the_database_must_be_postgresql(tmp_path: Path) -> None:
    message = refusal(tmp_path, database_url="sqlite:///var/hotline.db")
    assert "cluster.database_url" in message and "PostgreSQL" in message


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    assert "cluster.front.fr_timer" in refusal(tmp_path / "a", front={"fr_timer": 1000})
    assert "cluster.nodess" in refusal(tmp_path / "b", nodess=[])


def test_a_cluster_needs_nodes_and_workers(tmp_path: Path) -> None:
    assert "cluster.nodes" in refusal(tmp_path / "n", nodes=[])
    assert "cluster.workers" in refusal(tmp_path / "w", workers=[])


def test_the_nodes_ami_permits_loopback_unless_told_and_refuses_a_non_network(
    tmp_path: Path,
) -> None:
    default = load_config(write_config(tmp_path / "default", cluster={})).cluster
    assert default is not None and [str(n) for n in default.ami_permit] == ["127.0.0.0/8"]
    wider = load_config(
        write_config(tmp_path / "lan", cluster={"ami_permit": ["127.0.0.0/8", "10.20.0.0/16"]})
    ).cluster
    assert wider is not None and [str(n) for n in wider.ami_permit][1] == "10.20.0.0/16"
    message = refusal(tmp_path / "bad", ami_permit=["10.20.0.1/16"])  # host bits set
    assert "cluster.ami_permit" in message
