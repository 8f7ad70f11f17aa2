"""/healthz and /metrics on the real Asterisk: unhealthy when the robot's AMI link dies for good
or the spool fills, healthy again when they are back; metrics parsed after a real call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import time

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from callback_robot.runner import Robot
from core.config import CallWindow, HotlineConfig
from hotline.app import Hotline, ami_client
from hotline.health import Probe, health_router
from ivr.store import CallStart
from telephony.ami import AMIClient
from tests.support.calls import calls_ended, citizen_call, speech_file, ticket_of_call

NEW_REQUEST = "w1.5|d1|w1.5|d1|w1.5|d2|w7|p{voice}|w1|d#"


def with_robot(config: HotlineConfig, enabled: bool) -> HotlineConfig:
    robot = config.robot.model_copy(
        update={
            "enabled": enabled,
            "call_windows": [CallWindow(start=time(0, 0), end=time(23, 59, 59))],
        }
    )
    return config.model_copy(update={"robot": robot})


async def client_for(probe: Probe) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(health_router(probe))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hotline")


@pytest.fixture
async def running_robot(hotline: Hotline) -> AsyncIterator[Robot]:
    """A robot with an AMI link of its own to the real Asterisk."""
    link = ami_client(hotline.config)
    await link.connect()
    robot = Robot(
        with_robot(hotline.config, True),
        link,
        hotline.sessions,
        robot_id="health-test",
        dispatch_seconds=1,
    )
    await robot.start()
    yield robot
    await robot.stop()
    await link.close()


async def test_healthz_unhealthy_at_once_when_the_robots_ami_link_is_gone_for_good(
    hotline: Hotline, ami: AMIClient, running_robot: Robot
) -> None:
    probe = Probe(with_robot(hotline.config, True), hotline.store, hotline.server, ami)
    probe.robot.set(running_robot)
    async with await client_for(probe) as client:
        healthy = await client.get("/healthz")
        assert healthy.status_code == 200, healthy.json()
        assert set(healthy.json()["checks"]) == {
            "asterisk",
            "database",
            "fastagi",
            "robot",
            "spool",
            "disk",
        }
        await running_robot.ami.close()  # the robot's link, killed for good
        sick = await client.get("/healthz")
    assert sick.status_code == 503
    robot = sick.json()["checks"]["robot"]
    assert robot["ok"] is False and "AMI link is down" in robot["detail"]
    assert sick.json()["checks"]["asterisk"]["ok"] is True  # Asterisk itself is fine


async def test_healthz_unhealthy_while_intents_wait_in_the_spool(
    hotline: Hotline, ami: AMIClient
) -> None:
    probe = Probe(with_robot(hotline.config, False), hotline.store, hotline.server, ami)
    async with await client_for(probe) as client:
        assert (await client.get("/healthz")).status_code == 200
        await hotline.store.spool_intent(CallStart("1700000500.1", "13800000500", "12345", None))
        sick = await client.get("/healthz")
        assert sick.status_code == 503
        assert "tickets: 1 waiting" in sick.json()["checks"]["spool"]["detail"]
        await asyncio.to_thread(hotline.store.spool.replay, hotline.store.apply)
        assert (await client.get("/healthz")).status_code == 200


async def test_metrics_after_a_real_call_parse_with_prometheus_client(
    hotline: Hotline, ami: AMIClient
) -> None:
    voice = speech_file(hotline.config.state_dir / "voices", "네")
    result = await citizen_call(ami, "12345", NEW_REQUEST.format(voice=voice), caller="13200132099")
    await calls_ended(hotline, result.uniqueid)
    assert ticket_of_call(hotline, result.uniqueid) is not None
    probe = Probe(with_robot(hotline.config, False), hotline.store, hotline.server, ami)
    async with await client_for(probe) as client:
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert samples[("hotline_tickets_created_total", (("source", "ivr"),))] >= 1
    assert samples[("hotline_agi_requests_total", (("result", "done"), ("route", "ivr")))] >= 1
    assert samples[("hotline_calls_ended_total", (("outcome", "ticket"),))] >= 1
    assert samples[("hotline_agi_command_seconds_count", (("command", "RECORD FILE"),))] >= 1
    assert families["hotline_agi_command_seconds"].type == "histogram"
    assert ("hotline_spool_pending", (("spool", "tickets"),)) in samples
    assert "hotline_ami_reconnects" in families and "hotline_callback_attempts" in families
