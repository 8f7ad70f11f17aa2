"""A bench stopped by SIGTERM cleans up as after Ctrl-C (its private Asterisk, its folders)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine


async def cancellable(work: Coroutine[object, object, int]) -> int:
    """Run work; SIGTERM cancels it like Ctrl-C, so its finally blocks stop Asterisk."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await work
