"""A robot's store at scale: a million closed tickets with their callback history.

Used by bench/robot_throughput.py to time the dispatcher's eligibility query
(`callback_robot.eligibility.due_tickets`) and a whole claim (`claim_due`) on realistic data:
most old tickets surveyed (the seed city's 72 %), the rest exhausted by
unanswered or unfinished calls, and the last days' tickets waiting for their
first call or their retry.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from core.vocabulary import AttemptOutcome, AttemptState, TicketStatus, Urgency
from db.bulk import insert_rows
from db.models import CallbackAttempt, Ticket, ValidCallback

RECENT_DAYS = 3  # tickets closed in these last days are still being called


def fill(session: Session, tickets: int, now: datetime, seed: int = 12345) -> dict[str, int]:
    """Insert `tickets` closed tickets over two years and their attempts; return counts."""
    rng = random.Random(seed)
    span = timedelta(days=730)
    citizens = [f"138{rng.randrange(10**8):08d}" for _ in range(int(tickets * 0.7) + 1)]
    ticket_rows, attempt_rows, valid_rows = [], [], []
    attempt_id = 0
    for tid in range(1, tickets + 1):
        closed = now - timedelta(hours=3) - span * (1 - tid / tickets)
        ticket_rows.append(
            {
                "id": tid,
                "number": f"T{tid:09d}",
                "source": "ivr",
                "caller_number": rng.choice(citizens),
                "urgency": Urgency.EMERGENCY if rng.random() < 0.05 else Urgency.DAILY_LIFE,
                "status": TicketStatus.CLOSED,
                "accepted_at": closed - timedelta(days=3),
                "closed_at": closed,
                "urge_count": 0,
            }
        )
        recent = now - closed < timedelta(days=RECENT_DAYS)
        fate = rng.random()
        if recent:  # still in the robot's hands: untried, or one unanswered call
            outcomes = [] if fate < 0.6 else [AttemptOutcome.NO_ANSWER]
        elif fate < 0.72:
            outcomes = [AttemptOutcome.COMPLETED]
        elif fate < 0.90:
            outcomes = [AttemptOutcome.NO_ANSWER, AttemptOutcome.BUSY, AttemptOutcome.NO_ANSWER]
        elif fate < 0.96:
            outcomes = [AttemptOutcome.NO_ANSWER, AttemptOutcome.PARTIAL]
        else:
            outcomes = [AttemptOutcome.COMPLETED]  # answered, a question not answered
        previous = None
        for number, outcome in enumerate(outcomes, 1):
            attempt_id += 1
            started = closed + timedelta(hours=2 + 3 * (number - 1))
            ended = started + timedelta(seconds=40)
            attempt_rows.append(
                {
                    "id": attempt_id,
                    "ticket_id": tid,
                    "attempt_no": number,
                    "previous_attempt_id": previous,
                    "planned_at": started,
                    "state": AttemptState.DONE,
                    "outcome": outcome,
                    "claimed_by": "bench",
                    "started_at": started,
                    "ended_at": ended,
                }
            )
            previous = attempt_id
            if outcome == AttemptOutcome.COMPLETED and fate < 0.72:
                valid_rows.append(
                    {
                        "ticket_id": tid,
                        "attempt_id": attempt_id,
                        "surveyed_at": ended,
                        "contacted": 1,
                        "resolved": 1,
                        "satisfaction": 1,
                        "source": "robot",
                    }
                )
    insert_rows(session, Ticket, ticket_rows)
    insert_rows(session, CallbackAttempt, attempt_rows)
    insert_rows(session, ValidCallback, valid_rows)
    return {"tickets": tickets, "attempts": len(attempt_rows), "valid": len(valid_rows)}


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
