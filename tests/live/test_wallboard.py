"""A scripted peak against the wallboard: Chromium keeps /wallboard open while scripted
citizens call 12300 and scripted agents answer (one paused over AMI QueuePause, one who
never answers and is paused by app_queue after ringing out).

At the end every figure on the board equals the one computed here, independently,
from the queue_log file (read with `agents.queue_log`, not with `agents.figures`);
the board's first figure after the first caller joins is measured from the AMI event;
screenshots at 1920×1080 and 1366×768 go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from playwright.async_api import async_playwright, expect

from agents.control import pause
from agents.queue_log import QueueEvent, read_from
from agents.store import membership
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.users import add_user
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.agents import log_in_agent, log_out_everyone, scripted_agent
from tests.support.artifacts import ARTIFACTS
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, serve_console
from tests.support.events import wait_for_event
from tools.demo_floor import FloorPlan, demo_agents, run_floor

CHROMIUM = "/usr/bin/chromium"
LEFT = {"ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY", "EXITEMPTY"}


def one_decimal(value: float) -> str:
    """As JavaScript's toFixed(1) writes it (ties away from zero on the exact double)."""
    return str(Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def expected_board(
    events: list[QueueEvent], queues: dict[str, tuple[int, int]], agents: list[str]
) -> dict[str, dict[str, str]]:
    """The tiles' texts per queue key ("all" for the hotline), from queue_log lines alone.

    queues: name -> (service level seconds, wrap-up seconds)."""
    calls: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for e in events:
        if e.callid in ("NONE", ""):
            continue
        call = calls[(e.queue, e.callid)]
        if e.event == "ENTERQUEUE":
            call["entered"] = True
        elif e.event == "CONNECT":
            call["hold"] = int(e.field(1))
        elif e.event in ("COMPLETECALLER", "COMPLETEAGENT"):
            call["talk"] = int(e.field(2))
        elif e.event in LEFT:
            call["left"] = True
    board: dict[str, dict[str, str]] = {}
    for key in ["all", *queues]:
        mine = [(q, c) for (q, _), c in calls.items() if c.get("entered") and key in ("all", q)]
        offered = len(mine)
        answered = [(q, c) for q, c in mine if "hold" in c]
        within = [c for q, c in answered if c["hold"] <= queues[q][0]]
        left = [c for _, c in mine if c.get("left") and "hold" not in c]
        handled = [(q, c) for q, c in mine if "talk" in c]

        def rate(part: int, offered: int = offered) -> str:
            return one_decimal(part / offered * 100) + "%" if offered else "无数据"

        board[key] = {
            "offered": str(offered),
            "answered": str(len(answered)),
            "abandoned": str(len(left)),
            "service_level": rate(len(within)),
            "completion": rate(len(answered)),
            "asa": one_decimal(sum(c["hold"] for _, c in answered) / len(answered)) + "s"
            if answered
            else "–",
            "aht": one_decimal(sum(c["talk"] + queues[q][1] for q, c in handled) / len(handled))
            + "s"
            if handled
            else "–",
            "waiting": "0",
            "longest": "0s",
        }
    # agents by their last state in the lines (all logged in to the first queue)
    last: dict[str, tuple[str, str]] = {}
    for e in events:
        if e.agent not in agents:
            continue
        if e.event == "ADDMEMBER" or e.event in ("UNPAUSE", "UNPAUSEALL"):
            last[e.agent] = ("ready", "")
        elif e.event == "REMOVEMEMBER":
            last[e.agent] = ("logged_out", "")
        elif e.event in ("PAUSE", "PAUSEALL"):
            last[e.agent] = ("paused", e.field(1))
        elif e.event == "CONNECT":
            last[e.agent] = ("on_call", "")
        elif e.event in ("COMPLETECALLER", "COMPLETEAGENT"):
            last[e.agent] = ("ready", "")  # wrap-up is long over when the board is read
        elif e.event == "RINGNOANSWER" and last.get(e.agent, ("",))[0] != "paused":
            last[e.agent] = ("ready", "")
    states = {s: 0 for s in ("ready", "ringing", "on_call", "wrap_up", "paused", "logged_out")}
    for agent in agents:
        states[last.get(agent, ("logged_out", ""))[0]] += 1
    for key in ("all", "hotline-agents"):
        board[key].update({f"agent:{s}": str(n) for s, n in states.items()})
    return board


async def test_the_wallboard_shows_a_scripted_peak_as_queue_log_has_it(
    hotline: Hotline, ami: AMIClient
) -> None:
    config = hotline.config
    with unit_of_work(hotline.sessions) as session:
        add_user(session, "boss", hash_password(PASSWORD), "supervisor", None)
    stat = config.queue_log.stat()
    inode, offset = stat.st_ino, stat.st_size
    never = await scripted_agent(hotline, ami, "never-answers", answer_after="never")
    floor_agents = demo_agents(config, hotline.sessions, 3)
    await log_in_agent(hotline, ami, never)
    plan = FloorPlan(
        agents=3, calls_per_minute=20, minutes=0.4, answer_after=1, talk=4, line="12300"
    )
    app = create_app(config, hotline.sessions, follow_ami=True)
    joins = ami.subscribe("QueueCallerJoin")
    shots: dict[str, float] = {}
    try:
        with serve_console(app, free_port()) as base:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox"]
                )
                page = await browser.new_page(viewport={"width": 1920, "height": 1080})
                await page.goto(f"{base}/login")
                await page.fill("#username", "boss")
                await page.fill("#password", PASSWORD)
                await page.click("#login")
                await page.wait_for_url(lambda url: "/login" not in url)
                await page.goto(f"{base}/wallboard")
                link = page.locator("#wb-link")
                await expect(link).to_have_attribute("data-state", "live", timeout=15000)
                offered = page.locator('section[data-queue="all"] [data-f="offered"]')
                await expect(offered).to_have_text("0", timeout=5000)

                async def pause_one() -> None:  # a supervisor's QueuePause over AMI
                    await asyncio.sleep(8)
                    await pause(ami, membership(floor_agents[0]), "meeting")

                async def first_join() -> float:
                    await wait_for_event(joins, lambda e: True, 30)
                    joined = time.monotonic()
                    await expect(offered).not_to_have_text("0", timeout=5000)
                    return time.monotonic() - joined

                pauser = asyncio.create_task(pause_one())
                latency = asyncio.create_task(first_join())
                figures = await run_floor(config, hotline.sessions, ami, plan, lambda f: None)
                await pauser
                shots["event_to_screen_seconds"] = await latency
                # the lines, read here from the file (the wallboard read them into the store)
                events = read_from(config.queue_log, inode, offset).events
                queues = {
                    q.name: (q.service_level_seconds, q.wrapup_seconds) for q in config.queues
                }
                logins = [a.user.username for a in floor_agents] + [never.login]
                expected = expected_board(events, queues, logins)
                for key, tiles in expected.items():
                    section = page.locator(f'section[data-queue="{key}"]')
                    for name, text in tiles.items():
                        kind, _, state = name.partition(":")
                        cell = (
                            section.locator(f'[data-a="{state}"]')
                            if kind == "agent"
                            else section.locator(f'[data-f="{name}"]')
                        )
                        await expect(cell).to_have_text(text, timeout=15000)
                shown = {
                    key: {
                        name: await page.locator(
                            f'section[data-queue="{key}"] [data-f="{name}"]'
                        ).inner_text()
                        for name in tiles
                        if ":" not in name
                    }
                    for key, tiles in expected.items()
                }
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "wallboard-1920x1080.png"))
                await page.set_viewport_size({"width": 1366, "height": 768})
                await page.screenshot(path=str(ARTIFACTS / "wallboard-1366x768.png"))
                await page.goto(f"{base}/wallboard?compact=1")
                await expect(link).to_have_attribute("data-state", "live", timeout=15000)
                await page.screenshot(path=str(ARTIFACTS / "wallboard-compact-1366x768.png"))
                await browser.close()
    finally:
        ami.unsubscribe(joins)
        await log_out_everyone(hotline, ami)
    (ARTIFACTS / "wallboard.json").write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(),
                "placed": figures.placed,
                "shown": shown,
                "expected": expected,
                **shots,
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    assert figures.placed >= 4 and figures.offered == figures.placed
    assert int(expected["all"]["offered"]) == figures.offered
    assert shots["event_to_screen_seconds"] < 1.0, shots
