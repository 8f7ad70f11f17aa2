"""`hotline demo-floor`: scripted agents answer scripted citizens through the real app_queue."""

from __future__ import annotations

from sqlalchemy import func, select

from db.models import Ticket
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.events import eventually
from tools.demo_floor import FloorFigures, FloorPlan, run_floor


async def test_a_floor_of_scripted_agents_answers_every_citizen(
    hotline: Hotline, ami: AMIClient
) -> None:
    plan = FloorPlan(
        agents=2, calls_per_minute=24, minutes=0.3, answer_after=0.5, talk=3, line="12300"
    )
    shown: list[FloorFigures] = []
    figures = await run_floor(hotline.config, hotline.sessions, ami, plan, shown.append)
    assert figures.placed >= 3 and shown  # a Poisson draw at 24/min for 18 s, seed fixed
    assert figures.offered == figures.placed
    assert figures.answered + figures.left == figures.offered
    assert figures.answered >= figures.placed - 1 and figures.within_level >= 1

    def agent_tickets() -> int | None:  # every answered call ends as one ticket of its agent
        with unit_of_work(hotline.sessions) as session:
            count = session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.source == "agent")
            )
        return count if count == figures.answered else None

    await eventually(agent_tickets, timeout=30, what="one ticket per answered call")
