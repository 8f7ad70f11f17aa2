"""An agent's browser phone in a cluster (issue 22): registered at Kamailio, rung by both nodes.

`hotline cluster up` runs 2 nodes and one FastAGI worker (no robots, no
transcribers). Real headless Chromium opens the browser phone's harness page
(dashboard/static/agent_phone.js, `tests.support.webrtc_harness`) and
registers seat agent-w001 at the SIP front over WebSocket, with the seat's
password (the front challenges every REGISTER). Each node in turn then rings
the seat as a node's queue does, `PJSIP/agent-w001@sip-front-webrtc` (the
node's endpoint for browser phones: DTLS-SRTP, ICE; the front passes the SDP
through): the browser sees the call, answers, and audio flows both ways
between the browser and that node (the browser's getStats; the node's
per-direction recordings of the 1 kHz microphone and the 440 Hz caller).

The addresses are a block no other test uses: front .240, nodes .241/.242,
worker .245, PostgreSQL .249.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from core.config import HotlineConfig
from core.sip_front import front_interface, front_websocket
from links.ami import node_client
from tests.support.artifacts import ARTIFACTS
from tests.support.events import eventually
from tests.support.live_cluster import cluster_folder, hotline_cli
from tests.support.tones import loudness, tone_wav
from tests.support.webrtc_harness import CHROMIUM, chromium_args, serve_harness
from tools.cluster.kamailio import phone_secrets

FRONT, WS_PORT = "127.0.0.240", 8096
DATABASE_URL = "postgresql+psycopg://hotline@127.0.0.249:5432/hotline"
CLUSTER = {
    "front": {"address": FRONT, "ws_port": WS_PORT},
    "nodes": [
        {"name": "ast1", "address": "127.0.0.241", "rtp_start": 28000, "rtp_end": 28999},
        {"name": "ast2", "address": "127.0.0.242", "rtp_start": 29000, "rtp_end": 29999},
    ],
    "workers": [{"name": "agi1", "address": "127.0.0.245"}],
    "database_url": DATABASE_URL,
    "jobs": {"robots": 0, "transcribers": 0},
}
SEAT = "agent-w001"
CALLER = "13812340003"
MIC_HZ, CALLER_HZ = 1000, 440


@pytest.fixture(scope="module")
def cluster(asterisk_install: object, built_prompts: HotlineConfig) -> Iterator[HotlineConfig]:
    with cluster_folder("hotline-cluster-webrtc-", built_prompts, CLUSTER, DATABASE_URL) as config:
        up = hotline_cli(config.source, "cluster", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield config


async def events_of(page: Page) -> list[dict[str, object]]:
    return await page.evaluate("window.phoneEvents")  # type: ignore[no-any-return]


async def ring_from(config: HotlineConfig, node_name: str, page: Page, record: Path) -> dict:
    """The node rings the seat through the front; the browser answers; audio both ways."""
    assert config.cluster is not None
    node = next(n for n in config.cluster.nodes if n.name == node_name)
    ami = node_client(config, node)
    await ami.connect()
    try:
        seen = len(await events_of(page))
        calling = asyncio.create_task(
            ami.originate(
                front_interface(SEAT),
                context="sim-webrtc",
                exten="talk",
                caller_id=f'"citizen" <{CALLER}>',
                variables={"SIM_WEBRTC_FILE": str(record)},
                timeout_ms=30000,
            )
        )
        incoming = await eventually(
            lambda: page.evaluate(
                f"window.phoneEvents.slice({seen}).find((e) => e.type === 'incoming') || null"
            ),
            timeout=30,
            what=f"{node_name}'s call in the browser",
        )
        assert incoming["from"] == CALLER, incoming
        await asyncio.wait_for(page.evaluate("window.phone.answer()"), 20)
        answered = await calling
        assert answered.success, (node_name, answered)

        async def flowing() -> dict | None:
            stats = await page.evaluate("window.phone.stats()")
            good = stats["inbound"]["energy"] > 0 and stats["outbound"]["energy"] > 0
            return stats if good and stats["inbound"]["packets"] > 100 else None

        stats = await eventually(flowing, timeout=30, every=0.5, what=f"audio with {node_name}")
        await page.screenshot(path=str(ARTIFACTS / "cluster-webrtc" / f"{node_name}.png"))
        await page.evaluate("window.phone.hangup()")
        await eventually(
            lambda: page.evaluate(
                f"window.phoneEvents.slice({seen}).some((e) => e.type === 'ended')"
            ),
            timeout=15,
            what=f"the end of {node_name}'s call in the browser",
        )
        return stats  # type: ignore[no-any-return]
    finally:
        await ami.close()


def diagnosis(config: HotlineConfig, console: list[str]) -> str:
    """What the browser said, and the front's log's end: for a run that fails."""
    log = config.state_dir / "cluster" / "kamailio" / "kamailio.log"
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else f"no {log}"
    return "browser console:\n" + "\n".join(console[-40:]) + "\nfront log:\n" + tail


@pytest.mark.timeout(1200)
async def test_a_browser_seat_registers_at_the_front_and_talks_with_either_node(
    cluster: HotlineConfig, tmp_path: Path
) -> None:
    config = cluster
    assert config.cluster is not None
    socket = front_websocket(FRONT, WS_PORT)
    options = {
        "wsUrl": f"{socket}/ws",
        "uri": f"sip:{SEAT}@{FRONT}",
        "password": phone_secrets(config)[SEAT],
    }
    mic = tone_wav(tmp_path / "mic.wav", MIC_HZ)
    site = tmp_path / "site"
    site.mkdir()
    (ARTIFACTS / "cluster-webrtc").mkdir(parents=True, exist_ok=True)
    records = {
        node.name: config.state_dir
        / "cluster"
        / node.name
        / "recordings"
        / f"webrtc-{uuid.uuid4().hex[:8]}"
        for node in config.cluster.nodes
    }
    stats: dict[str, dict] = {}
    with serve_harness(site, socket) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=chromium_args(mic)
            )
            console: list[str] = []
            try:
                page = await browser.new_page()
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                await page.goto(f"{base}/index.html")
                await page.wait_for_function("window.phoneReady === true", timeout=10000)
                try:
                    await asyncio.wait_for(
                        page.evaluate("(o) => window.startPhone(o)", options), 30
                    )
                    for node in ("ast1", "ast2"):
                        stats[node] = await ring_from(config, node, page, records[node])
                    await asyncio.wait_for(page.evaluate("window.phone.unregister()"), 10)
                    events = [e["type"] for e in await events_of(page)]
                except (TimeoutError, AssertionError) as exc:
                    raise AssertionError(f"{exc!r}\n{diagnosis(config, console)}") from exc
            finally:
                await browser.close()
    assert events[:2] == ["transport", "registered"], (events, console)
    assert events.count("incoming") == 2 and events.count("connected") == 2, events
    assert not [line for line in console if "Content Security Policy" in line], console
    summary = []
    for node, record in records.items():
        assert stats[node]["dtls"] == "connected", (node, stats[node])  # DTLS-SRTP
        rx, tx = Path(f"{record}-rx.wav"), Path(f"{record}-tx.wav")
        await eventually(
            lambda a=rx, b=tx: a.exists() and b.exists(), timeout=15, what="recordings"
        )
        heard, heard_share = loudness(rx, MIC_HZ)
        sent, sent_share = loudness(tx, CALLER_HZ)
        summary.append(
            f"{node}: rx rms {heard:.3f} ({heard_share:.2f} {MIC_HZ} Hz), "
            f"tx rms {sent:.3f} ({sent_share:.2f} {CALLER_HZ} Hz)"
        )
        # the node heard the browser's microphone, and the browser got the node's tone
        assert heard > 0.02 and heard_share > 0.8, summary
        assert sent > 0.02 and sent_share > 0.8, summary
    print("; ".join(summary))
