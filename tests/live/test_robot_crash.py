"""kill -9 the robot again and again mid-campaign: no attempt dialled twice, no ticket lost."""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
from datetime import UTC, datetime

import yaml
from sqlalchemy import select

from callback_robot.reporting import robot_figures
from core.vocabulary import AttemptOutcome, AttemptState
from db.models import CallbackAttempt
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.survey import closed_ticket, number_for
from tools.local_asterisk.local import LocalAsterisk

KILLS = 20


def campaign_config(hotline: Hotline) -> str:
    """The session's config with an all-day window and immediate retries."""
    data = yaml.safe_load(hotline.config.source.read_text())
    data["robot"] = {
        **data.get("robot", {}),
        "call_windows": [{"start": "00:00", "end": "23:59:59"}],
        "max_channels": 4,
        "calls_per_minute": 120,
        "max_attempts": 20,
        "max_attempts_per_day": 20,
        "max_unanswered": 20,
        "max_partial": 20,
        "retry_after_minutes": {"no_answer": 0, "busy": 0, "failed": 0, "partial": 0},
    }
    path = hotline.config.source.with_name("campaign.yaml")
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def robot(config: str, log: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hotline.cli", "robot", "run", "--config", config],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def test_kill_9_twenty_times_never_double_dials_nor_loses_a_ticket(
    hotline: Hotline,
    ami: AMIClient,
    asterisk: LocalAsterisk,
) -> None:
    config = campaign_config(hotline)
    tickets = [closed_ticket(hotline, await number_for(ami, "answers_1_1_1"))[0] for _ in range(16)]
    messages = asterisk.state / "log" / "messages.log"
    log_start = messages.stat().st_size
    started = datetime.now(UTC)
    chance = random.Random(4573)
    with open(hotline.config.state_dir / "robot-crash.log", "wb") as log:
        for _ in range(KILLS):
            proc = robot(config, log)
            await asyncio.sleep(chance.uniform(0.5, 4.0))
            proc.kill()  # SIGKILL: no clean-up of any kind
            proc.wait()
        proc = robot(config, log)
        try:
            deadline = asyncio.get_running_loop().time() + 180
            while True:
                with unit_of_work(hotline.sessions) as session:
                    done = session.scalars(
                        select(CallbackAttempt.ticket_id).where(
                            CallbackAttempt.ticket_id.in_(tickets),
                            CallbackAttempt.outcome == AttemptOutcome.COMPLETED,
                        )
                    ).all()
                    open_rows = (
                        session.query(CallbackAttempt)
                        .filter(
                            CallbackAttempt.ticket_id.in_(tickets),
                            CallbackAttempt.state != AttemptState.DONE,
                        )
                        .count()
                    )
                if set(done) == set(tickets) and open_rows == 0:
                    break
                assert asyncio.get_running_loop().time() < deadline, "campaign never finished"
                await asyncio.sleep(1)
        finally:
            proc.terminate()
            proc.wait(30)
    with unit_of_work(hotline.sessions) as session:
        attempts = session.scalars(
            select(CallbackAttempt).where(CallbackAttempt.ticket_id.in_(tickets))
        ).all()
        figures = robot_figures(session, started, datetime.now(UTC), hotline.config.timezone)
    completed = [a for a in attempts if a.outcome == AttemptOutcome.COMPLETED]
    assert sorted(a.ticket_id for a in completed) == sorted(tickets)  # each exactly once
    # Asterisk's own log: every attempt reached the survey at most once (no double dial)
    log = messages.read_bytes()[log_start:].decode("utf-8", "replace")
    reached = re.findall(r"NoOp\([^,]+, \"survey attempt (\d+) ticket", log)
    assert len(reached) == len(set(reached))
    assert {int(a) for a in reached} >= {a.id for a in completed}
    # the report adds up: every attempt counted once, by its outcome
    assert figures.placed == len(attempts) and figures.completed == len(tickets)
    by_outcome = sum(sum(day.values()) for day in figures.by_day.values())
    assert by_outcome == len(attempts)
