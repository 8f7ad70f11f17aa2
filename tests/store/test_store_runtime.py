"""One way into the store inside `hotline serve`: every flow's writes take turns on one queue.

The IVR, the survey, the dialer's outcomes and the robot's claim and heartbeat,
issued at once in one process on SQLite, all run where the store runtime runs
its work: on the one store thread, or in the store process when there is one
(then the serving process itself writes nothing). Threads racing for SQLite's
file lock lost calls to the spool under load.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, event

from callback_robot.attempts import create_attempt
from callback_robot.runner import Robot
from callback_robot.store import SurveyAnswerGiven
from core.config import load_config
from core.telemetry import ATTEMPTS_ENDED
from core.vocabulary import AttemptState, Question, TicketStatus
from db.models import CallbackAttempt, RobotHeartbeat, SurveyAnswer
from db.session import unit_of_work
from db.tickets import create_ticket, ticket_for_call
from hotline.app import Hotline, create_hotline, prepare_store
from ivr.store import CallStart, TicketRequest
from telephony.ami import OriginateResult
from tests.support.config import write_config

ALWAYS_OPEN = [{"start": "00:00", "end": "23:59:59"}]


class BusyAMI:
    """An AMI link that is up and answers every Originate with "busy" (reason 5)."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.connected.set()
        self.on_connect: list[object] = []
        self.on_disconnect: list[object] = []

    async def originate(self, channel: str, **kwargs: object) -> OriginateResult:
        return OriginateResult(str(kwargs.get("action_id")), False, 5, channel, "", {})


def serve_like(tmp_path: Path, store_process: bool) -> Hotline:
    config = load_config(
        write_config(
            tmp_path,
            ivr={"store_process": store_process, "db_retry_seconds": 5},
            robot={
                "call_windows": ALWAYS_OPEN,
                "calls_per_minute": 100,
                "max_channels": 10,
                "db_retry_seconds": 5,
            },
        )
    )
    prepare_store(config)
    return create_hotline(config)


def closed_ticket(hotline: Hotline, number: str) -> int:
    closed = datetime.now(UTC) - timedelta(days=1)
    with unit_of_work(hotline.sessions) as session:
        ticket = create_ticket(
            session,
            caller_number=number,
            local_day=closed.astimezone(hotline.config.tz).date(),
            accepted_at=closed - timedelta(days=2),
        )
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = closed
        return ticket.id


def writes_seen(engine: Engine) -> list[tuple[str, str]]:
    """Every write statement this process runs on the engine: (thread name, statement)."""
    seen: list[tuple[str, str]] = []

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen.append((threading.current_thread().name, statement.split("(")[0][:40]))

    event.listen(engine, "before_cursor_execute", before)
    return seen


def due_and_in_a_survey(hotline: Hotline) -> tuple[int, int]:
    """A ticket due for its survey call, and an attempt whose survey is under way."""
    due = closed_ticket(hotline, "13800001001")
    surveyed = closed_ticket(hotline, "13800001002")
    with unit_of_work(hotline.sessions) as session:
        attempt = create_attempt(session, surveyed, datetime.now(UTC), "earlier-pass")
        attempt.state = AttemptState.IN_CALL
        return due, attempt.id


async def every_flow_at_once(hotline: Hotline, attempt_id: int) -> None:
    """An IVR call, a survey's answer and a robot's dispatch pass, all at the same moment."""
    survey = hotline.server.routes["survey"].store  # type: ignore[attr-defined]
    robot = serve_robot(hotline)
    await asyncio.gather(
        hotline.store.call_started(CallStart("1700001000.1", "13800001000", "12345", None)),
        hotline.store.ticket_for_call(TicketRequest("1700001000.1", "13800001000", "12345", None)),
        survey.record(SurveyAnswerGiven(attempt_id, Question.CONTACTED.value, 1, "dtmf")),
        robot.dispatch(),  # the claim and the heartbeat
    )
    await asyncio.gather(*robot.pending)  # the dialer's outcome of the call it placed: busy


def serve_robot(hotline: Hotline) -> Robot:
    """The robot as `hotline serve` runs it beside the IVR (`supervise_robot`, `run_robot`)."""
    return Robot(
        hotline.config,
        BusyAMI(),  # type: ignore[arg-type]
        hotline.runtime.sessions,
        robot_id="turns",
        runtime=hotline.runtime,
    )


def landed(hotline: Hotline, due: int, attempt_id: int) -> None:
    with unit_of_work(hotline.sessions) as session:
        assert ticket_for_call(session, "1700001000.1") is not None
        assert session.query(SurveyAnswer).filter_by(attempt_id=attempt_id).count() == 1
        placed = session.query(CallbackAttempt).filter_by(ticket_id=due).one()
        assert placed.outcome is not None and placed.outcome.value == "busy"
        assert session.get(RobotHeartbeat, "turns") is not None


async def test_on_the_store_thread_every_flow_of_a_process_takes_turns(tmp_path: Path) -> None:
    hotline = serve_like(tmp_path, store_process=False)
    due, attempt_id = due_and_in_a_survey(hotline)
    seen = writes_seen(hotline.sessions.kw["bind"])
    await every_flow_at_once(hotline, attempt_id)
    threads = {thread for thread, _ in seen}
    assert len(seen) >= 6, seen
    assert threads == {"store_0"}, seen  # one thread: no writer races another for the lock
    landed(hotline, due, attempt_id)


async def test_with_a_store_process_every_flow_writes_there_and_this_process_writes_nothing(
    tmp_path: Path,
) -> None:
    hotline = serve_like(tmp_path, store_process=True)
    process = hotline.store.gateway.process
    assert process is not None
    try:
        await process.start()
        due, attempt_id = due_and_in_a_survey(hotline)
        seen = writes_seen(hotline.sessions.kw["bind"])
        busy = ATTEMPTS_ENDED.labels("busy")._value.get()
        await every_flow_at_once(hotline, attempt_id)
        assert seen == []  # the survey, the dialer, the claim and the heartbeat too
        # call start, ticket, answer, claim, heartbeat, busy: each its transaction there
        assert len(process.tx_seconds) >= 6
        # the outcome committed there is counted here, in the /metrics of `hotline serve`
        assert ATTEMPTS_ENDED.labels("busy")._value.get() == busy + 1
    finally:
        await hotline.store.close()
    landed(hotline, due, attempt_id)
