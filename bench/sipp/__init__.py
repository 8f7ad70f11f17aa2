"""SIPp citizens for the capacity bench: real SIP over UDP on loopback, RTP, RFC 4733 keys.

Debian's `sip-tester` package is SIPp (`apt-get install -y sip-tester`); the
scenario in new_request.xml plays one pcap per run, the citizen's keys and voice
as one RTP stream (media.py; the voice is the PCMA speech sample that package ships).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
from pathlib import Path

from bench.sipp.media import LEAD_MS, citizen_pcap
from telephony.ami import AMIClient
from tools.local_asterisk.local import LocalAsterisk

SCENARIO = Path(__file__).with_name("new_request.xml")
VOICE_PCAP = Path("/usr/share/sip-tester/g711a.pcap")  # about seven seconds of PCMA speech
PHONE = "6001"  # a citizen test phone (digest auth with its own secret)
# the dialplan form is reached from the phones as 88 + the line (bench-ivr.conf);
# every FastAGI form (fastagi, -digitwise, -nice0, -threads) calls the line itself
NUMBERS = {"dialplan": "8812345"}
LINE = "12345"


class SippMissing(RuntimeError):
    """SIPp is not installed."""


def scenario_file(folder: Path) -> Path:
    """The scenario with the citizen's media track (written beside it) and the phone filled in."""
    media = citizen_pcap(VOICE_PCAP, folder / "citizen.pcap")
    text = SCENARIO.read_text()
    for name, value in {"MEDIA": str(media), "LEAD_MS": str(LEAD_MS), "USER": PHONE}.items():
        text = text.replace(f"@@{name}@@", value)
    target = folder / "new_request.xml"
    target.write_text(text)
    return target


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def place_sipp_calls(
    local: LocalAsterisk,
    ami: AMIClient,
    form: str,
    n: int,
    args: argparse.Namespace,
    tag: int,
) -> tuple[list[str], int]:
    """N SIPp calls started over args.ramp seconds; the Uniqueids of the hotline's legs.

    Returns (uniqueids, calls that did not hang up in time).
    """
    if shutil.which("sipp") is None:
        raise SippMissing("SIPp is missing: apt-get install -y sip-tester")
    config = local.config
    folder = config.state_dir / "sipp"
    folder.mkdir(parents=True, exist_ok=True)
    scenario = scenario_file(folder)
    events = ami.subscribe("Newchannel", "Hangup")
    rate = max(1.0, n / max(args.ramp, 0.1))
    command = [
        "sipp", f"127.0.0.1:{config.asterisk.sip.port}",
        "-sf", str(scenario), "-s", NUMBERS.get(form, LINE),
        "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_port()),
        "-au", PHONE, "-ap", config.phone_secret(PHONE),
        "-m", str(n), "-l", str(n), "-r", f"{rate:.2f}", "-rp", "1000",
        "-nostdin", "-trace_err", "-timeout", "300s",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=folder,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    legs: set[str] = set()
    ended: set[str] = set()

    async def follow() -> None:
        while True:
            event = await events.get()
            channel = event.get("Channel")
            if event.name == "Newchannel" and channel.startswith(f"PJSIP/{PHONE}-"):
                legs.add(event.get("Uniqueid"))
            elif event.name == "Hangup":
                ended.add(event.get("Uniqueid"))

    follower = asyncio.create_task(follow())
    try:
        _out, err = await proc.communicate()
        if proc.returncode not in (0, 1):
            print(f"  sipp exit {proc.returncode}: {err.decode(errors='replace')[-400:]}")
        deadline = asyncio.get_running_loop().time() + 60
        while legs - ended and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
        return sorted(legs), len(legs - ended)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        ami.unsubscribe(events)
        if proc.returncode is None:
            proc.kill()
