"""The console in a real browser: Debian's headless Chromium driven by Playwright, against
the server on loopback, with a small demo city and a real call placed through Asterisk.

A supervisor logs in, finds the call by caller number, plays its recordings (the
audio element plays, time advances, a seek to the middle is served by a Range
request), opens the robot page and the three-rate table, exports the CSV (the
same bytes as `hotline report three-rates`), watches the live page, logs out;
department staff on a phone-sized screen sign and close their ticket and are
refused another unit's. Screenshots of each page land in test-artifacts/.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright
from sqlalchemy import select

from core.vocabulary import Level
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.users import add_user
from db.departments import create_department
from db.models import AuditEntry, Department, Ticket
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.artifacts import ARTIFACTS
from tests.support.calls import call_row, calls_ended, citizen_call, speech_file, ticket_of_call
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, serve_console
from tickets import handling

CHROMIUM = "/usr/bin/chromium"
CALLER = "13812340001"
SHOTS = ARTIFACTS / "console"


def hotline_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args, "-c", str(config)],
        capture_output=True,
        text=True,
    )


def demo_city(hotline: Hotline) -> tuple[Department, Department]:
    """A demo city in this test's store; two of its street units."""
    today = datetime.now(hotline.config.tz).date()
    made = hotline_cli("demo-data", "--tickets", "1500", "--until", str(today), "--seed", "7",
                       config=hotline.config.source)  # fmt: skip
    assert made.returncode == 0, made.stderr
    with unit_of_work(hotline.sessions) as session:
        streets = list(
            session.scalars(
                select(Department).where(Department.level == int(Level.TOWNSHIP)).limit(2)
            )
        )
        if len(streets) < 2:
            top = create_department(session, "BROWSER-C", "演示市", Level.CITY)
            district = create_department(session, "BROWSER-D", "演示区", Level.DISTRICT, top)
            streets = [
                create_department(
                    session, f"BROWSER-S{i}", f"演示街道{i}", Level.TOWNSHIP, district
                )
                for i in (1, 2)
            ]
        add_user(session, "boss", hash_password(PASSWORD), "supervisor", None)
        add_user(session, "admin", hash_password(PASSWORD), "admin", None)
        add_user(session, "street", hash_password(PASSWORD), "staff", streets[0].id)
        return streets[0], streets[1]


async def place_request_call(hotline: Hotline, ami: AMIClient) -> tuple[str, int]:
    """A citizen calls 12345 and leaves a request; (ticket number, call id)."""
    voice = speech_file(hotline.config.state_dir / "voices", "네")
    result = await citizen_call(
        ami, "12345", f"w1.5|d1|w1.5|d3|w1.5|d2|w7|p{voice}|w1|d#", caller=CALLER, timeout=180
    )
    await calls_ended(hotline, result.uniqueid)
    ticket, call = ticket_of_call(hotline, result.uniqueid), call_row(hotline, result.uniqueid)
    assert ticket is not None and call is not None and call.recording_path
    return ticket.number, call.id


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def no_horizontal_scroll(page: Page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def log_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    await page.wait_for_load_state()


async def play_and_seek(page: Page, selector: str) -> dict[str, float]:
    """Play an audio element, see time advance, seek to the middle and see it play on there."""
    return await page.evaluate(
        """async (selector) => {
            const el = document.querySelector(selector);
            const until = (check, ms) => new Promise((ok, fail) => {
                const start = Date.now();
                const tick = () => check() ? ok() : (Date.now() - start > ms ? fail(new Error("timeout " + selector)) : setTimeout(tick, 50));
                tick();
            });
            await el.play();
            await until(() => !el.paused && el.currentTime > 0.3, 10000);
            const first = el.currentTime;
            const middle = el.duration / 2;
            el.currentTime = middle;
            await until(() => !el.seeking && el.currentTime > middle + 0.3, 10000);
            const after = el.currentTime;
            el.pause();
            return {first, middle, after, duration: el.duration};
        }""",
        selector,
    )


@pytest.mark.timeout(600)
async def test_supervisor_and_staff_use_the_console_in_chromium(
    hotline: Hotline, ami: AMIClient
) -> None:
    config = hotline.config
    own, other = demo_city(hotline)
    number, call_id = await place_request_call(hotline, ami)
    with unit_of_work(hotline.sessions) as session:
        handling.dispatch(session, number, own.code, "test", config)
        foreign = session.scalar(
            select(Ticket.number).where(Ticket.department_id == other.id).limit(1)
        )
        if foreign is None:  # the fallback tree has no tickets yet: give the other unit one
            foreign_ticket = session.scalar(select(Ticket).where(Ticket.number != number).limit(1))
            assert foreign_ticket is not None
            foreign_ticket.department_id = other.id
            foreign = foreign_ticket.number
    today = datetime.now(config.tz).date()
    month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    expected_csv = config.state_dir / "cli-three-rates.csv"
    cli = hotline_cli("report", "three-rates", "--month", month, "--format", "csv", "-o",
                      str(expected_csv), config=config.source)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    app = create_app(config, hotline.sessions, follow_ami=True)
    with serve_console(app, free_port()) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
            )
            desk = await browser.new_context(
                viewport={"width": 1280, "height": 900}, accept_downloads=True, locale="zh-CN"
            )
            page = await desk.new_page()
            media: list[tuple[int, str]] = []
            page.on(
                "response",
                lambda r: (
                    media.append((r.status, r.request.headers.get("range", "")))
                    if "/media/" in r.url
                    else None
                ),
            )
            await log_in(page, base, "boss")
            assert "12345 热线" in await page.title()
            await shot(page, "01-overview")
            await page.goto(f"{base}/calls")
            await page.fill("#caller", CALLER)
            await page.click("#search-button")
            await page.wait_for_selector("tr.hit")
            assert CALLER in await page.inner_text("#results")
            await shot(page, "02-recordings-search")
            await page.click(f'a[href="/calls/{call_id}"]')
            await page.wait_for_selector("#audio-call")
            whole = await play_and_seek(page, "#audio-call")
            assert whole["after"] > whole["middle"] > whole["first"] > 0, whole
            request = await play_and_seek(page, "#audio-request")
            assert request["after"] > request["middle"], request
            assert any(status == 206 for status, _ in media), media  # the player streams by Range
            # a seek into unbuffered audio asks for a middle range (Chromium may have buffered a
            # short file whole already, so ask for one as it would)
            link = await page.get_attribute("#audio-call", "src")
            ranged = await page.request.get(base + str(link), headers={"Range": "bytes=1000-1999"})
            assert ranged.status == 206, ranged.status
            assert ranged.headers["content-range"].startswith("bytes 1000-1999/")
            assert len(await ranged.body()) == 1000
            await shot(page, "03-call")
            await page.goto(f"{base}/robot")
            # the demo city's callbacks: the success card is completed / placed, as shown
            placed = int(await page.inner_text("#placed"))
            completed = int(
                await page.inner_text('.card:has(span.en:text-is("Completed")) b')
            )
            assert placed > 0 and 0 < completed <= placed, (placed, completed)
            assert await page.inner_text("#success") == f"{completed / placed:.1%}"
            await shot(page, "04-robot")
            await page.goto(f"{base}/rates?month={month}")
            await page.wait_for_selector("#rates tr.unit")
            await shot(page, "05-three-rates")
            async with page.expect_download() as download_info:
                await page.click("#export-csv")
            download = await download_info.value
            got = config.state_dir / "web-three-rates.csv"
            await download.save_as(str(got))
            assert got.read_bytes() == expected_csv.read_bytes()  # the same file as the CLI's
            # the demo city's overdue tickets, as a supervisor reads them: late by days and
            # hours, urgency in words, fifty a page
            await page.goto(f"{base}/deadlines?list=overdue")
            overdue = await page.inner_text("main")
            assert "超期" in overdue and " 天" in overdue, overdue[:500]
            assert "剩余小时" not in overdue and "daily_life" not in overdue
            assert await page.locator("table tr:not(.head)").count() <= 50
            await shot(page, "05b-overdue")
            await page.goto(f"{base}/live")
            await page.wait_for_function(
                "document.getElementById('link-state').textContent.includes('已连接')"
            )
            await shot(page, "06-live")
            await page.click("#logout")
            await page.wait_for_url(f"{base}/login")
            await log_in(page, base, "admin")
            await page.goto(f"{base}/admin/audit?action=play")
            await shot(page, "07-audit")
            await desk.close()

            phone = await browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                device_scale_factor=2, locale="zh-CN",
            )  # fmt: skip
            mobile = await phone.new_page()
            await log_in(mobile, base, "street")
            await mobile.goto(f"{base}/tickets/{number}")
            assert "138****0001" in await mobile.inner_text("#ticket")  # staff see numbers masked
            assert await no_horizontal_scroll(mobile)
            await shot(mobile, "08-phone-ticket")
            await mobile.click("#sign")
            await mobile.wait_for_selector("#done")
            await mobile.fill("#reply", "已联系市民并处理完毕")
            await mobile.check("#closed-as input[value=resolved]")
            await mobile.click("#close")
            await mobile.wait_for_selector("#done")
            assert "已办结" in await mobile.inner_text("#status")
            await shot(mobile, "09-phone-closed")
            for path in ("/calls", "/rates", "/robot", "/live"):
                await mobile.goto(base + path)
                assert await no_horizontal_scroll(mobile), path
                await shot(mobile, f"10-phone-{path.strip('/')}")
            refused = await mobile.goto(f"{base}/tickets/{foreign}")
            assert refused is not None and refused.status == 403
            assert "不属于您的单位" in await mobile.content()
            await shot(mobile, "11-phone-refused")
            await browser.close()
    with unit_of_work(hotline.sessions) as session:
        plays = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == "play", AuditEntry.username == "boss")
            )
        )
        closed = session.scalar(select(Ticket).where(Ticket.number == number))
        assert closed is not None and closed.status == "closed"
        assert closed.reply == "已联系市民并处理完毕"
    assert sorted((p.object_id, p.detail.split()[0]) for p in plays) == [  # type: ignore[union-attr]
        (call_id, "call"),
        (call_id, "request"),
    ]  # one row per playback, seeks included
    assert all(CALLER not in (p.detail or "") for p in plays)
