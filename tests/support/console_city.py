"""A small city for the console tests: the metrics city, calls with real WAV recordings,
tickets dispatched to streets, robot attempts with answers, and one account per role.

S1 staff (`s1`) may see S1 and V1; S2 staff (`s2`) may see S2 only.
"""

from __future__ import annotations

import math
import re
import struct
import wave
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.vocabulary import (
    AttemptOutcome,
    AttemptState,
    CallDirection,
    EventKind,
    Question,
)
from dashboard.auth import hash_password
from dashboard.users import add_user
from db.models import Call, CallbackAttempt, SurveyAnswer, ValidCallback
from db.session import unit_of_work
from db.tickets import add_event, create_ticket, ticket_by_number
from tests.support.metrics_city import build_city
from tickets import handling
from tools.sandbox.console import serve_console  # noqa: F401 (re-exported for the tests)

PASSWORD = "correct horse 12345"
CALLERS = {"S1": "13812345678", "S2": "13987654321", "V1": "13700001111"}


def write_tone(path: Path, seconds: float = 6.0, rate: int = 8000) -> Path:
    """A 16-bit mono WAV: a tone whose loudness rises, so the waveform has a shape."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = bytearray()
    total = int(seconds * rate)
    for i in range(total):
        amplitude = 2000 + 20000 * i / total
        frames += struct.pack("<h", int(amplitude * math.sin(2 * math.pi * 440 * i / rate)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


@dataclass
class ConsoleCity:
    tickets: dict[str, str] = field(default_factory=dict)  # unit code -> ticket number
    calls: dict[str, int] = field(default_factory=dict)  # unit code -> call id
    missing_call: int = 0  # a call whose recording file is gone
    survey_call: int = 0


def build_console_city(
    sessions: sessionmaker[Session], config: HotlineConfig, now: datetime | None = None
) -> ConsoleCity:
    """Fill an empty migrated store (see module docstring)."""
    now = now or datetime.now(UTC)
    city = ConsoleCity()
    recordings = config.recordings_dir
    with unit_of_work(sessions) as session:
        units = build_city(session)
        for code in ("S1", "S2", "V1"):
            uniqueid = f"{1700000000 + len(city.calls)}.{len(city.calls) + 1}"
            base = recordings / "2026" / "11" / "20" / f"{uniqueid}_12345_{CALLERS[code]}"
            whole = write_tone(base.with_suffix(".wav"))
            request = write_tone(Path(f"{base}-request.wav"), 3.0)
            ticket = create_ticket(
                session,
                caller_number=CALLERS[code],
                local_day=now.date(),
                accepted_at=now - timedelta(hours=2),
                recording_path=str(request),
                origin_uniqueid=uniqueid,
                description=f"{code} 路灯不亮",
                category="城市管理",
            )
            ticket.transcript = f"{code} 小区路灯坏了"
            call = Call(
                uniqueid=uniqueid,
                direction=CallDirection.INBOUND,
                caller_number=CALLERS[code],
                did="12345",
                started_at=now - timedelta(hours=2, minutes=len(city.calls)),
                answered_at=now - timedelta(hours=2),
                ended_at=now - timedelta(hours=2) + timedelta(seconds=95),
                recording_path=str(whole),
                ticket_id=ticket.id,
                last_step="readback",
            )
            session.add(call)
            session.flush()
            handling.dispatch(session, ticket.number, code, "test", config)
            city.tickets[code], city.calls[code] = ticket.number, call.id
        gone = Call(
            uniqueid="1700000100.9",
            direction=CallDirection.INBOUND,
            caller_number="13600002222",
            did="12345001",
            started_at=now - timedelta(hours=3),
            ended_at=now - timedelta(hours=3) + timedelta(seconds=20),
            recording_path=str(recordings / "2026" / "11" / "20" / "gone.wav"),
            last_step="menu",
        )
        session.add(gone)
        session.flush()
        city.missing_call = gone.id
        city.survey_call = _survey(session, units["S2"].id, city.tickets["S2"], config, now)
        for role, name, unit in (
            ("admin", "admin", None),
            ("supervisor", "boss", None),
            ("staff", "s1", units["S1"].id),
            ("staff", "s2", units["S2"].id),
        ):
            add_user(session, name, hash_password(PASSWORD), role, unit)
    return city


def _survey(session: Session, unit_id: int, number: str, config: HotlineConfig, now) -> int:  # type: ignore[no-untyped-def]
    """A completed robot survey of S2's ticket (not satisfied: rework) with its recording."""
    ticket = ticket_by_number(session, number)
    assert ticket is not None
    at = now - timedelta(hours=1)
    path = write_tone(config.recordings_dir / "survey" / "1700000200.1_attempt1.wav", 4.0)
    call = Call(
        uniqueid="1700000200.1",
        direction=CallDirection.OUTBOUND,
        caller_number=ticket.caller_number,
        started_at=at,
        answered_at=at,
        ended_at=at + timedelta(seconds=40),
        recording_path=str(path),
        ticket_id=ticket.id,
    )
    session.add(call)
    session.flush()
    attempt = CallbackAttempt(
        ticket_id=ticket.id,
        attempt_no=1,
        planned_at=at,
        state=AttemptState.DONE,
        outcome=AttemptOutcome.COMPLETED,
        started_at=at,
        ended_at=at + timedelta(seconds=40),
        call_id=call.id,
    )
    session.add(attempt)
    session.flush()
    for question, answer in (
        (Question.CONTACTED, 1),
        (Question.RESOLVED, 2),
        (Question.SATISFACTION, 3),
    ):
        session.add(
            SurveyAnswer(
                attempt_id=attempt.id,
                ticket_id=ticket.id,
                question=question,
                answer=answer,
                answered_at=at,
            )
        )
    session.add(
        ValidCallback(
            ticket_id=ticket.id,
            attempt_id=attempt.id,
            department_id=unit_id,
            surveyed_at=at,
            contacted=1,
            resolved=2,
            satisfaction=3,
        )
    )
    add_event(session, ticket, EventKind.REWORK, actor="robot", at=at, note="群众反映未解决")
    session.flush()
    return call.id


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def login(client: TestClient, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """Log in through the form (with its pre-login CSRF token); the response of the POST."""
    form = client.get("/login")
    token = CSRF.search(form.text)
    assert token, form.text
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": token.group(1)},
        follow_redirects=False,
    )


def csrf_of(client: TestClient, path: str = "/calls") -> str:
    """The session's CSRF token, read from a page's logout form."""
    found = CSRF.search(client.get(path).text)
    assert found
    return found.group(1)
