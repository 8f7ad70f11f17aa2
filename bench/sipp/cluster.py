"""SIPp citizens through a cluster's SIP front, and a stand-in for a dead node's SIP port.

Used by bench/cluster.py (--sipp) and tests/live/test_cluster.py.

`sipp_citizens` places calls with bench/sipp/cluster_request.xml: real SIP over
UDP from the callers' address, RTP with the keys 1, 3, 2 as RFC 4733 events,
a few seconds of voice and #, each call's caller number injected from a CSV.
SIPp's own counts (from its statistics file) say how many calls succeeded.

`InviteTrap` binds a UDP socket where a killed node's Asterisk listened (free
once it is dead) and notes every INVITE that arrives: the node as Kamailio
sees it, silent, and what Kamailio still sends it.
"""

from __future__ import annotations

import asyncio
import csv
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.sipp import VOICE_PCAP
from bench.sipp.media import LEAD_MS, citizen_pcap

SCENARIO = Path(__file__).with_name("cluster_request.xml")


def callers_address_port(address: str) -> int:
    """A UDP port free on the callers' address now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def scenario_file(folder: Path, hangup_wait_ms: int) -> Path:
    """The cluster scenario with its media track written beside it (one pcap for all calls)."""
    media = folder / "citizen.pcap"
    if not media.exists():
        citizen_pcap(VOICE_PCAP, media)
    text = SCENARIO.read_text()
    for name, value in {
        "MEDIA": str(media),
        "LEAD_MS": str(LEAD_MS),
        "HANGUP_WAIT_MS": str(hangup_wait_ms),
    }.items():
        text = text.replace(f"@@{name}@@", value)
    target = folder / f"cluster_request_{hangup_wait_ms}.xml"
    target.write_text(text)
    return target


@dataclass
class SippResult:
    """What SIPp counted at the end of a run, and the caller numbers it used."""

    callers: list[str]
    successful: int
    failed: int
    returncode: int
    errors: str = ""

    @property
    def summary(self) -> str:
        return f"{self.successful} successful, {self.failed} failed (exit {self.returncode})"


def last_counts(stat_file: Path) -> tuple[int, int]:
    """SuccessfulCall(C) and FailedCall(C) from the last line of SIPp's -trace_stat CSV."""
    rows = list(csv.reader(stat_file.read_text().splitlines(), delimiter=";"))
    if len(rows) < 2:
        return 0, 0
    head, last = rows[0], rows[-1]
    return int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")])


@dataclass
class SippCitizens:
    """One SIPp run: `callers` (one call each) at `rate` calls a second to `front`."""

    folder: Path
    front: str
    callers_address: str
    callers: list[str]
    rate: float
    hangup_wait_ms: int = 90_000
    line: str = "12345"
    tag: str = "run"
    started_at: float = field(default=0.0, init=False)

    def argv(self) -> list[str]:
        scenario = scenario_file(self.folder, self.hangup_wait_ms)
        numbers = self.folder / f"callers-{self.tag}.csv"
        numbers.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c in self.callers))
        media_port = callers_address_port(self.callers_address)
        return [
            "sipp", f"{self.front}:5060", "-sf", str(scenario), "-s", self.line,
            "-inf", str(numbers), "-i", self.callers_address,
            "-p", str(callers_address_port(self.callers_address)), "-mp", str(media_port),
            "-m", str(len(self.callers)), "-r", f"{self.rate:g}", "-rp", "1000",
            "-l", str(len(self.callers)), "-nostdin", "-timeout", "400s",
            "-trace_stat", "-stf", str(self.folder / f"stat-{self.tag}.csv"), "-fd", "1",
            "-trace_err", "-error_file", str(self.folder / f"errors-{self.tag}.log"),
        ]  # fmt: skip

    async def run(self) -> SippResult:
        """Place the calls and wait until SIPp ends (every call answered and hung up, or failed)."""
        self.started_at = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *self.argv(),
            cwd=self.folder,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _out, err = await asyncio.wait_for(proc.communicate(), 600)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        successful, failed = last_counts(self.folder / f"stat-{self.tag}.csv")
        errors = self.folder / f"errors-{self.tag}.log"
        said = err.decode(errors="replace")[-1500:]
        if errors.exists():
            said += errors.read_text(errors="replace")[-3000:]
        return SippResult(self.callers, successful, failed, proc.returncode or 0, said)


INVITE = re.compile(rb"^INVITE ", re.MULTILINE)
CALL_ID = re.compile(rb"^(?:Call-ID|i):\s*(\S+)", re.MULTILINE | re.IGNORECASE)


@dataclass
class InviteTrap:
    """A UDP socket on a dead node's SIP address: when each INVITE (and OPTIONS) arrived."""

    address: str
    port: int
    invites: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, Call-ID)
    options: list[float] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def bind(self, timeout: float = 10.0) -> None:
        """Bind as soon as the dead process has let go of the port."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.address, self.port))
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
                continue
            break
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._listen, name="invite-trap", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data, _peer = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            if INVITE.match(data):
                found = CALL_ID.search(data)
                self.invites.append((now, found.group(1).decode() if found else "?"))
            elif data.startswith(b"OPTIONS "):
                self.options.append(now)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close()
