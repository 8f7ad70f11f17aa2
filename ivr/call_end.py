"""The FastAGI route `call-end`, run from the dialplan's `h` extension.

Whatever happened during the call (a hang-up at any step, a crashed handler, a
fallback recording made by the dialplan alone), this is where the call row gets
its end and the call gets its ticket if it has none yet: the caller number and
whatever audio exists always end up in the store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.phone_numbers import from_caller_id
from core.telemetry import CALLS_ENDED
from core.vocabulary import CallStep
from ivr.recordings import WAV_HEADER
from ivr.store import CallEnd, IvrStore
from telephony.agi import AGI

FLUSH_WAIT = 2.0


async def wait_until_written(path: str, timeout: float = FLUSH_WAIT) -> None:
    """Give MixMonitor/Record a moment to flush a file closed by the hang-up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = -1
    while loop.time() < deadline:
        try:
            size = Path(path).stat().st_size
        except OSError:
            size = -1
        if size > WAV_HEADER and size == last:
            return
        last = size
        await asyncio.sleep(0.2)


class CallEndRoute:
    def __init__(self, store: IvrStore) -> None:
        self.store = store

    async def __call__(self, agi: AGI) -> None:
        variables = {}
        for name in (
            "HOTLINE_DID",
            "HOTLINE_BASE",
            "HOTLINE_CALLER",
            "HOTLINE_STEP",
            "HOTLINE_REQUEST_REC",
            "HOTLINE_MESSAGE_REC",
            "HANGUPCAUSE",
            "MEMBERNAME",  # app_queue (setinterfacevar): the agent who answered
        ):
            variables[name] = await agi.get_variable(name) or ""
        base = variables["HOTLINE_BASE"]
        requests = [variables["HOTLINE_REQUEST_REC"], variables["HOTLINE_MESSAGE_REC"]]
        files = [f for f in [*requests, base + ".wav" if base else ""] if f]
        await asyncio.gather(*(wait_until_written(f) for f in files))
        number = await self.store.call_ended(
            CallEnd(
                uniqueid=agi.uniqueid,
                caller=from_caller_id(variables["HOTLINE_CALLER"]),
                did=variables["HOTLINE_DID"] or agi.dialed,
                recording=base + ".wav" if base else None,
                request_recordings=[r for r in requests if r],
                hangup_cause=variables["HANGUPCAUSE"] or None,
                last_step=CallStep.AGENT.value
                if variables["MEMBERNAME"]
                else variables["HOTLINE_STEP"] or None,
                agent=variables["MEMBERNAME"] or None,
            )
        )
        CALLS_ENDED.labels("ticket" if number else "spooled").inc()
        agi.log.info(
            "call ended at step %s (cause %s); ticket %s",
            variables["HOTLINE_STEP"] or "-",
            variables["HANGUPCAUSE"] or "-",
            number or "spooled",
        )
