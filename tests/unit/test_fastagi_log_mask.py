"""The FastAGI server's "call on <channel>" line masks numbers the way the rest of the logs do.

The server lives on the telephony floor and may not import core, so it is
given its masking function; the app factory passes core.phone_numbers'
`mask_in_text`, which honours `privacy.log_full_numbers`. Before, the server
masked with a regex of its own and a debugging session's full numbers never
reached this line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import phone_numbers
from core.config import load_config
from hotline.app import create_hotline
from telephony.agi import AGI
from telephony.fastagi import FastAGIServer
from tests.support.agi_stream import Transcript, feed
from tests.support.config import write_config

NUMBER = "13800138000"


def environment(key: str = "") -> bytes:
    """A FastAGI request for `echo` from a Local channel whose name holds a citizen's number."""
    script = f"echo?key={key}" if key else "echo"
    return (
        f"agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1/{script}\n"
        f"agi_channel: Local/{NUMBER}@hotline-outbound-0000002a;1\n"
        "agi_uniqueid: 1700000000.7\nagi_callerid: 12345\nagi_extension: echo\n\n"
    ).encode()


async def call_line(server: FastAGIServer, caplog: pytest.LogCaptureFixture) -> str:
    """The server's log line announcing the call."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="telephony.fastagi"):
        await server.serve_connection(
            feed(environment(server.key or ""), b"200 result=0\n200 result=1\n"),
            Transcript(),  # type: ignore[arg-type]
        )
    return next(r.getMessage() for r in caplog.records if "call on" in r.getMessage())


async def answer(agi: AGI) -> None:
    await agi.answer()


@pytest.fixture
def restore_log_numbers() -> Iterator[None]:
    """create_hotline sets the process-wide switch; put it back for the other tests."""
    yield
    phone_numbers.log_full_numbers(False)


async def test_the_server_masks_with_the_function_it_is_given(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = FastAGIServer({"echo": answer}, mask=lambda text: text.replace(NUMBER, "<number>"))
    assert "call on Local/<number>@hotline-outbound" in await call_line(server, caplog)


async def test_without_a_mask_no_long_digit_run_reaches_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    line = await call_line(FastAGIServer({"echo": answer}), caplog)
    assert NUMBER not in line and "Local/" in line


@pytest.mark.parametrize(("full", "shown"), [(False, "138****8000"), (True, NUMBER)])
async def test_the_app_follows_privacy_log_full_numbers(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    restore_log_numbers: None,
    full: bool,
    shown: str,
) -> None:
    config = load_config(
        write_config(tmp_path, privacy={"log_full_numbers": full}, ivr={"store_process": False})
    )
    hotline = create_hotline(config)
    hotline.server.routes["echo"] = answer
    try:
        line = await call_line(hotline.server, caplog)
    finally:
        await hotline.store.close()
    assert f"call on Local/{shown}@hotline-outbound" in line
