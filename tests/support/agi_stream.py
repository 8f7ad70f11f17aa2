"""Bytes fed straight into the FastAGI server's reader, and a writer that keeps what it sent."""

from __future__ import annotations

import asyncio


class Transcript:
    """A writer that records what the server sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data.decode())

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None


def feed(*chunks: bytes) -> asyncio.StreamReader:
    """A stream reader that yields the chunks, then end of file."""
    reader = asyncio.StreamReader(limit=64 * 1024)
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return reader
