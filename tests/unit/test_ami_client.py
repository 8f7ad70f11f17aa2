"""The AMI wrapper against peers that misbehave (unit level: a loopback fake manager).

The real-Asterisk behaviour (originate, restart, wrong secret) is in
test_asterisk_calls.py; here the peer sends what a real one never would.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.ami import AMIClient, AMIConnectError, _GuardedClient
from tests.support.config import free_port
from tests.support.fake_ami import FakeManager


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_packet_text_never_escapes_the_reader_guard(pack: str) -> None:
    client = _GuardedClient("127.0.0.1", 1, connect_timeout=1)
    seen: list[str] = []
    client.add_listener(on_event=lambda source, event, **_: seen.append(event.name))
    client.fire_recv_pack(pack)
    client.fire_recv_pack("Event: " + pack)
    client.fire_recv_pack("Response: " + pack)
    # after any garbage, the next well-formed event still arrives (the reader is intact)
    client.fire_recv_pack("\r\nEvent: FullyBooted\r\nStatus: Fully Booted")
    assert seen[-1] == "FullyBooted"


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=3000))
async def test_garbage_after_login_keeps_the_client_usable(noise: bytes) -> None:
    async with FakeManager(after_login=noise + b"\r\n\r\n") as fake:
        client = AMIClient(
            "127.0.0.1",
            fake.port,
            "hotline",
            "x",
            connect_timeout=2,
            action_timeout=3,
            ping_interval=60,
        )
        await client.connect()
        try:
            reply = await client.action("Ping")
            assert reply["Ping"] == "Pong"
        finally:
            await client.close()


async def test_event_split_across_tcp_reads_with_chinese_text_arrives_whole() -> None:
    event = "Event: UserEvent\r\nUserEvent: Caller\r\nName: 张三丰\r\n\r\n".encode()
    async with FakeManager(after_login=event) as fake:
        client = AMIClient("127.0.0.1", fake.port, "hotline", "x", ping_interval=60)
        queue = client.subscribe("UserEvent")
        await client.connect()
        try:
            got = await asyncio.wait_for(queue.get(), 5)
            assert got.get("Name") == "张三丰"
        finally:
            await client.close()


async def test_a_peer_that_is_not_asterisk_is_reported_clearly() -> None:
    async with FakeManager(banner=b"SSH-2.0-OpenSSH_9.2\r\n") as fake:
        client = AMIClient("127.0.0.1", fake.port, "hotline", "x", connect_timeout=1)
        with pytest.raises(AMIConnectError, match="answered but is not an Asterisk manager"):
            await client.connect()


async def test_nothing_listening_is_reported_with_host_and_port() -> None:
    port = free_port()
    client = AMIClient("127.0.0.1", port, "hotline", "x", connect_timeout=1)
    with pytest.raises(AMIConnectError, match=f"127.0.0.1:{port}"):
        await client.connect()


async def test_reader_survives_long_silence(caplog: pytest.LogCaptureFixture) -> None:
    """The library's 3 s default socket timeout would kill its reader; ours must not."""
    async with FakeManager() as fake:
        client = AMIClient("127.0.0.1", fake.port, "hotline", "x", ping_interval=60)
        await client.connect()
        try:
            with caplog.at_level(logging.WARNING):
                await asyncio.sleep(4)
            assert client.connected.is_set()
            assert (await client.action("Ping"))["Ping"] == "Pong"
            assert "AMI link" not in caplog.text
        finally:
            await client.close()
