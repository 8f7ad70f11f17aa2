"""The console of a cluster follows every node's AMI and transfers a call on its own node.

Two loopback managers stand for the nodes' AMI (127.0.0.231 and .232): the
console app, started as `hotline serve` starts it (`follow_ami=True`), links
to both. An agent's call on ast2 pops on the agent's desk; the desk is
connected only while both links are up; the agent's transfer of that call
goes to ast2's manager alone; and when ast2 dies its call ends on the desk and
the desk names ast2 as not connected.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.config import ClusterConfig, ClusterNode, ClusterWorker, HotlineConfig
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.session import unit_of_work
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, csrf_of, login
from tests.support.console_site import console_site
from tests.support.fake_ami import BANNER

ADDRESSES = ("127.0.0.231", "127.0.0.232")
CALL = "ast2-1764900000.7"
CALLER_CHANNEL = "PJSIP/sip-front-00000007"
AGENT_CHANNEL = "PJSIP/sip-front-00000008"


class NodeManager:
    """A node's manager: answers every action with Success, sends the events a test writes."""

    def __init__(self, address: str, loop: asyncio.AbstractEventLoop) -> None:
        self.address, self.port, self.loop = address, free_port(), loop
        self.received: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    def run(self, work: Callable[[], object]) -> None:
        async def call() -> None:
            result = work()
            if asyncio.iscoroutine(result):
                await result

        asyncio.run_coroutine_threadsafe(call(), self.loop).result(5)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.address, self.port)

    async def kill(self) -> None:
        """The node is gone: no listener, every link cut."""
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()

    def emit(self, name: str, **fields: str) -> None:
        block = f"Event: {name}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())

        def send() -> None:
            for writer in self.writers:
                writer.write(f"{block}\r\n".encode())

        self.loop.call_soon_threadsafe(send)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
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
        finally:
            self.writers.remove(writer)

    def sent(self, action: str) -> list[str]:
        return [block for block in self.received if f"Action: {action}\r\n" in block]


@pytest.fixture
def managers() -> Iterator[tuple[NodeManager, NodeManager]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    pair = (NodeManager(ADDRESSES[0], loop), NodeManager(ADDRESSES[1], loop))
    for manager in pair:
        manager.run(manager.start)
    try:
        yield pair
    finally:
        for manager in pair:
            if manager.server is not None:
                manager.run(manager.kill)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def clustered(config: HotlineConfig, managers: tuple[NodeManager, NodeManager]) -> HotlineConfig:
    nodes = [
        ClusterNode(
            name=f"ast{i + 1}",
            address=m.address,
            ami_port=m.port,
            rtp_start=43000 + 1000 * i,
            rtp_end=43999 + 1000 * i,
        )
        for i, m in enumerate(managers)
    ]
    cluster = ClusterConfig(
        front={"address": "127.0.0.230"},  # type: ignore[arg-type]
        nodes=nodes,
        workers=[ClusterWorker(name="agi1", address="127.0.0.233")],
    )
    ami = config.asterisk.ami.model_copy(update={"connect_timeout": 1.0})
    return config.model_copy(
        update={"cluster": cluster, "asterisk": config.asterisk.model_copy(update={"ami": ami})}
    )


def until(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def test_the_desk_follows_every_node_and_a_transfer_goes_to_the_calls_node(
    tmp_path: Path, managers: tuple[NodeManager, NodeManager]
) -> None:
    one, two = managers
    config, _, _, sessions = console_site(tmp_path)
    config = clustered(config, managers)
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD))
    app = create_app(config, follow_ami=True)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        desk = app.state.desk
        until(lambda: desk.connected, "both nodes' links up")
        two.emit(
            "AgentCalled",
            MemberName="a1",
            Uniqueid=CALL,
            Linkedid=CALL,
            Channel=CALLER_CHANNEL,
            CallerIDNum="13800138000",
            Queue="hotline-agents",
            Interface="PJSIP/agent-w001@sip-front",
        )
        two.emit(
            "AgentConnect",
            MemberName="a1",
            Uniqueid=CALL,
            Channel=CALLER_CHANNEL,
            DestChannel=AGENT_CHANNEL,
        )
        until(
            lambda: (ring := desk.ring("a1")) is not None and ring.state == "connected",
            "ast2's call on a1's desk",
        )

        assert login(client, "a1").status_code == 303
        csrf = csrf_of(client, "/agent")
        moved = client.post(
            "/agent/transfer", data={"csrf": csrf, "uniqueid": CALL, "queue": "hotline-agents"}
        )
        assert moved.status_code == 200, moved.text
        assert [CALLER_CHANNEL in b for b in two.sent("Redirect")] == [True]
        assert one.sent("Redirect") == [] and one.sent("Setvar") == []

        two.run(two.kill)  # ast2 dies: its AMI link drops and stays down
        until(lambda: desk.down() == ["ast2"], "ast2 named as not connected")
        assert not desk.connected
        ring = desk.ring("a1")
        assert ring is not None and ring.state == "ended"
        assert "ast2" in desk.links.note()
