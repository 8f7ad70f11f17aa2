"""The AGI parser and the FastAGI server's handling of what comes over the wire.

These feed bytes straight into the server's stream reader (a parser unit
test); the call flows themselves are tested through the real Asterisk in
test_asterisk_calls.py.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.agi import (
    AGI,
    AGIHangup,
    AGIProtocolError,
    AGIUnknownCommand,
    AGIUsageError,
    parse_environment,
    parse_response,
)
from telephony.fastagi import FastAGIServer, route_name
from tests.support.agi_stream import Transcript, feed

ENV = (
    b"agi_network: yes\nagi_network_script: echo\nagi_request: agi://127.0.0.1/echo\n"
    b"agi_channel: Local/keys5@sim-citizen-00000001;1\nagi_uniqueid: 1700000000.7\n"
    b"agi_callerid: 13800138000\nagi_extension: echo\n\n"
)


def test_parse_result_with_data_and_extras() -> None:
    reply = parse_response("200 result=49 (dtmf) endpos=16320")
    assert reply.result == 49
    assert reply.data == "dtmf"
    assert reply.extras == {"endpos": "16320"}
    assert parse_response("200 result=-1").result == -1
    assert parse_response("200 result=1 (中文名字)").data == "中文名字"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("HANGUP", AGIHangup),
        ("511 Command Not Permitted on a dead channel or intercept routine", AGIHangup),
        ("510 Invalid or unknown command", AGIUnknownCommand),
        ("garbage", AGIProtocolError),
        ("200 rezult=1", AGIProtocolError),
    ],
)
def test_parse_failures_map_to_the_exception_tree(line: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_response(line)


def test_environment_skips_malformed_lines(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        env = parse_environment(["agi_uniqueid: 1.2", "nonsense", "agi_arg_1: x: y"])
    assert env == {"agi_uniqueid": "1.2", "agi_arg_1": "x: y"}
    assert "malformed AGI environment line" in caplog.text


def test_route_name_from_script_or_request() -> None:
    assert route_name({"agi_network_script": "ivr?line=12345"}) == "ivr"
    assert route_name({"agi_request": "agi://127.0.0.1:4573/survey"}) == "survey"


async def test_utf8_caller_name_split_across_reads_survives() -> None:
    name = "张三丰".encode()
    line = b"agi_calleridname: " + name + b"\n\n"
    split = len(b"agi_calleridname: ") + 4  # inside the second character
    reader = asyncio.StreamReader()
    reader.feed_data(line[:split])
    server = FastAGIServer({})

    async def later() -> None:
        await asyncio.sleep(0.01)
        reader.feed_data(line[split:])
        reader.feed_eof()

    seen: dict[str, str] = {}

    async def capture(agi: AGI) -> None:
        seen.update(agi.env)

    server.routes[""] = capture
    feeder = asyncio.create_task(later())
    await server.serve_connection(reader, Transcript())  # type: ignore[arg-type]
    await feeder
    assert seen["agi_calleridname"] == "张三丰"


async def test_hangup_notice_then_minus_one_raises_hangup() -> None:
    agi = AGI({}, feed(b"HANGUP\n200 result=-1\n"), Transcript())  # type: ignore[arg-type]
    with pytest.raises(AGIHangup):
        await agi.wait_for_digit(1000)
    assert agi.hung_up


async def test_trying_line_is_skipped_and_usage_is_collected() -> None:
    agi = AGI({}, feed(b"100 result=0 Trying...\n200 result=0\n"), Transcript())  # type: ignore[arg-type]
    assert (await agi.exec("MixMonitor", "/tmp/x.wav")) == 0
    usage = b"520-Invalid command syntax.  Proper usage follows:\nUsage: WAIT FOR DIGIT <timeout>\n520 End of proper usage.\n"
    agi = AGI({}, feed(usage), Transcript())  # type: ignore[arg-type]
    with pytest.raises(AGIUsageError, match="Usage: WAIT FOR DIGIT"):
        await agi.command("WAIT FOR DIGIT")


async def test_crashing_handler_asks_for_the_dialplan_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(agi: AGI) -> None:
        raise RuntimeError("database exploded")

    writer = Transcript()
    server = FastAGIServer({"echo": broken})
    with caplog.at_level(logging.ERROR):
        await server.serve_connection(feed(ENV, b"200 result=1\n"), writer)  # type: ignore[arg-type]
    assert writer.sent == ['SET VARIABLE HOTLINE_RESULT "failed"\n']
    assert "[1700000000.7] echo: handler failed" in caplog.text


async def test_successful_handler_marks_the_call_done() -> None:
    async def fine(agi: AGI) -> None:
        await agi.answer()

    writer = Transcript()
    await FastAGIServer({"echo": fine}).serve_connection(
        feed(ENV, b"200 result=0\n200 result=1\n"), writer
    )  # type: ignore[arg-type]
    assert writer.sent == ["ANSWER\n", 'SET VARIABLE HOTLINE_RESULT "done"\n']


async def test_caller_hanging_up_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    async def talk(agi: AGI) -> None:
        await agi.stream_file("/x/welcome")

    writer = Transcript()
    with caplog.at_level(logging.INFO):
        await FastAGIServer({"echo": talk}).serve_connection(
            feed(ENV, b"HANGUP\n200 result=-1 endpos=0\n"), writer
        )  # type: ignore[arg-type]
    assert "caller hung up" in caplog.text
    assert "ERROR" not in caplog.text
    assert writer.sent == ['STREAM FILE "/x/welcome" ""\n']


async def test_unknown_route_sends_nothing_so_the_dialplan_falls_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = Transcript()
    with caplog.at_level(logging.ERROR):
        await FastAGIServer({"ivr": lambda agi: asyncio.sleep(0)}).serve_connection(
            feed(ENV), writer
        )  # type: ignore[arg-type]
    assert writer.sent == []
    assert "unknown FastAGI route 'echo'" in caplog.text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.binary(max_size=500))
async def test_arbitrary_bytes_never_crash_the_server(env_noise: bytes, replies: bytes) -> None:
    async def flow(agi: AGI) -> None:
        await agi.answer()
        await agi.stream_file("/x/welcome", "0123456789")
        await agi.get_data("/x/menu", 3000, 4)
        await agi.record_file("/x/rec", silence_s=3)

    server = FastAGIServer({"echo": flow, "": flow})
    known = ("ANSWER", "STREAM FILE", "GET DATA", "RECORD FILE", "SET VARIABLE")
    for chunks in ((env_noise,), (ENV, replies), (env_noise, b"\n\n", replies)):
        writer = Transcript()
        await server.serve_connection(feed(*chunks), writer)  # type: ignore[arg-type]
        # whatever came in, only whole, well-formed commands went out, one per line
        assert all(c.endswith("\n") and c.count("\n") == 1 for c in writer.sent)
        assert all(c.startswith(known) for c in writer.sent)


async def test_malformed_reply_is_logged_clearly(caplog: pytest.LogCaptureFixture) -> None:
    async def flow(agi: AGI) -> None:
        await agi.answer()

    with caplog.at_level(logging.ERROR):
        await FastAGIServer({"echo": flow}).serve_connection(
            feed(ENV, b"200 rezult=1\n"), Transcript()
        )  # type: ignore[arg-type]
    assert "malformed AGI reply: '200 rezult=1'" in caplog.text
