"""A real browser is the agent: Chromium on /agent, its WebRTC phone, a citizen on 12300.

The agent logs in to the console, goes ready (app_queue over AMI), the queue
rings the browser phone and the page pops the caller's two earlier tickets;
the agent answers, both voices are in the call's recording (the citizen's
440 Hz tone and the browser's fake-microphone 1 kHz tone); the citizen hangs
up while the agent is still typing, and the ticket the agent then files to a
street is that call's one ticket, with its recording.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path

from playwright.async_api import async_playwright, expect

from agents.follow import ingest_once
from core.vocabulary import Level, TicketStatus
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.departments import create_department
from db.session import unit_of_work
from db.tickets import create_ticket
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.agents import log_out_everyone
from tests.support.artifacts import ARTIFACTS
from tests.support.calls import calls_ended, citizen_call, ticket_of_call
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, serve_console
from tests.support.events import wait_for_event
from tests.support.tones import loudness, tone_wav
from tools.local_asterisk.certs import certificate_paths, spki_hash
from tools.local_asterisk.local import LocalAsterisk

CHROMIUM = "/usr/bin/chromium"
CALLER = "13900139777"


def earlier_tickets(hotline: Hotline) -> int:
    """Two earlier tickets of the caller (one open) and a street to dispatch to."""
    with unit_of_work(hotline.sessions) as session:
        city = create_department(session, "city-b", "鄂尔多斯市", Level.CITY)
        district = create_department(session, "dist-b", "东胜区", Level.DISTRICT, city)
        street = create_department(session, "street-b", "交通街道", Level.TOWNSHIP, district)
        for day, status in ((date(2026, 10, 3), TicketStatus.CLOSED), (date(2026, 11, 20), None)):
            ticket = create_ticket(
                session,
                caller_number=CALLER,
                local_day=day,
                accepted_at=datetime(day.year, day.month, day.day, 2, tzinfo=UTC),
            )
            ticket.status = status or ticket.status
        return street.id


async def test_the_browser_agent_is_rung_pops_answers_and_files_the_ticket(
    hotline: Hotline, ami: AMIClient, asterisk: LocalAsterisk
) -> None:
    config = hotline.config
    street = earlier_tickets(hotline)
    with unit_of_work(hotline.sessions) as session:
        add_agent(session, config, "zhang", hash_password(PASSWORD), phone="webrtc")
    voices = config.state_dir / "voices"
    voices.mkdir(parents=True, exist_ok=True)
    citizen_voice = tone_wav(voices / "citizen-440.wav", 440, rate=8000, seconds=12)
    mic = tone_wav(config.state_dir / "mic-1k.wav", 1000)
    cert = certificate_paths(asterisk.state / "keys").cert
    args = [
        "--no-sandbox",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        f"--ignore-certificate-errors-spki-list={spki_hash(cert)}",
    ]
    app = create_app(config, hotline.sessions, follow_ami=True)
    rung = ami.subscribe("AgentCalled", "AgentConnect")
    try:
        with serve_console(app, free_port()) as base:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
                page = await browser.new_page(viewport={"width": 1366, "height": 768})
                await page.goto(f"{base}/login")
                await page.fill("#username", "zhang")
                await page.fill("#password", PASSWORD)
                await page.click("#login")
                await page.wait_for_url(f"{base}/agent")
                # locators, not wait_for_function: the console's CSP refuses eval, as it should
                await expect(page.locator("#phone-state")).to_contain_text("已注册", timeout=15000)
                await page.click("#btn-ready")
                await expect(page.locator("#state")).to_have_attribute(
                    "data-state", "ready", timeout=10000
                )
                # the citizen speaks (a 12 s tone) and hangs up while the agent is still typing
                script = f"w10|p{str(citizen_voice)[:-4]}|w1|h"
                placed = asyncio.create_task(
                    citizen_call(ami, "12300", script, caller=CALLER, timeout=120)
                )
                called = await wait_for_event(rung, lambda e: e.name == "AgentCalled", 40)
                rang_at = time.monotonic()
                await expect(page.locator("#pop-tickets li")).to_have_count(2, timeout=5000)
                pop_seconds = time.monotonic() - rang_at
                await page.screenshot(path=str(ARTIFACTS / "agent-browser-pop.png"))
                first = await page.get_attribute("#pop-tickets li:first-child", "class")
                assert first is not None and "open" in first
                await page.click("#answer")
                await wait_for_event(rung, lambda e: e.name == "AgentConnect", 15)
                await page.fill("#f-category", "道路交通")
                await page.fill("#f-place", "交通街道")
                call = await placed  # the citizen has hung up; the agent goes on typing
                await page.fill("#f-description", "路口红绿灯坏了")
                await page.check("input[name=handling][value=dispatch]")
                await page.select_option("#f-department", str(street))
                await page.click("#file")
                await expect(page.locator("#form-message")).to_contain_text("已提交", timeout=10000)
                await page.screenshot(path=str(ARTIFACTS / "agent-browser-filed.png"))
                await browser.close()
    finally:
        ami.unsubscribe(rung)
        await log_out_everyone(hotline, ami)
    assert called.get("MemberName") == "zhang"
    assert pop_seconds < 1.0, pop_seconds
    await calls_ended(hotline, call.uniqueid)
    ingest_once(hotline.sessions, config.queue_log)
    ticket = ticket_of_call(hotline, call.uniqueid)  # the hang-up's ticket, filled by the form
    assert ticket is not None and ticket.description == "路口红绿灯坏了"
    assert ticket is not None and ticket.department_id == street and ticket.due_at is not None
    assert ticket.agent_id is not None and ticket.status == TicketStatus.DISPATCHED
    recording = ticket.recording_path or next(c.recording_path for c in ticket.calls)
    assert recording is not None
    _, agent_share = loudness(Path(recording), 1000)
    _, citizen_share = loudness(Path(recording), 440)
    (ARTIFACTS / "agent-browser.json").write_text(
        json.dumps(
            {"pop_seconds": pop_seconds, "agent_1k": agent_share, "citizen_440": citizen_share}
        )
    )
    assert agent_share > 0.05 and citizen_share > 0.05, (agent_share, citizen_share)
