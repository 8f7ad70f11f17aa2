"""A cluster's FastAGI worker (`hotline serve --worker NAME`): its config and its /healthz verdict.

The worker listens on its own address, takes AGI sessions only from the
nodes (their HAProxies connect from the nodes' addresses) and runs no robot.
HAProxy drops a worker on a 503, so only FastAGI and the worker's event loop
decide it: a store outage (the calls spool their writes) must not take every
worker out at once, while it still shows in the answer.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from hotline.app import worker_config
from hotline.health import Check, Probe, is_healthy, loop_check
from tests.support.config import write_config

CLUSTER = {
    "nodes": [
        {"name": "ast1", "address": "127.0.0.111", "rtp_start": 20000, "rtp_end": 20999},
        {"name": "ast2", "address": "127.0.0.112", "rtp_start": 21000, "rtp_end": 21999},
    ],
    "workers": [
        {"name": "agi1", "address": "127.0.0.121", "agi_port": 4573, "health_port": 8346},
        {"name": "agi2", "address": "127.0.0.122", "agi_port": 4574, "health_port": 8347},
    ],
}


def test_a_worker_listens_on_its_own_address_for_the_nodes_only(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, cluster=CLUSTER, robot={"enabled": True}))
    worker = worker_config(config, "agi2")
    assert (worker.agi.host, worker.agi.port) == ("127.0.0.122", 4574)
    assert (worker.health.host, worker.health.port) == ("127.0.0.122", 8347)
    assert worker.agi.allowed_peers == ["127.0.0.111", "127.0.0.112"]
    assert not worker.robot.enabled
    assert worker.database_url == config.database_url  # the same store as every process


def test_an_unknown_worker_names_the_known_ones(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, cluster=CLUSTER))
    with pytest.raises(ConfigError, match="no worker 'agi9' \\(agi1, agi2\\)"):
        worker_config(config, "agi9")
    one_box = load_config(write_config(tmp_path / "one"))
    with pytest.raises(ConfigError, match="no cluster: section"):
        worker_config(one_box, "agi1")


def probe(worker: bool) -> Probe:
    return Probe(config=None, store=None, server=None, worker=worker)  # type: ignore[arg-type]


def test_only_fastagi_and_the_loop_decide_a_workers_health() -> None:
    checks = {
        "fastagi": Check(True, "accepting calls"),
        "event loop": Check(True, "answered"),
        "database": Check(False, "not writable"),
        "spool": Check(False, "tickets: 3 waiting"),
    }
    assert is_healthy(probe(worker=True), checks)
    assert not is_healthy(probe(worker=False), checks)  # one box: every check counts
    stuck = {**checks, "event loop": Check(False, "did not answer")}
    assert not is_healthy(probe(worker=True), stuck)


async def test_a_stuck_call_loop_fails_the_loop_check() -> None:
    loop = asyncio.new_event_loop()
    release = threading.Event()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        assert (await loop_check(loop, timeout=5.0)).ok
        loop.call_soon_threadsafe(release.wait, 30)  # the loop's thread is blocked now
        slow = await loop_check(loop, timeout=0.3)
        assert not slow.ok and "did not answer" in slow.detail
    finally:
        release.set()
        # the loop runs again: the timed-out check's no-op is cancelled there before it stops
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
