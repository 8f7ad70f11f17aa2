"""The AMI link's supervisor never gives up silently (a loopback fake manager drops the link).

A login that times out during a reconnect, or a reconnect hook that raises,
used to end the supervisor task for good: the robot then logged "dispatch
skipped" forever. Each is reproduced here against a peer scripted per
connection.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from telephony.ami import AMIClient
from tests.support.config import free_port

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


class DroppingManager:
    """A fake manager whose n-th connection answers the login or stays silent; can drop links."""

    def __init__(self, logins: list[bool]) -> None:
        self.logins = logins  # per connection: answer the login (True) or never answer (False)
        self.connections = 0
        self.port = free_port()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> DroppingManager:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        self.drop()

    def drop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer_login = self.logins[min(self.connections, len(self.logins) - 1)]
        self.connections += 1
        self.writers.append(writer)
        writer.write(BANNER)
        await writer.drain()
        try:
            while True:
                block = (await reader.readuntil(b"\r\n\r\n")).decode()
                action_id = next(
                    (
                        line.split(": ", 1)[1]
                        for line in block.split("\r\n")
                        if line.startswith("ActionID")
                    ),
                    "",
                )
                if "Action: Login" in block and not answer_login:
                    continue  # a manager that accepts the TCP link but never logs us in
                writer.write(f"Response: Success\r\nActionID: {action_id}\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def client_for(port: int) -> AMIClient:
    return AMIClient(
        "127.0.0.1",
        port,
        "hotline",
        "x",
        connect_timeout=1,
        action_timeout=0.5,
        reconnect_max_delay=0.2,
        ping_interval=60,
    )


async def eventually(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def test_a_login_that_times_out_during_reconnect_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # connection 1 logs in, 2 and 3 never answer the login, 4 logs in again
    async with DroppingManager([True, False, False, True]) as fake:
        client = client_for(fake.port)
        await client.connect()
        try:
            with caplog.at_level(logging.WARNING):
                fake.drop()
                await eventually(lambda: client.reconnects == 1 and client.connected.is_set())
            assert fake.connections >= 4
            assert "reconnect failed" in caplog.text and "login" in caplog.text
        finally:
            await client.close()


async def test_a_reconnect_hook_that_raises_does_not_end_supervision(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with DroppingManager([True]) as fake:
        client = client_for(fake.port)
        calls = []

        async def recovery_hook() -> None:
            calls.append(1)
            raise RuntimeError("database is locked")  # e.g. the robot's recovery

        client.on_connect.append(recovery_hook)
        await client.connect()
        try:
            with caplog.at_level(logging.ERROR):
                fake.drop()
                await eventually(lambda: client.reconnects == 1 and client.connected.is_set())
                await eventually(lambda: len(calls) == 1)
                fake.drop()  # the link drops again: the supervisor must still be there
                await eventually(lambda: client.reconnects == 2 and client.connected.is_set())
            assert "database is locked" in caplog.text
        finally:
            await client.close()
