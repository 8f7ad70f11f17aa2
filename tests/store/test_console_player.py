"""A role that may listen but not download plays recordings in Chromium all the same
(issue 19, item 7): the player asks for byte ranges, every answer is a piece of at most
`web.stream_piece_kb`, time advances and a seek plays on; the player offers no download.

Debian's Chromium driven by Playwright against the console on loopback (the console
city, no Asterisk needed).
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import async_playwright

from dashboard.app import create_app
from tests.support.browser import CHROMIUM, REAL_CLOCK_ENV
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, serve_console
from tests.support.console_site import console_site

# the browser on the real clock even in the faketime pass (tests.support.browser)
BROWSER_ARGS = [
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PIECE_KB = 16

PLAY_AND_SEEK = """async (selector) => {
    const el = document.querySelector(selector);
    const until = (check, ms) => new Promise((ok, fail) => {
        const start = Date.now();
        const tick = () => check() ? ok() : (Date.now() - start > ms
            ? fail(new Error("timeout " + selector)) : setTimeout(tick, 50));
        tick();
    });
    el.muted = true;
    await el.play();
    await until(() => !el.paused && el.currentTime > 0.3, 10000);
    const first = el.currentTime;
    const middle = el.duration * 0.7;
    el.currentTime = middle;
    await until(() => !el.seeking && el.currentTime > middle + 0.3, 10000);
    const after = el.currentTime;
    el.pause();
    return {first, middle, after, duration: el.duration};
}"""


async def test_staff_play_and_seek_a_recording_served_in_pieces(tmp_path: Path) -> None:
    config, _, city, _ = console_site(tmp_path, stream_piece_kb=PIECE_KB)
    media: list[tuple[int, str, int]] = []
    with serve_console(create_app(config), free_port()) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=BROWSER_ARGS, env=REAL_CLOCK_ENV
            )
            page = await browser.new_page()

            page.on(
                "response",
                lambda r: (
                    media.append(
                        (
                            r.status,
                            r.request.headers.get("range", ""),
                            int(r.headers.get("content-length", "0")),
                        )
                    )
                    if "/media/" in r.url
                    else None
                ),
            )
            await page.goto(f"{base}/login")
            await page.fill("#username", "s1")
            await page.fill("#password", PASSWORD)
            await page.click("#login")
            await page.wait_for_load_state()
            await page.goto(f"{base}/calls/{city.calls['S1']}")
            assert await page.get_attribute("#audio-call", "controlslist") == "nodownload"
            assert await page.query_selector("#download-call") is None
            played = await page.evaluate(PLAY_AND_SEEK, "#audio-call")
            await browser.close()
    assert played["after"] > played["middle"] > played["first"] > 0, played
    assert played["duration"] > 5.5  # the whole six seconds are known to the player
    assert media, "the player fetched nothing"
    assert all(status in (206, 416) for status, _, _ in media), media  # never the whole file
    assert all(size <= PIECE_KB * 1024 for _, _, size in media), media
    assert all(asked.startswith("bytes=") for _, asked, _ in media), media
    assert sum(1 for status, _, _ in media if status == 206) >= 2, media  # pieces, not one
