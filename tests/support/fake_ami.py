"""A loopback TCP peer that plays an AMI manager badly: for the AMI client's unit tests."""

from __future__ import annotations

import asyncio

from tools.sandbox.config import free_port

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


class FakeManager:
    """A loopback TCP peer that sends a banner, accepts any login, then scripted bytes."""

    def __init__(self, after_login: bytes = b"", banner: bytes = BANNER) -> None:
        self.after_login = after_login
        self.banner = banner
        self.received: list[str] = []
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeManager:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.banner)
        await writer.drain()
        try:
            while True:
                block = (await reader.readuntil(b"\r\n\r\n")).decode()
                self.received.append(block)
                action_id = next(
                    (
                        line.split(": ", 1)[1]
                        for line in block.split("\r\n")
                        if line.startswith("ActionID")
                    ),
                    "",
                )
                if "Action: Login" in block:
                    writer.write(
                        f"Response: Success\r\nActionID: {action_id}\r\n"
                        "Message: Authentication accepted\r\n\r\n".encode()
                    )
                    writer.write(self.after_login)
                elif "Action: Ping" in block:
                    writer.write(
                        f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\n\r\n".encode()
                    )
                else:
                    writer.write(f"Response: Goodbye\r\nActionID: {action_id}\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
