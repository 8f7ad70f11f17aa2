"""`/healthz` of `hotline serve` in a cluster (issue 22, item 9): the cluster's parts, not one box's.

In a cluster the robots are processes of their own and the calls are spread
over the nodes, so the console's `/healthz` must not fail on "the robot is not
running here" nor look at one Asterisk: it shows what `hotline cluster status`
shows. Here nothing of the cluster runs (its addresses, .200-.211, are no
test's): the front and the HAProxy stats sockets cannot be reached and the
nodes' AMI links are down, each said in its own check; the store's part (a
robot's heartbeat, the queue, a node draining) is read from PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient

from core.config import HotlineConfig, load_config
from db.cluster import mark_draining
from db.models import RobotHeartbeat
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.app import create_hotline
from hotline.health import Probe, operations_app
from links.ami import node_client
from tests.support.config import write_config

CLUSTER = {
    "front": {"address": "127.0.0.200"},
    "nodes": [
        {"name": "ast1", "address": "127.0.0.201", "rtp_start": 26000, "rtp_end": 26999},
        {"name": "ast2", "address": "127.0.0.202", "rtp_start": 27000, "rtp_end": 27999},
    ],
    "workers": [{"name": "agi1", "address": "127.0.0.205"}],
}


@pytest.fixture
def database_kind() -> str:
    return "postgresql"  # a cluster's store, and the job queue, are PostgreSQL's


@pytest.fixture
def config(migrated_url: str, tmp_path: Path) -> HotlineConfig:
    cluster = {**CLUSTER, "database_url": migrated_url}
    return load_config(write_config(tmp_path, database={"url": migrated_url}, cluster=cluster))


async def test_the_consoles_healthz_shows_the_clusters_parts_not_a_robot_of_its_own(
    config: HotlineConfig,
) -> None:
    assert config.robot.enabled  # the robots run, as processes of their own
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        now = datetime.now(UTC)
        session.add(RobotHeartbeat(robot_id="robot1", started_at=now, beat_at=now))
        mark_draining(session, "ast2", now)
    assert config.cluster is not None
    nodes = {node.name: node_client(config, node) for node in config.cluster.nodes}
    hotline = create_hotline(config)  # its FastAGI server not started: that check fails too
    probe = Probe(config, hotline.store, hotline.server, nodes=nodes)
    try:
        transport = ASGITransport(app=operations_app(probe))
        async with AsyncClient(transport=transport, base_url="http://ops") as client:
            answer = await client.get("/healthz")
    finally:
        await hotline.store.close()
        engine.dispose()
    checks = answer.json()["checks"]
    # no check of one Asterisk, nor of a robot in this process
    assert "asterisk" not in checks and "robot" not in checks, checks
    # the store's part: the robot's heartbeat, the queue, the node drained on purpose
    assert checks["robot robot1"]["ok"] is True, checks
    assert checks["jobs queue"] == {"ok": True, "detail": "empty"}
    assert checks["drain ast2"]["ok"] is True
    # the parts that do not answer, each in its own words; so the cluster is not healthy
    assert checks["node ast1"] == {"ok": False, "detail": "AMI down"}
    assert checks["node ast2"] == {"ok": False, "detail": "AMI down"}
    assert checks["kamailio front"]["ok"] is False
    assert (
        "kamcmd" in checks["kamailio front"]["detail"]
        or "control" in checks["kamailio front"]["detail"]
    ), checks["kamailio front"]
    for node in ("ast1", "ast2"):
        assert checks[f"haproxy {node}"]["ok"] is False
        assert "stats socket" in checks[f"haproxy {node}"]["detail"]
    assert answer.status_code == 503 and answer.json()["status"] == "unhealthy"
