"""On start: attempts a crash left `dialing` or `in_call` get a truthful outcome.

Nothing is redialled: an attempt whose channel Asterisk still has is left to
finish; one that gave answers before the crash is `partial`; one that never
reached the survey is `failed` with the reason in its hangup cause, so the
ticket can be tried again later as a *new* attempt, within the limits.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from db.models import AttemptOutcome
from db.robot import answers_of, attempts_in_flight, finish_attempt
from db.session import unit_of_work
from hotline.asterisk.ami import AMIClient

log = logging.getLogger(__name__)


async def live_attempt_ids(ami: AMIClient) -> set[int]:
    """Attempt ids of survey channels Asterisk has right now (from their dialplan data)."""
    queue = ami.subscribe("CoreShowChannel", "CoreShowChannelsComplete")
    try:
        await ami.action("CoreShowChannels")
        live: set[int] = set()
        while True:
            event = await queue.get()
            if event.name == "CoreShowChannelsComplete":
                return live
            if event.get("Context") == "hotline-survey" or "survey" in event.get("ApplicationData"):
                value = await ami.action(
                    "Getvar", Channel=event.get("Channel"), Variable="HOTLINE_ATTEMPT"
                )
                if value.get("Value", "").isdigit():
                    live.add(int(value["Value"]))
    finally:
        ami.unsubscribe(queue)


def resolve(sessions: sessionmaker[Session], live: set[int]) -> list[tuple[int, str]]:
    """Give every orphaned in-flight attempt an outcome; returns (attempt id, outcome)."""
    resolved = []
    with unit_of_work(sessions) as session:
        for attempt in attempts_in_flight(session):
            if attempt.id in live:
                continue
            outcome = (
                AttemptOutcome.PARTIAL if answers_of(session, attempt.id) else AttemptOutcome.FAILED
            )
            finish_attempt(
                session, attempt.id, outcome, "robot restarted; call no longer in Asterisk"
            )
            resolved.append((attempt.id, outcome.value))
    for attempt_id, outcome in resolved:
        log.warning(
            "attempt %s left in flight by a crash: recorded as %s, not redialled",
            attempt_id,
            outcome,
        )
    return resolved
