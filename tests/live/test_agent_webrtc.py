"""The agent's browser phone in real headless Chromium: JsSIP over Asterisk's wss, DTLS-SRTP.

Chromium (Debian's, driven by Playwright) opens a small harness page served on
loopback with dashboard/static/agent_phone.js, registers seat agent-w001 over
the TLS WebSocket (its self-signed certificate accepted by its SPKI hash only),
and answers a call Asterisk places to it. Its microphone is a 1 kHz tone
(Chromium's fake capture device); Asterisk plays a 440 Hz tone back. Both
directions are checked: getStats in the browser, MixMonitor's per-direction
recordings in Asterisk, each with its own tone's frequency.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import subprocess
import uuid
from pathlib import Path

from playwright.async_api import async_playwright

from core.seats import seat_password
from telephony.ami import AMIClient
from tests.support.artifacts import ARTIFACTS
from tests.support.events import eventually, wait_for_event
from tests.support.tones import loudness, tone_wav
from tests.support.webrtc_harness import CHROMIUM, chromium_args, serve_harness
from tools.local_asterisk.certs import certificate_paths, ensure_certificate, spki_hash
from tools.local_asterisk.local import LocalAsterisk

SEAT = "agent-w001"
CALLER = "13812340002"
MIC_HZ, CALLER_HZ = 1000, 440


async def contacts_of(ami: AMIClient, aor: str) -> list[dict[str, str]]:
    """PJSIPShowContacts' rows for aor."""
    queue = ami.subscribe("ContactList", "ContactListComplete")
    try:
        await ami.action("PJSIPShowContacts")
        rows = []
        while True:
            event = await wait_for_event(queue, lambda _e: True, timeout=10)
            if event.name == "ContactListComplete":
                return rows
            if event.get("ObjectName").split(";")[0] == aor:  # "AOR;@HASH"
                rows.append(dict(event.fields))
    finally:
        ami.unsubscribe(queue)


async def test_the_browser_phone_registers_answers_and_carries_audio_both_ways(
    asterisk: LocalAsterisk, ami: AMIClient, tmp_path: Path
) -> None:
    config = asterisk.config
    cert = certificate_paths(asterisk.state / "keys").cert
    mic = tone_wav(tmp_path / "mic.wav", MIC_HZ)
    site = tmp_path / "site"
    site.mkdir()
    host = "127.0.0.1"
    options = {
        "wsUrl": f"wss://{host}:{config.agents.wss_port}/ws",
        "uri": f"sip:{SEAT}@{host}",
        "password": seat_password(config.agent_sip_key(), SEAT),
    }
    record = config.recordings_dir / f"webrtc-{uuid.uuid4().hex[:12]}"
    rx, tx = Path(f"{record}-rx.wav"), Path(f"{record}-tx.wav")
    shots = ARTIFACTS / "agent-webrtc"
    shots.mkdir(parents=True, exist_ok=True)
    args = [
        *chromium_args(mic),
        # the local Asterisk's self-signed wss certificate, and no other, is accepted
        f"--ignore-certificate-errors-spki-list={spki_hash(cert)}",
    ]
    statuses = ami.subscribe("ContactStatus")
    hangups = ami.subscribe("Hangup")
    with serve_harness(site, f"wss://{host}:{config.agents.wss_port}") as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
            try:
                page = await browser.new_page()
                console: list[str] = []
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                await page.goto(f"{base}/index.html")
                await page.wait_for_function("window.phoneReady === true", timeout=10000)
                await asyncio.wait_for(page.evaluate("(o) => window.startPhone(o)", options), 20)

                # Asterisk sees the registration, over the wss transport
                status = await wait_for_event(statuses, lambda e: e.get("AOR") == SEAT, timeout=15)
                assert status.get("ContactStatus") in {"Created", "Reachable", "NonQualified"}, (
                    status
                )
                contacts = await contacts_of(ami, SEAT)
                assert len(contacts) == 1, contacts
                assert contacts[0]["UserAgent"].startswith("12345-hotline agent phone"), contacts
                assert "transport=ws" in contacts[0]["Uri"], contacts  # JsSIP's wss Contact
                # qualified (OPTIONS over the WebSocket, answered by JsSIP)
                await eventually(
                    lambda: "Avail" in asterisk.rx(f"pjsip show contacts like {SEAT}"),
                    timeout=10,
                    what="the seat's contact qualified Avail",
                )

                # a call to the seat; the browser sees the caller and its X- header
                calling = asyncio.create_task(
                    ami.originate(
                        f"PJSIP/{SEAT}",
                        context="sim-webrtc",
                        exten="talk",
                        caller_id=f'"citizen" <{CALLER}>',
                        variables={
                            "SIM_WEBRTC_FILE": str(record),
                            "PJSIP_HEADER(add,X-Hotline-Test)": "webrtc-1",
                        },
                        timeout_ms=20000,
                    )
                )
                incoming = await eventually(
                    lambda: page.evaluate(
                        "window.phoneEvents.find((e) => e.type === 'incoming') || null"
                    ),
                    timeout=15,
                    what="the incoming call in the browser",
                )
                assert incoming["from"] == CALLER, incoming
                assert incoming["headers"].get("X-Hotline-Test") == "webrtc-1", incoming
                answer_ms = await asyncio.wait_for(
                    page.evaluate(
                        "async () => { const t = performance.now(); await window.phone.answer();"
                        " return performance.now() - t; }"
                    ),
                    15,
                )
                answered = await calling
                assert answered.success, answered

                # audio both ways in the browser's own counters (getStats)
                async def flowing() -> dict | None:
                    stats = await page.evaluate("window.phone.stats()")
                    good = stats["inbound"]["energy"] > 0 and stats["outbound"]["energy"] > 0
                    return stats if good and stats["inbound"]["packets"] > 100 else None

                stats = await eventually(flowing, timeout=15, every=0.5, what="audio both ways")
                await page.screenshot(path=str(shots / "phone-in-call.png"), full_page=True)

                await page.evaluate("window.phone.hangup()")
                await eventually(
                    lambda: page.evaluate("window.phoneEvents.some((e) => e.type === 'ended')"),
                    timeout=10,
                    what="the call's end in the browser",
                )
                await wait_for_event(
                    hangups, lambda e: e.get("Channel", "").startswith(f"PJSIP/{SEAT}-"), 10
                )
                await asyncio.wait_for(page.evaluate("window.phone.unregister()"), 10)
                await wait_for_event(
                    statuses,
                    lambda e: e.get("AOR") == SEAT and e.get("ContactStatus") == "Removed",
                    timeout=10,
                )
                await page.screenshot(path=str(shots / "phone-after-call.png"), full_page=True)
                events = [e["type"] for e in await page.evaluate("window.phoneEvents")]
            finally:
                await browser.close()
    ami.unsubscribe(statuses)
    ami.unsubscribe(hangups)

    assert not [line for line in console if "Content Security Policy" in line], console
    assert events[:2] == ["transport", "registered"], (events, console)
    assert {"incoming", "connected", "ended", "unregistered"} <= set(events), events
    assert answer_ms < 3000, answer_ms  # no waiting seconds for ICE gathering
    assert stats["dtls"] == "connected", stats  # DTLS-SRTP, the only media webrtc=yes allows
    # Asterisk heard the browser's microphone (the 1 kHz tone) and sent it the 440 Hz one
    await eventually(lambda: rx.exists() and tx.exists(), timeout=10, what="the recordings")
    heard, heard_share = loudness(rx, MIC_HZ)
    sent, sent_share = loudness(tx, CALLER_HZ)
    summary = (
        f"answered in {answer_ms:.0f} ms; browser in {stats['inbound']} out {stats['outbound']}; asterisk rx rms {heard:.3f} "
        f"({heard_share:.2f} of it {MIC_HZ} Hz), tx rms {sent:.3f} ({sent_share:.2f} {CALLER_HZ} Hz)"
    )
    (shots / "energy.txt").write_text(summary + "\n")
    print(summary)
    assert heard > 0.02 and heard_share > 0.8, summary
    assert sent > 0.02 and sent_share > 0.8, summary


def test_the_wss_certificate_is_made_once_and_a_sites_own_is_kept(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = ensure_certificate(keys, "192.0.2.7")
    first = made.cert.read_bytes()
    assert ensure_certificate(keys, "192.0.2.7") == made and made.cert.read_bytes() == first
    assert oct(made.key.stat().st_mode & 0o777) == "0o600"
    text = subprocess.run(
        ["openssl", "x509", "-in", str(made.cert), "-noout", "-text"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "IP Address:127.0.0.1" in text and "IP Address:192.0.2.7" in text, text
    assert "DNS:localhost" in text, text
    # the hash Chromium's --ignore-certificate-errors-spki-list wants: sha256 of the SPKI
    der = subprocess.run(
        ["openssl", "x509", "-in", str(made.cert), "-noout", "-pubkey"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    spki = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=der, capture_output=True, check=True
    ).stdout
    assert spki_hash(made.cert) == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    # a site's own certificate at the same paths is never replaced
    made.cert.write_text("a site's own certificate\n")
    ensure_certificate(keys, "192.0.2.7")
    assert made.cert.read_text() == "a site's own certificate\n"
