"""/hotspots in a real browser (issue 23, item 8): Debian's headless Chromium driven by
Playwright against the console on loopback, with a stored run of 2025-10 (no Asterisk).

A supervisor opens the month at 1366×768, confirms the alert with the keyboard and
dismisses the watch with the mouse; the page shows both reviews and the precision
moving (100 %, then 50 %); the store and the audit trail have them. Screenshots at
1366×768 and 1920×1080 go to test-artifacts/hotspots-1366.png and -1920.png.
Assertions are Playwright's `expect(locator)`: the console's Content-Security-Policy
forbids eval, so `wait_for_function` cannot run on its pages.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, async_playwright, expect

from dashboard.app import create_app
from db.models import HotspotFlag
from db.session import unit_of_work
from tests.support.artifacts import ARTIFACTS
from tests.support.browser import REAL_CLOCK_ENV
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, serve_console
from tests.support.console_site import audit_rows, console_site
from tests.support.hotspot_run import LABOUR_LINE, MONTH, store_run

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 30_000  # a loaded 2-core machine: generous, never a timing assertion


async def log_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    await page.wait_for_url(lambda url: "/login" not in url, timeout=WAIT_MS)


async def no_horizontal_scroll(page: Page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_a_supervisor_reviews_flags_in_chromium(tmp_path: Path) -> None:
    config, _, city, sessions = console_site(tmp_path)
    stored = store_run(sessions, city)
    labour, heating = stored.flags["labour"], stored.flags["heating"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve_console(create_app(config, sessions), free_port()) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox"], env=REAL_CLOCK_ENV
            )
            try:
                page = await browser.new_page(viewport={"width": 1366, "height": 768})
                await log_in(page, base, "boss")
                await page.goto(f"{base}/hotspots?month={MONTH}")
                await expect(page.locator("#lines + ul.lines")).to_contain_text(
                    LABOUR_LINE, timeout=WAIT_MS
                )
                await expect(page.locator("#hotspot-grid td.flagged")).to_have_count(2)
                await expect(page.locator(f"#flag-{labour} svg.band-chart")).to_be_visible()
                await expect(page.locator("#precision b")).to_have_text("无数据")

                # the keyboard: focus the alert's confirm button and press Enter
                await page.focus(f"#confirm-{labour}")
                await page.keyboard.press("Enter")
                await page.wait_for_url(f"**/hotspots?month={MONTH}#flag-{labour}")
                await expect(page.locator(f"#review-{labour}")).to_contain_text("已确认")
                await expect(page.locator(f"#confirm-{labour}")).to_be_disabled()
                await expect(page.locator("#precision b")).to_have_text("100.0%")

                # the mouse: dismiss the watch
                await page.click(f"#dismiss-{heating}")
                await expect(page.locator(f"#review-{heating}")).to_contain_text(
                    "已排除", timeout=WAIT_MS
                )
                await expect(page.locator("#precision b")).to_have_text("50.0%")
                assert await no_horizontal_scroll(page)
                await page.screenshot(path=str(ARTIFACTS / "hotspots-1366.png"), full_page=True)

                await page.set_viewport_size({"width": 1920, "height": 1080})
                await page.goto(f"{base}/hotspots?month={MONTH}")
                await expect(page.locator("#hotspot-grid")).to_be_visible(timeout=WAIT_MS)
                assert await no_horizontal_scroll(page)
                await page.screenshot(path=str(ARTIFACTS / "hotspots-1920.png"), full_page=True)
            finally:
                await browser.close()
    with unit_of_work(sessions) as session:
        reviews = {
            flag.id: (flag.review, flag.reviewed_by)
            for flag in (session.get(HotspotFlag, labour), session.get(HotspotFlag, heating))
            if flag is not None
        }
    assert reviews == {labour: ("confirmed", "boss"), heating: ("dismissed", "boss")}
    assert [e.object_id for e in audit_rows(sessions, "hotspot_review")] == [labour, heating]
    assert (ARTIFACTS / "hotspots-1366.png").stat().st_size > 10_000
    assert (ARTIFACTS / "hotspots-1920.png").stat().st_size > 10_000
