"""A lost node's calls in flight, settled once; a node that answers again, rejoined (issue 22).

When a node dies its calls die with it, but no OriginateResponse and no
survey-end will ever say so. The robot that finds it lost (`callback_robot.nodes.is_lost`)
marks it in the store and settles its attempts in flight in the same
transaction: `partial` when the citizen gave answers before the line went,
otherwise `failed` with the cause "node lost". Nothing is redialled: the
attempt is over, and the ticket's next attempt is a new one that waits for the
retry interval of that outcome, counted from the moment of the loss.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from callback_robot.answers import answers_of
from callback_robot.attempts import attempts_in_flight, finish_attempt
from callback_robot.claim import take_robot_lock
from core.vocabulary import AttemptOutcome
from db.cluster import mark_lost, mark_rejoined

log = logging.getLogger(__name__)

NODE_LOST = "node lost"


def settle_lost_node(
    session: Session, node: str, at: datetime, robot_id: str = "robot"
) -> list[tuple[int, str]] | None:
    """Mark `node` lost and settle its attempts in flight; None if it was already marked.

    Under the robot lock, as the claims are: of the robots that notice the loss
    together, the first marks it and settles while the others wait, then find it
    marked and change nothing (`db.cluster.mark_lost` is True only for the first);
    and no claim picks the node halfway through. Returns (attempt id, outcome)
    of the attempts settled.
    """
    take_robot_lock(session, robot_id, at)
    if not mark_lost(session, node, at):
        return None
    settled: list[tuple[int, str]] = []
    for attempt in attempts_in_flight(session, node=node):
        answered = bool(answers_of(session, attempt.id))
        outcome = AttemptOutcome.PARTIAL if answered else AttemptOutcome.FAILED
        finish_attempt(session, attempt.id, outcome, NODE_LOST, at=at)
        settled.append((attempt.id, outcome.value))
    return settled


def rejoin_node(session: Session, node: str, at: datetime) -> bool:
    """The node answers again: it may take calls; whether it had been lost."""
    return mark_rejoined(session, node, at)


def log_lost(node: str, settled: list[tuple[int, str]] | None) -> None:
    """One warning for the node, and one per attempt settled (its id is the key, not a number)."""
    if settled is None:
        return
    log.warning(
        "node %s lost (AMI unreachable and inactive in Kamailio beyond the grace): "
        "%d attempts in flight settled, none redialled",
        node,
        len(settled),
    )
    for attempt_id, outcome in settled:
        log.warning("attempt %s on lost node %s: %s (%s)", attempt_id, node, outcome, NODE_LOST)
