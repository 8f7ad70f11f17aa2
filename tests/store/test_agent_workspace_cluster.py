"""The agent's state buttons in a cluster: every node's manager is asked, a node down is named.

Fake managers stand for the nodes (only that the right actions go out to each,
not that app_queue obeys: tests/live/test_agent_shared_state.py shows that).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.config import ClusterConfig, ClusterNode, ClusterWorker, HotlineConfig
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.models import Agent
from db.session import unit_of_work
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, csrf_of, login
from tests.support.console_site import audit_rows, console_site
from tests.support.fake_ami import BANNER

NODE_ADDRESSES = ("127.0.0.221", "127.0.0.222")


class NodeManager:
    """A node's manager on its own loopback address: answers every action with Success."""

    def __init__(self, address: str) -> None:
        self.address, self.port = address, free_port()
        self.received: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.address, self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        await writer.drain()
        try:
            while True:
                block = (await reader.readuntil(b"\r\n\r\n")).decode()
                self.received.append(block)
                action_id = next(
                    (x.split(": ", 1)[1] for x in block.split("\r\n") if x.startswith("ActionID")),
                    "",
                )
                writer.write(f"Response: Success\r\nActionID: {action_id}\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def sent(self) -> str:
        return "\n".join(self.received)


@pytest.fixture
def node_managers() -> Iterator[tuple[NodeManager, NodeManager]]:
    """Two nodes' managers on a loop of their own (the console's TestClient runs its own)."""
    loop = asyncio.new_event_loop()
    managers = (NodeManager(NODE_ADDRESSES[0]), NodeManager(NODE_ADDRESSES[1]))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    for manager in managers:
        asyncio.run_coroutine_threadsafe(manager.start(), loop).result(5)
    try:
        yield managers
    finally:
        for manager in managers:
            if manager.server is not None:
                asyncio.run_coroutine_threadsafe(manager.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def clustered(config: HotlineConfig, ports: tuple[int, int]) -> HotlineConfig:
    nodes = [
        ClusterNode(
            name=f"ast{i + 1}",
            address=address,
            ami_port=port,
            rtp_start=42000 + 1000 * i,
            rtp_end=42999 + 1000 * i,
        )
        for i, (address, port) in enumerate(zip(NODE_ADDRESSES, ports, strict=True))
    ]
    cluster = ClusterConfig(
        nodes=nodes, workers=[ClusterWorker(name="agi1", address="127.0.0.223")]
    )
    ami = config.asterisk.ami.model_copy(update={"connect_timeout": 2.0})
    asterisk = config.asterisk.model_copy(update={"ami": ami})
    return config.model_copy(update={"cluster": cluster, "asterisk": asterisk})


def test_pause_reaches_every_node_with_the_front_interface_and_the_shared_state(
    tmp_path: Path, node_managers: tuple[NodeManager, NodeManager]
) -> None:
    one, two = node_managers
    config, _, _, sessions = console_site(tmp_path)
    config = clustered(config, (one.port, two.port))
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD))
    with unit_of_work(sessions) as session:
        seat = session.query(Agent).one().endpoint
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        assert login(client, "a1").status_code == 303
        csrf = csrf_of(client, "/agent")
        done = client.post(
            "/agent/state", data={"csrf": csrf, "action": "pause", "reason": "training"}
        )
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "paused" and "nodes_missed" not in done.json()
        for node in (one, two):
            sent = node.sent()
            assert "Action: QueueAdd" in sent and "MemberName: a1" in sent
            assert f"Interface: PJSIP/{seat}@sip-front" in sent
            assert f"StateInterface: Custom:agent-{seat}" in sent
            assert f"Variable: DEVICE_STATE(Custom:agent-{seat})" in sent
            assert "Action: QueuePause" in sent and "Reason: training" in sent
        gone = client.post("/agent/state", data={"csrf": csrf, "action": "logout"})
        assert gone.json()["state"] == "logged_out"
        assert all("Action: QueueRemove" in node.sent() for node in (one, two))


def test_a_node_down_is_named_and_the_others_still_change_then_none_is_a_503(
    tmp_path: Path, node_managers: tuple[NodeManager, NodeManager]
) -> None:
    one, _ = node_managers
    config, _, _, sessions = console_site(tmp_path)
    config = clustered(config, (one.port, free_port()))  # ast2: nothing listens
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD))
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        assert login(client, "a1").status_code == 303
        csrf = csrf_of(client, "/agent")
        done = client.post("/agent/state", data={"csrf": csrf, "action": "ready"})
        assert done.status_code == 200, done.text
        assert "ast2" in done.json()["nodes_missed"] and "ast1" not in done.json()["nodes_missed"]
        assert "Action: QueueAdd" in one.sent()
        assert any("not reached: ast2" in row.detail for row in audit_rows(sessions, "agent_ready"))
    nowhere = clustered(config, (free_port(), free_port()))
    with TestClient(create_app(nowhere), base_url="http://127.0.0.1") as client:
        assert login(client, "a1").status_code == 303
        csrf = csrf_of(client, "/agent")
        refused = client.post("/agent/state", data={"csrf": csrf, "action": "ready"})
        assert refused.status_code == 503, refused.text
        assert "ast1" in refused.json()["detail"] and "ast2" in refused.json()["detail"]


def test_a_browser_seat_registers_at_the_fronts_websocket_and_the_page_may_reach_it(
    tmp_path: Path,
) -> None:
    config, _, _, sessions = console_site(tmp_path)
    config = clustered(config, (free_port(), free_port()))
    assert config.cluster is not None
    front = config.cluster.front
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD))
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        assert login(client, "a1").status_code == 303
        seat = client.get("/agent/phone").json()
        page = client.get("/agent")
    assert seat["ok"] and seat["endpoint"].startswith("agent-w"), seat
    # not the one-box Asterisk's wss on the console's host: the front, where any node finds it
    assert seat["wsUrl"] == f"ws://{front.address}:{front.ws_port}/ws", seat
    assert seat["uri"] == f"sip:{seat['endpoint']}@{front.address}", seat
    policy = page.headers["content-security-policy"]
    assert f"connect-src 'self' ws://{front.address}:{front.ws_port};" in policy, policy
