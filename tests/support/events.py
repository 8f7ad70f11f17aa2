"""Waiting for what a test stands for (an AMI event, a row) instead of sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for_event(queue: asyncio.Queue, predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """The first event from queue that satisfies predicate, or TimeoutError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError("no matching AMI event")
        event = await asyncio.wait_for(queue.get(), remaining)
        if predicate(event):
            return event


async def eventually(
    probe: Callable[[], T | Awaitable[T | None] | None],
    timeout: float = 20.0,
    every: float = 0.1,
    what: str = "the condition",
) -> T:
    """The first truthy value `probe()` returns (sync or async), polled until timeout.

    The one helper for "wait until the row is written": a test names what it
    waits for instead of sleeping a guessed while.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() > deadline:
            raise TimeoutError(f"{what} did not come within {timeout:.0f} s")
        await asyncio.sleep(every)
