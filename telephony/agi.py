"""The AGI protocol: one typed object per call, one method per AGI command.

Asterisk talks AGI as text lines. This module parses them (the environment
block, `200 result=...` replies, `HANGUP`, `100 Trying`, 510/511/520) and turns
the failures into a small exception tree, so that a flow reads like the call
it describes and a hang-up at any step unwinds it cleanly. Lines are read as
bytes up to the newline and decoded whole, so a UTF-8 caller name split across
two TCP reads survives.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field

from telephony.telemetry import AGI_COMMAND_SECONDS

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
RESULT = re.compile(r"^200 result=(?P<result>-?\d*)(?: \((?P<data>.*?)\))?(?P<rest>.*)$")
KEYVALUE = re.compile(r"(\w+)=(\S+)")


class CallLog(logging.LoggerAdapter):
    """Prefixes every log line with the call's Asterisk Uniqueid, so one call can be followed."""

    def process(self, msg, kwargs):  # type: ignore[override]
        return f"[{self.extra['uniqueid']}] {msg}", kwargs  # type: ignore[index]


class AGIError(Exception):
    """Base of every AGI failure."""


class AGIHangup(AGIError):
    """The caller hung up (HANGUP notice, 511 on a dead channel, or result=-1 on I/O)."""


class AGIProtocolError(AGIError):
    """Asterisk sent something that is not AGI (or the connection broke mid-line)."""


class AGIUnknownCommand(AGIError):
    """510: the command is not known to this Asterisk."""


class AGIUsageError(AGIError):
    """520: the command's syntax was wrong; carries Asterisk's usage text."""


class AGICommandFailed(AGIError):
    """result=-1 from a command where -1 means failure rather than hang-up."""


class AGIWriteError(AGICommandFailed):
    """Asterisk could not write a recording (`result=-1 (writefile)`: disk full, no access)."""


@dataclass
class AGIResponse:
    """One parsed `200 result=N (data) key=value` reply."""

    result: int
    data: str | None = None
    extras: dict[str, str] = field(default_factory=dict)
    raw_result: str = ""  # the digits exactly as sent (GET DATA keeps leading zeros)


def parse_response(line: str) -> AGIResponse:
    """Parse a 200 reply line; anything else raises the matching AGIError."""
    if line == "HANGUP":
        raise AGIHangup("the channel hung up (HANGUP notice)")
    if line.startswith("511"):
        raise AGIHangup(f"command not permitted on a dead channel: {line}")
    if line.startswith("510"):
        raise AGIUnknownCommand(line)
    match = RESULT.match(line)
    if match is None:
        raise AGIProtocolError(f"malformed AGI reply: {line[:200]!r}")
    extras = dict(KEYVALUE.findall(match.group("rest") or ""))
    raw = match.group("result")
    return AGIResponse(int(raw) if raw not in ("", "-") else 0, match.group("data"), extras, raw)


def parse_environment(lines: list[str]) -> dict[str, str]:
    """The `agi_key: value` block Asterisk sends first; malformed lines are logged and skipped."""
    env: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(": ")
        if not sep or not key.startswith("agi_"):
            log.warning("malformed AGI environment line skipped: %r", line[:200])
            continue
        env[key] = value
    return env


def quote(argument: str) -> str:
    """Quote one AGI argument (Asterisk splits on spaces; quotes and backslashes escaped)."""
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


class LineReader:
    """Reads whole lines as bytes and decodes them once complete."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def readline(self) -> str:
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise AGIProtocolError(
                    f"connection closed mid-line: {exc.partial[:200]!r}"
                ) from None
            raise AGIHangup("the AGI connection closed") from None
        except asyncio.LimitOverrunError:
            raise AGIProtocolError(f"AGI line longer than {MAX_LINE} bytes") from None
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")


TWO_WORD_COMMANDS = {"SET", "GET", "STREAM", "WAIT", "RECORD", "SAY", "DATABASE", "CHANNEL"}
# commands that return at once: their round trip is the protocol's cost, not the caller's
QUICK_COMMANDS = frozenset(
    {"SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "ANSWER", "VERBOSE", "CHANNEL STATUS"}
)


def command_name(words: tuple[str, ...]) -> str:
    """`SET VARIABLE`, `STREAM FILE`, `EXEC` ...: what a command is, without its arguments."""
    first = words[0].upper() if words else ""
    if first == "GET" and len(words) > 2 and words[1].upper() == "FULL":
        return "GET FULL VARIABLE"
    if first in TWO_WORD_COMMANDS and len(words) > 1:
        return f"{first} {words[1].upper()}"
    return first


class RoundTrips:
    """Recent AGI command round trips (written to reply read), by command, for measurements."""

    def __init__(self, keep: int = 100_000) -> None:
        self.samples: deque[tuple[str, float]] = deque(maxlen=keep)

    def record(self, name: str, seconds: float) -> None:
        self.samples.append((name, seconds))

    def quantiles(self, names: frozenset[str] = QUICK_COMMANDS) -> tuple[int, float, float]:
        """(count, p50, p99) in seconds over the kept samples of these commands."""
        values = sorted(s for n, s in self.samples if n in names)
        if not values:
            return 0, 0.0, 0.0
        at = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
        return len(values), at(0.5), at(0.99)


class AGI:
    """One call's AGI session: typed commands over the FastAGI connection."""

    def __init__(
        self,
        env: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        round_trips: RoundTrips | None = None,
    ) -> None:
        self.env = env
        self.lines = LineReader(reader)
        self.writer = writer
        self.hung_up = False
        self.log = CallLog(log, {"uniqueid": self.uniqueid})
        self.round_trips = round_trips

    # -- identity ---------------------------------------------------------------
    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "?")

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def caller_number(self) -> str:
        return self.env.get("agi_callerid", "unknown")

    @property
    def dialed(self) -> str:
        return self.env.get("agi_extension", "")

    @property
    def script_args(self) -> list[str]:
        """Positional arguments from the dialplan: AGI(agi://host/route,arg1,arg2)."""
        args = []
        index = 1
        while f"agi_arg_{index}" in self.env:
            args.append(self.env[f"agi_arg_{index}"])
            index += 1
        return args

    # -- transport --------------------------------------------------------------
    async def command(self, *words: str) -> AGIResponse:
        """Send one AGI command and return its final 200 reply."""
        if self.hung_up:
            raise AGIHangup("the channel already hung up")
        text = " ".join(words)
        started = time.perf_counter()
        with AGI_COMMAND_SECONDS.labels(command_name(words)).time():
            self.writer.write(text.encode("utf-8") + b"\n")
            await self.writer.drain()
            response = await self._reply(words)
        if self.round_trips is not None:
            self.round_trips.record(command_name(words), time.perf_counter() - started)
        return response

    async def _reply(self, words: tuple[str, ...]) -> AGIResponse:
        while True:
            line = await self.lines.readline()
            if line == "HANGUP":
                # Asterisk announces the hang-up, then still answers the pending command.
                self.hung_up = True
                continue
            if line.startswith("100"):
                continue  # "100 result=0 Trying..." precedes the real reply
            if line.startswith("520"):
                raise AGIUsageError(await self._usage(line))
            try:
                response = parse_response(line)
            except AGIHangup:
                self.hung_up = True
                raise
            if self.hung_up and response.result == -1:
                raise AGIHangup(f"caller hung up during {words[0]}")
            return response

    async def _usage(self, first: str) -> str:
        if first.startswith("520 "):
            return first
        usage = [first]
        while True:
            line = await self.lines.readline()
            usage.append(line)
            if line.startswith("520 "):
                return " | ".join(usage)

    async def _checked(self, *words: str) -> AGIResponse:
        """A command where result=-1 means the channel is gone."""
        response = await self.command(*words)
        if response.result == -1:
            self.hung_up = True
            raise AGIHangup(f"{words[0]} {words[1] if len(words) > 1 else ''} ended: channel gone")
        return response

    # -- commands ---------------------------------------------------------------
    async def answer(self) -> None:
        await self._checked("ANSWER")

    async def hangup(self) -> None:
        await self.command("HANGUP")

    async def stream_file(self, path: str, escape_digits: str = "") -> tuple[str | None, int]:
        """Play a prompt; return the digit that interrupted it (or None) and the end position."""
        response = await self._checked("STREAM FILE", quote(path), quote(escape_digits))
        endpos = int(response.extras.get("endpos", "0"))
        if endpos == 0 and response.result == 0:
            self.log.warning("prompt %s played nothing (missing file?)", path)
        return _digit(response.result), endpos

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """Wait for one key; None when the time runs out."""
        response = await self._checked("WAIT FOR DIGIT", str(timeout_ms))
        return _digit(response.result)

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str:
        """Play a prompt and collect up to max_digits keys (# ends); '' on timeout."""
        response = await self._checked("GET DATA", quote(prompt), str(timeout_ms), str(max_digits))
        return response.raw_result  # "" when nothing was pressed; digits keep leading zeros

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        response = await self._checked("SAY DIGITS", digits, quote(escape_digits))
        return _digit(response.result)

    async def record_file(
        self,
        path: str,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = 60000,
        beep: bool = True,
        silence_s: int | None = None,
    ) -> tuple[str | None, int]:
        """Record the caller to path.fmt; return the key that ended it and the end position."""
        words = ["RECORD FILE", quote(path), fmt, quote(escape_digits), str(timeout_ms)]
        if beep:
            words.append("BEEP")
        if silence_s:
            words.append(f"s={silence_s}")
        response = await self.command(*words)
        if response.result == -1 and response.data == "writefile":
            raise AGIWriteError(f"RECORD FILE {path}.{fmt}: Asterisk could not write the file")
        if response.result == -1:
            self.hung_up = True
            raise AGIHangup(f"RECORD FILE {path} ended: channel gone")
        return _digit(response.result), int(response.extras.get("endpos", "0"))

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, quote(value))

    async def get_variable(self, name: str) -> str | None:
        response = await self.command("GET VARIABLE", name)
        return response.data if response.result == 1 else None

    async def get_full_variable(self, expression: str) -> str | None:
        """Evaluate a dialplan expression such as ${CHANNEL(linkedid)} on this channel."""
        response = await self.command("GET FULL VARIABLE", quote(expression))
        return response.data if response.result == 1 else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", quote(message), str(level))

    async def exec(self, application: str, options: str = "") -> int:
        """Run a dialplan application (e.g. MixMonitor); return its result."""
        response = await self.command("EXEC", application, quote(options))
        if response.result == -2:
            raise AGICommandFailed(f"application {application} not found")
        return response.result


def _digit(result: int) -> str | None:
    """A result code as the key pressed: 0 means none; -1 is handled by the caller."""
    if result <= 0:
        return None
    return chr(result)
