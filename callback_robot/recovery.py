"""On start: attempts a crash left `dialing` or `in_call` get a truthful outcome.

Nothing is redialled: an attempt whose channel Asterisk still has is left to
finish; one that gave answers before the crash is `partial`; one that never
reached the survey is `failed` with the reason in its hangup cause, so the
ticket can be tried again later as a *new* attempt, within the limits.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from callback_robot import cdr
from callback_robot.answers import answers_of
from callback_robot.attempts import attempts_in_flight, finish_attempt
from core.vocabulary import AttemptOutcome
from db.session import unit_of_work
from telephony.ami import AMIClient, AMIError

log = logging.getLogger(__name__)


async def live_attempt_ids(ami: AMIClient) -> set[int]:
    """Attempt ids carried by the channels Asterisk has right now (ringing or in a survey)."""
    queue = ami.subscribe("CoreShowChannel", "CoreShowChannelsComplete")
    try:
        await ami.action("CoreShowChannels")
        channels: list[str] = []
        while True:
            event = await asyncio.wait_for(queue.get(), 10)
            if event.name == "CoreShowChannelsComplete":
                break
            channels.append(event.get("Channel"))
    finally:
        ami.unsubscribe(queue)
    live: set[int] = set()
    for channel in channels:
        try:
            value = await ami.action("Getvar", Channel=channel, Variable="HOTLINE_ATTEMPT")
        except AMIError:
            continue  # the channel ended meanwhile
        if value.get("Value", "").isdigit():
            live.add(int(value["Value"]))
    return live


def resolve(
    sessions: sessionmaker[Session],
    live: set[int],
    started_before: datetime | None = None,
    records: dict[int, str] | None = None,
) -> list[tuple[int, str]]:
    """`settle` in one transaction of its own, in this thread; logged."""
    with unit_of_work(sessions) as session:
        resolved = settle(session, live, started_before, records)
    log_settled(resolved)
    return resolved


def settle(
    session: Session,
    live: set[int],
    started_before: datetime | None = None,
    records: dict[int, str] | None = None,
    node: str | None = None,
) -> list[tuple[int, str]]:
    """Give every orphaned in-flight attempt an outcome; returns (attempt id, outcome).

    The outcome comes from Asterisk's call record of the attempt (`records`:
    attempt id -> CDR disposition) when there is one; answers already given
    make it `partial`; with no record at all the call never reached Asterisk
    and the attempt is `failed`. Attempts started after `started_before` are
    left alone: their Originate may not have a channel yet.

    `node` (a cluster): only the attempts that node dials, `live` being its
    channels; without `records` its call records are read from the store, where
    its node daemon ships them.
    """
    orphans = [
        attempt
        for attempt in attempts_in_flight(session, node)
        if attempt.id not in live
        and not (started_before and attempt.started_at and attempt.started_at > started_before)
    ]
    if records is None:
        records = cdr.stored_dispositions(session, node, orphans) if node is not None else {}
    resolved = []
    for attempt in orphans:
        disposition = records.get(attempt.id)
        if answers_of(session, attempt.id):
            outcome, why = AttemptOutcome.PARTIAL, "answers given, then the call was lost"
        elif disposition is not None:
            outcome = cdr.OUTCOMES.get(disposition, AttemptOutcome.FAILED)
            why = f"from Asterisk's call record: {disposition}"
        else:
            outcome, why = AttemptOutcome.FAILED, "no call record: never reached Asterisk"
        finish_attempt(session, attempt.id, outcome, f"robot restarted; {why}")
        resolved.append((attempt.id, outcome.value))
    return resolved


def log_settled(resolved: list[tuple[int, str]]) -> None:
    for attempt_id, outcome in resolved:
        log.warning(
            "attempt %s left in flight by a crash: recorded as %s, not redialled",
            attempt_id,
            outcome,
        )
