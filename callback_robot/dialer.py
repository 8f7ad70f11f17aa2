"""Placing one survey call over AMI, with the attempt row written first.

The attempt row (state `dialing`) is committed before the Originate is sent,
its ActionID is the attempt's id, and the channel carries the attempt and
ticket ids. If Asterisk answers, the survey flow and `survey-end` give the
outcome; if not, the OriginateResponse reason does. If the AMI link drops
before Asterisk answers the Originate, or its OriginateResponse does not come
in time, the attempt stays `dialing` for the recovery job to resolve from
Asterisk's own records: it is never re-sent. The attempt row and the outcomes
are written through the robot's gateway (`callback_robot.store`): retried, and
an outcome spooled when the store stays away.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from callback_robot.store import AttemptEnded, RobotStore
from callback_robot.tokens import attempt_token
from core.config import HotlineConfig
from core.phone_numbers import BadPhoneNumber, checked
from core.vocabulary import AttemptOutcome
from telephony.ami import AMIActionError, AMIClient, AMIDisconnected

log = logging.getLogger(__name__)

# Asterisk's OriginateResponse reasons (AST_CONTROL_*): what a not-answered call means
REASON_OUTCOMES = {
    0: AttemptOutcome.FAILED,  # the channel could not be created
    1: AttemptOutcome.NO_ANSWER,  # hung up while ringing (rejected)
    3: AttemptOutcome.NO_ANSWER,  # rang until the ring timeout
    5: AttemptOutcome.BUSY,
    8: AttemptOutcome.FAILED,  # congestion
}
ANSWERED = 4


class Dialer:
    def __init__(
        self,
        config: HotlineConfig,
        ami: AMIClient,
        sessions: sessionmaker[Session],
        robot_id: str = "robot",
        store: RobotStore | None = None,
    ) -> None:
        self.config = config
        self.ami = ami
        self.sessions = sessions
        self.robot_id = robot_id
        self.store = store or RobotStore(config, sessions)
        self.key = config.agi_key()

    async def dial(self, ticket_id: int, planned_at: datetime) -> int:
        """Write one attempt for a ticket and place it (manual use; the robot claims in bulk)."""
        attempt_id, number = await self.store.begin_attempt(ticket_id, planned_at, self.robot_id)
        await self.place(attempt_id, ticket_id, number)
        return attempt_id

    async def place(
        self, attempt_id: int, ticket_id: int, number: str, node: str | None = None
    ) -> None:
        """Originate an attempt that is already written; settle its outcome if unanswered.

        A number that is not a phone number never reaches the dial string: the
        attempt fails with the reason, nothing is sent to Asterisk. `node` is the
        claim's choice, for the log; this dialer's AMI link is that node's.
        """
        try:
            checked(number, f"ticket {ticket_id}'s caller number")
        except BadPhoneNumber:
            log.error("attempt %s not dialled: the caller number is not a phone number", attempt_id)
            await self._finish(attempt_id, AttemptOutcome.FAILED, "not a phone number")
            return
        channel = self.config.asterisk.outbound_channel.format(number=number)
        if node is not None:
            log.info("attempt %s (ticket %s): dialled through node %s", attempt_id, ticket_id, node)
        try:
            result = await self.ami.originate(
                channel,
                context="hotline-survey",
                exten="s",
                variables={
                    "HOTLINE_ATTEMPT": str(attempt_id),
                    "HOTLINE_TICKET": str(ticket_id),
                    # proves to the survey route that this channel is the robot's own
                    "HOTLINE_ATTEMPT_TOKEN": attempt_token(self.key, attempt_id),
                    # lets recovery read the outcome back from Asterisk's CDRs
                    "CDR(userfield)": f"attempt-{attempt_id}",
                },
                caller_id=self.config.robot.caller_id,
                timeout_ms=self.config.robot.ring_timeout_seconds * 1000,
                action_id=f"attempt-{attempt_id}",
            )
        except AMIDisconnected as exc:
            log.warning(
                "attempt %s: AMI link lost before Asterisk answered (%s); left "
                "dialing for recovery, never re-sent",
                attempt_id,
                exc,
            )
            return
        except AMIActionError as exc:
            log.error("attempt %s: Asterisk refused the Originate: %s", attempt_id, exc)
            await self._finish(attempt_id, AttemptOutcome.FAILED, str(exc))
            return
        except TimeoutError:
            log.warning(
                "attempt %s: no OriginateResponse in time; left dialing for recovery, "
                "never re-sent",
                attempt_id,
            )
            return
        except Exception:
            log.exception("attempt %s: Originate failed; left dialing for recovery", attempt_id)
            return
        if result.reason != ANSWERED:
            outcome = REASON_OUTCOMES.get(result.reason, AttemptOutcome.FAILED)
            await self._finish(attempt_id, outcome, f"reason {result.reason}")

    async def _finish(self, attempt_id: int, outcome: AttemptOutcome, cause: str) -> None:
        await self.store.record(AttemptEnded(attempt_id, outcome.value, cause))
