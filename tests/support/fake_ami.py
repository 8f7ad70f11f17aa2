"""A loopback TCP peer that plays an AMI manager badly: for the AMI client's unit tests.

It can also stand for a cluster node's manager that the console's pages follow: on an
address of its own (`host`, any of 127/8), on a port chosen in advance (`port`, so a node
that was down can come up where the config says), answering the list actions a page sends
on connect (`lists`, e.g. the wallboard's QueueStatus) with an empty list.
"""

from __future__ import annotations

import asyncio

from tools.sandbox.config import free_port

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


class FakeManager:
    """A loopback TCP peer that sends a banner, accepts any login, then scripted bytes.

    Any other action is answered with Goodbye (which ends the client's link), except
    those named in `lists`: Success, then the list's `<Action>Complete` event with no
    entries, as Asterisk answers QueueStatus or CoreShowChannels when nothing is there.
    """

    def __init__(
        self,
        after_login: bytes = b"",
        banner: bytes = BANNER,
        host: str = "127.0.0.1",
        port: int | None = None,
        lists: tuple[str, ...] = (),
    ) -> None:
        self.after_login = after_login
        self.banner = banner
        self.host = host
        self.lists = lists
        self.received: list[str] = []
        self.port = port if port is not None else free_port()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeManager:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
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
                writer.write(self._answer(block))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def _answer(self, block: str) -> bytes:
        fields = dict(line.split(": ", 1) for line in block.split("\r\n") if ": " in line)
        action_id = fields.get("ActionID", "")
        action = fields.get("Action", "")
        if action == "Login":
            return (
                f"Response: Success\r\nActionID: {action_id}\r\n"
                "Message: Authentication accepted\r\n\r\n".encode()
                + self.after_login
            )
        if action == "Ping":
            return f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\n\r\n".encode()
        if action in self.lists:
            return (
                f"Response: Success\r\nActionID: {action_id}\r\nEventList: start\r\n"
                "Message: will follow\r\n\r\n"
                f"Event: {action}Complete\r\nActionID: {action_id}\r\n"
                "EventList: Complete\r\nListItems: 0\r\n\r\n"
            ).encode()
        return f"Response: Goodbye\r\nActionID: {action_id}\r\n\r\n".encode()
