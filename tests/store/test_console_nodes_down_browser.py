"""A cluster node whose AMI is down is named on the console's live pages, in Chromium
(issue 22): the wallboard, the live-calls page (its table's line and its floor panel)
and the agent's desk say "节点未连接 nodes not connected: ast2" and never name ast1,
and the line goes away without a reload once ast2's manager answers.

Two nodes on loopback addresses of their own: ast1's AMI is the project's fake manager
(any login, an empty QueueStatus for the wallboard), ast2's address has nobody
listening until the test starts a second fake manager there. A fake manager suffices:
the pages only need each link to be up or down, not what Asterisk would do with a call.
The console runs in this process (`create_app(follow_ami=True)`, as `hotline serve`
builds it) behind uvicorn on loopback; Debian's Chromium is driven by Playwright.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright, expect

from core.config import ClusterConfig, ClusterNode, ClusterWorker, HotlineConfig
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.session import unit_of_work
from tests.support.artifacts import ARTIFACTS
from tests.support.browser import REAL_CLOCK_ENV
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, serve_console
from tests.support.console_site import console_site
from tests.support.fake_ami import FakeManager

AST1, AST2 = "127.0.0.226", "127.0.0.227"  # the nodes' AMI addresses (any of 127/8 is on lo)
FRONT, WORKER = "127.0.0.225", "127.0.0.228"  # in the config only: nothing dials them
ON_CONNECT = ("QueueStatus",)  # what the wallboard asks a node as soon as its link is up
AST2_DOWN = "节点未连接 nodes not connected: ast2"
CHROMIUM = "/usr/bin/chromium"
# the browser on the real clock even in the faketime pass (tests.support.browser)
BROWSER_ARGS = ["--disable-background-networking", "--disable-component-update", "--no-first-run"]
SEEN = 30_000  # ms: a link is retried every 3 s, and two cores are shared with other work


def clustered(config: HotlineConfig, ports: tuple[int, int]) -> HotlineConfig:
    """The console's config with a two-node cluster whose managers are at AST1 and AST2."""
    nodes = [
        ClusterNode(
            name=f"ast{i + 1}",
            address=address,
            ami_port=port,
            rtp_start=44000 + 1000 * i,
            rtp_end=44999 + 1000 * i,
        )
        for i, (address, port) in enumerate(zip((AST1, AST2), ports, strict=True))
    ]
    cluster = ClusterConfig(
        front={"address": FRONT},  # type: ignore[arg-type]
        nodes=nodes,
        workers=[ClusterWorker(name="agi1", address=WORKER)],
    )
    ami = config.asterisk.ami.model_copy(update={"connect_timeout": 1.0})
    return config.model_copy(
        update={"cluster": cluster, "asterisk": config.asterisk.model_copy(update={"ami": ami})}
    )


@contextlib.asynccontextmanager
async def console(config: HotlineConfig) -> AsyncIterator[str]:
    """The console served in its own thread; started and stopped off this loop, so the
    fake managers on this loop keep answering meanwhile."""
    served = serve_console(create_app(config, follow_ami=True), free_port())
    base = await asyncio.to_thread(served.__enter__)
    try:
        yield base
    finally:
        await asyncio.to_thread(served.__exit__, None, None, None)


async def signed_in(browser: Browser, base: str, username: str, path: str) -> Page:
    """A page of its own browser context (its own session cookie), logged in, at path."""
    page = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    # the login's own navigation ends first: a goto racing it could land back on /login
    await page.wait_for_url(lambda url: "/login" not in url, timeout=SEEN)
    await page.goto(f"{base}{path}")
    assert page.url == f"{base}{path}", f"{username} sent to {page.url}"
    return page


async def test_the_live_pages_name_the_node_that_is_down_until_it_answers(
    tmp_path: Path,
) -> None:
    config, _, _, sessions = console_site(tmp_path)
    ports = (free_port(), free_port())
    config = clustered(config, ports)
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD))
    screenshot = ARTIFACTS / "wallboard-node-down.png"
    screenshot.unlink(missing_ok=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async with (
        FakeManager(host=AST1, port=ports[0], lists=ON_CONNECT),
        console(config) as base,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=BROWSER_ARGS, env=REAL_CLOCK_ENV
        )
        try:
            wallboard = await signed_in(browser, base, "boss", "/wallboard")
            live = await signed_in(browser, base, "boss", "/live")
            desk = await signed_in(browser, base, "a1", "/agent")
            lines = {
                "wallboard": wallboard.locator("#wb-link"),
                "live calls": live.locator("#link-state"),
                "live floor panel": live.locator("#lb-link"),
                "agent desk": desk.locator("#link"),
            }
            for line in lines.values():
                await expect(line).to_have_text(AST2_DOWN, timeout=SEEN)  # ast1 is not named
            await wallboard.screenshot(path=str(screenshot))
            for page in (wallboard, live, desk):  # gone after a reload would not count
                await page.evaluate("window.notReloaded = true")

            async with FakeManager(host=AST2, port=ports[1], lists=ON_CONNECT):
                await expect(lines["wallboard"]).to_have_text("实时 live", timeout=SEEN)
                await expect(lines["live calls"]).to_have_text(
                    "已连接 Asterisk connected", timeout=SEEN
                )
                await expect(lines["live floor panel"]).to_have_text("实时 live", timeout=SEEN)
                await expect(lines["agent desk"]).to_have_text("", timeout=SEEN)
                for page in (wallboard, live, desk):
                    assert await page.evaluate("window.notReloaded === true"), page.url
                    assert "节点未连接" not in await page.inner_text("body"), page.url
        finally:
            await browser.close()
    assert screenshot.stat().st_size > 10_000
