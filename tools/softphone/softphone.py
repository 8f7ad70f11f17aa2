"""The citizen softphone: pyVoIP registered on our Asterisk, driven by a small script.

A script is the same language the dialplan's scripted citizens speak, steps
separated by `|`: `w1.5` wait, `d132` press keys (RFC 4733), `p/path/voice.wav`
say something (the file is played as the caller's voice), `h` hang up.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pyVoIP.VoIP import CallState, PhoneStatus, VoIPCall, VoIPPhone

from core.config import HotlineConfig
from core.seats import seat_password, seats
from tools.softphone import dtmf

log = logging.getLogger(__name__)
dtmf.install()


class PhoneError(Exception):
    """Registration, dialling or answering failed; the message says which and where."""


@dataclass(frozen=True)
class PhoneSettings:
    server: str
    port: int
    username: str
    password: str
    my_ip: str = "127.0.0.1"
    rtp_low: int = 40000
    rtp_high: int = 40999

    @classmethod
    def from_config(cls, config: HotlineConfig, username: str) -> PhoneSettings:
        sip = config.asterisk.sip
        if username in sip.citizen_phones:
            return cls(sip.bind, sip.port, username, config.phone_secret(username))
        desks = [s.endpoint for s in seats(0, config.agents.desk_seats)]
        if username in desks:  # an agent's desk phone (a scripted agent, the demo)
            password = seat_password(config.agent_sip_key(), username)
            return cls(sip.bind, sip.port, username, password)
        known = [*sip.citizen_phones, *desks[:2], "..."]
        raise PhoneError(f"{username} is not a configured phone ({', '.join(known)})")


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def parse_script(script: str) -> list[tuple[str, str]]:
    """`w1|d12|p/x.wav|h` -> [("w", "1"), ("d", "12"), ("p", "/x.wav"), ("h", "")]."""
    steps = []
    for raw in filter(None, (s.strip() for s in script.split("|"))):
        kind, arg = raw[0], raw[1:]
        if kind not in "wdph":
            raise PhoneError(f"script step {raw!r}: use wSECONDS, dKEYS, pFILE or h")
        if kind == "w":
            float(arg)
        steps.append((kind, arg))
    return steps


def as_phone_audio(path: Path) -> bytes:
    """A sound file as pyVoIP wants it: 8 kHz mono 8-bit unsigned."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "voice.raw"
        done = subprocess.run(
            [
                "sox",
                str(path),
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "8",
                "-e",
                "unsigned-integer",
                "-t",
                "raw",
                str(raw),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise PhoneError(f"cannot read {path}: {done.stderr.strip()}")
        return raw.read_bytes()


class CitizenPhone:
    """One registered softphone."""

    def __init__(self, settings: PhoneSettings) -> None:
        self.settings = settings
        self.incoming: list[VoIPCall] = []
        self._ring = threading.Event()
        self.phone = VoIPPhone(
            settings.server,
            settings.port,
            settings.username,
            settings.password,
            myIP=settings.my_ip,
            callCallback=self._on_call,
            sipPort=free_udp_port(settings.my_ip),
            rtpPortLow=settings.rtp_low,
            rtpPortHigh=settings.rtp_high,
        )

    def _on_call(self, call: VoIPCall) -> None:
        self.incoming.append(call)
        self._ring.set()

    def __enter__(self) -> CitizenPhone:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        where = f"{self.settings.server}:{self.settings.port}"
        try:
            self.phone.start()
        except OSError as exc:
            raise PhoneError(f"phone {self.settings.username}: cannot start SIP: {exc}") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.phone.get_status()
            if status == PhoneStatus.REGISTERED:
                return
            if status == PhoneStatus.FAILED:
                break
            time.sleep(0.1)
        self.phone.stop()
        raise PhoneError(
            f"phone {self.settings.username} could not register on {where} "
            f"(status {self.phone.get_status().name}); is Asterisk up?"
        )

    def stop(self) -> None:
        for call in list(self.phone.calls.values()):
            if call.state == CallState.ANSWERED:
                call.hangup()
        self.phone.stop()

    def dial(self, number: str, timeout: float = 15.0) -> VoIPCall:
        call = self.phone.call(number)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if call.state == CallState.ANSWERED:
                return call
            if call.state == CallState.ENDED:
                break
            time.sleep(0.05)
        raise PhoneError(f"{number} did not answer ({call.state.name})")

    def answer(self, timeout: float = 60.0) -> VoIPCall:
        if not self._ring.wait(timeout):
            raise PhoneError(f"phone {self.settings.username}: no call within {timeout:.0f} s")
        call = self.incoming.pop(0)
        call.answer()
        return call

    @staticmethod
    def run_script(call: VoIPCall, script: str, hold: float = 60.0) -> None:
        """Follow the script on an answered call, then stay until the far end hangs up."""
        for kind, arg in parse_script(script):
            if call.state != CallState.ANSWERED:
                return
            if kind == "w":
                time.sleep(float(arg))
            elif kind == "d":
                call.RTPClients[0].send_dtmf(arg)
                time.sleep(0.3 * len(arg))
            elif kind == "p":
                audio = as_phone_audio(Path(arg))
                call.write_audio(audio)
                time.sleep(len(audio) / 8000)
            elif kind == "h":
                call.hangup()
                return
        deadline = time.monotonic() + hold
        while call.state == CallState.ANSWERED and time.monotonic() < deadline:
            time.sleep(0.1)
        if call.state == CallState.ANSWERED:
            call.hangup()


def keys_script(keys: str, gap: float, say: Path | None, say_after: float) -> str:
    """The script for `--keys 1,3,2 --say voice.wav`: keys a gap apart, then speak and #."""
    steps = []
    for group in filter(None, keys.split(",")):
        steps += [f"w{gap}", f"d{group.strip()}"]
    if say is not None:
        steps += [f"w{say_after}", f"p{say}", "w1", "d#"]
    return "|".join(steps)
