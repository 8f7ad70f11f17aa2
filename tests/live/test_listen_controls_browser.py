"""Listening in from a real browser: Chromium is the supervisor on /live.

A scripted citizen (a 440 Hz tone) talks with a scripted agent through app_queue,
as in `test_listen_in`. The supervisor logs in to the console in Chromium at
1366×768, sees the compact wallboard panel above the calls (live, the agent on a
call), the agent's call offered for listening in, picks their scripted phone
(`sim-boss`: it answers and plays a 1 kHz file) and clicks 监听; the session is
listed; they click 结束; the session's row has its start and end and the audit
has its `listen_in` and `listen_stop` entries. Then /performance and
/service-level (their period forms; neither page has listen controls).
Screenshots: test-artifacts/live-1366.png, performance-1366.png,
service-level-1366.png.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import async_playwright, expect

from agents.listen import sessions_of
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.users import add_user
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.agents import log_in_agent, log_out_everyone, scripted_agent
from tests.support.artifacts import ARTIFACTS
from tests.support.calls import calls_ended, citizen_call
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, serve_console
from tests.support.console_site import audit_rows
from tests.support.events import eventually, wait_for_event
from tests.support.tones import tone_wav

CHROMIUM = "/usr/bin/chromium"
AGENTS_LINE = "12300"
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture
async def floor(hotline: Hotline, ami: AMIClient) -> AsyncIterator[Hotline]:
    yield hotline
    await log_out_everyone(hotline, ami)


@pytest.mark.timeout(240)
async def test_a_supervisor_listens_in_and_stops_from_the_browser(
    floor: Hotline, ami: AMIClient
) -> None:
    config = floor.config
    voices = config.state_dir / "voices"
    voices.mkdir(parents=True, exist_ok=True)
    tone = tone_wav(voices / "citizen-tone-440.wav", 440, rate=8000, seconds=60)
    voice = tone_wav(voices / "supervisor-tone-1000.wav", 1000, rate=8000, seconds=20)
    folder = config.recordings_dir / "listen-browser"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)
    await ami.action("DBPut", Family="simsup", Key="boss", Val=str(folder / "boss"))
    await ami.action("DBPut", Family="simsupvoice", Key="boss", Val=str(voice.with_suffix("")))
    agent = await scripted_agent(floor, ami, "zhao", answer_after="1", talk=60)
    await log_in_agent(floor, ami, agent)
    with unit_of_work(floor.sessions) as session:
        add_user(session, "boss", hash_password(PASSWORD), "supervisor", None)
    app = create_app(config, floor.sessions, follow_ami=True)
    connects = ami.subscribe("AgentConnect")
    try:
        with serve_console(app, free_port()) as base:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox"]
                )
                page = await browser.new_page(viewport=VIEWPORT)
                await page.goto(f"{base}/login")
                await page.fill("#username", "boss")
                await page.fill("#password", PASSWORD)
                await page.click("#login")
                await page.wait_for_url(lambda url: "/login" not in url)
                await page.goto(f"{base}/live")
                # locators, not wait_for_function: the console's CSP refuses eval, as it should
                panel = page.locator("#live-board")
                await expect(page.locator("#lb-link")).to_have_attribute(
                    "data-state", "live", timeout=20000
                )
                await expect(panel.locator('[data-a="ready"]')).to_have_text("1", timeout=15000)

                placed = asyncio.create_task(
                    citizen_call(
                        ami, AGENTS_LINE, f"p{tone.with_suffix('')}|h", caller="13900139042"
                    )
                )
                connect = await wait_for_event(
                    connects, lambda e: e.get("MemberName") == "zhao", timeout=40
                )
                uniqueid, citizen = connect.get("Uniqueid"), connect.get("Channel")
                await expect(panel.locator('[data-a="on_call"]')).to_have_text("1", timeout=15000)
                await expect(panel.locator('[data-f="completion"]')).to_have_class(
                    "ok", timeout=15000
                )  # the one call offered today was answered: 100 %, at the goal's colour
                row = page.locator("#listen-body tr")
                await expect(row).to_have_count(1, timeout=20000)
                await expect(row).to_contain_text("zhao")
                await page.select_option("#listen-phone", "sim-boss")
                await row.locator("button.listen-listen").click()
                await expect(page.locator("#listen-state")).to_contain_text("已接通", timeout=30000)
                listed = page.locator("#listen-sessions li")
                await expect(listed).to_have_count(1, timeout=15000)
                await expect(listed).to_contain_text("listen · sim-boss · boss")

                # the panel fits above the calls at 1366×768
                board = await panel.bounding_box()
                calls = await page.locator("#live").bounding_box()
                assert board is not None and calls is not None
                assert board["y"] + board["height"] <= calls["y"] < VIEWPORT["height"] / 2
                await page.screenshot(path=str(ARTIFACTS / "live-1366.png"))

                await listed.locator("button.listen-stop").click()
                await expect(page.locator("#listen-state")).to_contain_text("已结束", timeout=30000)
                await expect(listed).to_have_count(0, timeout=20000)

                await ami.action("Hangup", Channel=citizen)
                await placed
                for path, shot in (
                    ("/performance", "performance-1366.png"),
                    ("/service-level", "service-level-1366.png"),
                ):
                    await page.goto(f"{base}{path}")
                    await page.click("form.search button")  # the period form: today
                    await expect(page.locator("form.search")).to_be_visible()
                    await page.screenshot(path=str(ARTIFACTS / shot), full_page=False)
                await browser.close()
    finally:
        ami.unsubscribe(connects)
    await calls_ended(floor, uniqueid)

    def ended() -> list[int] | None:
        with unit_of_work(floor.sessions) as session:
            rows = sessions_of(session, uniqueid)
            done = [r.id for r in rows if r.ended_at is not None and r.ended_at > r.started_at]
            return done if len(done) == len(rows) == 1 else None

    (session_id,) = await eventually(ended, timeout=15, what="the session's end")
    with unit_of_work(floor.sessions) as session:
        (row,) = sessions_of(session, uniqueid)
        assert (row.supervisor, row.mode, row.phone, row.agent_id) == (
            "boss",
            "listen",
            "sim-boss",
            agent.agent_id,
        )
    for action in ("listen_in", "listen_stop"):
        (entry,) = audit_rows(floor.sessions, action)
        assert (entry.username, entry.object_id) == ("boss", session_id), action
    assert audit_rows(floor.sessions, "listen_refused") == []
