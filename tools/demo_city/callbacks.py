"""The robot's callbacks on a closed demo ticket, and the survey behind the three rates.

Attempts follow the real robot's rules from config.robot (call windows,
retry delays, at most one attempt a day, limits on attempts, partial and
unanswered calls, opted-out numbers), so the demo's attempts look like its
own. A completed survey gives three answers and a valid callback; whether
the citizen was contacted, the problem resolved and the citizen satisfied
depends on the unit's quality and the problem's difficulty (calibration),
and an unresolved or unsatisfied answer may send the ticket back (重办).
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from callback_robot.windows import next_window_start
from core.config import HotlineConfig
from core.vocabulary import AttemptOutcome, AttemptState, EventKind, Question
from db import bulk
from tools.demo_city.calibration import (
    SLOPE_RESOLUTION,
    SLOPE_RESPONSE,
    SLOPE_UNSATISFIED,
    UNRESOLVED_UNSATISFIED,
    Model,
    sigmoid,
)
from tools.demo_city.data import CALL_SECONDS, HANGUP_CAUSE, OUTCOMES
from tools.demo_city.draws import cumulative, minutes
from tools.demo_city.handling import office
from tools.demo_city.rows import SOURCE, Chunk, Event, Ids, utc
from tools.demo_city.tree import Unit


@dataclass(frozen=True)
class Case:
    """What the robot's callback needs to know about a ticket."""

    ticket_id: int
    unit: Unit  # the unit that closed it (the valid callback counts for it)
    caller: str
    difficulty: float  # of the problem: shifts the chance it was resolved
    events: list[Event]


class Robot:
    """The callback robot as the demo plays it: attempts, answers and valid callbacks as rows."""

    def __init__(
        self,
        rng: random.Random,
        config: HotlineConfig,
        model: Model,
        ids: Ids,
        cutoff: datetime,
    ) -> None:
        self.rng = rng
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.model = model
        self.ids = ids
        self.cutoff = cutoff  # local midnight after `until`: nothing later is written
        self.outcomes = cumulative([share for _, share in OUTCOMES])
        self.opted_out: set[str] = set()
        self.resolved: int | None = None  # the last call_back's survey answer, if any

    def _window(self, at: datetime) -> datetime | None:
        """`at` or the start of the robot's next call window (naive local; None if none soon)."""
        start = next_window_start(at.replace(tzinfo=self.tz), self.config.robot, self.tz)
        return None if start is None else start.replace(tzinfo=None)

    def call_back(self, rows: Chunk, case: Case, closed: datetime) -> datetime:
        """Robot attempts after closing; a completed survey may send the ticket back (重办).

        Returns when the ticket was (last) closed; `self.resolved` is the survey's
        "resolved" answer (1 yes, 2 no), None when no survey was completed.
        """
        rng, robot = self.rng, self.config.robot
        self.resolved = None
        if case.caller in self.opted_out or rng.random() > 0.93:
            return closed  # asked not to be called, or called back on the main platform
        planned = self._window(closed + timedelta(hours=robot.min_hours_after_close))
        previous, partials, unanswered = None, 0, 0
        for attempt_no in range(1, robot.max_attempts + 1):
            if planned is None or planned >= self.cutoff:
                return closed
            started = planned + timedelta(seconds=rng.randrange(5, 1200))
            outcome = OUTCOMES[bisect(self.outcomes, rng.random() * self.outcomes[-1])][0]
            ended = started + self._call_length(outcome)
            if ended >= self.cutoff:
                return closed
            attempt_id = self.ids.take("callback_attempts")
            times = (planned, started, ended)
            rows.attempts.append(
                self._attempt_row(attempt_id, case, attempt_no, previous, outcome, times)
            )
            if outcome == AttemptOutcome.COMPLETED:
                return self._survey(rows, case, attempt_id, attempt_no, started, ended, closed)
            if outcome == AttemptOutcome.PARTIAL:  # hung up after one or two answers
                values = self._answer_values(case)[: rng.randint(1, 2)]
                self._answers(rows, case, attempt_id, started, values)
                partials += 1
            elif outcome == AttemptOutcome.OPTED_OUT:
                self.opted_out.add(case.caller)
                return closed
            else:
                unanswered += 1
            if partials >= robot.max_partial or unanswered >= robot.max_unanswered:
                return closed
            previous = attempt_id
            retry = timedelta(minutes=robot.retry_after_minutes[outcome.value])  # type: ignore[index]
            next_day = datetime.combine(ended.date() + timedelta(days=1), time(0))
            planned = self._window(max(ended + retry, next_day))  # one attempt a day
        return closed

    def _attempt_row(
        self,
        attempt_id: int,
        case: Case,
        attempt_no: int,
        previous: int | None,
        outcome: AttemptOutcome,
        times: tuple[datetime, datetime, datetime],
    ) -> bulk.Row:
        """A finished attempt as the robot leaves it; times: planned, started, ended (local)."""
        planned, started, ended = times
        return {
            "id": attempt_id,
            "ticket_id": case.ticket_id,
            "attempt_no": attempt_no,
            "previous_attempt_id": previous,
            "planned_at": utc(planned, self.tz),
            "state": AttemptState.DONE,
            "outcome": outcome,
            "claimed_by": SOURCE,
            "started_at": utc(started, self.tz),
            "ended_at": utc(ended, self.tz),
            "hangup_cause": HANGUP_CAUSE[outcome],
        }

    def _call_length(self, outcome: AttemptOutcome) -> timedelta:
        if outcome == AttemptOutcome.NO_ANSWER:  # rang until the robot gave up
            return timedelta(seconds=self.config.robot.ring_timeout_seconds + 1)
        low, high = CALL_SECONDS[outcome]
        return timedelta(seconds=self.rng.randint(low, high))

    def _answer_values(self, case: Case) -> list[int]:
        """contacted, resolved, satisfaction (1 best) for this unit and this kind of problem."""
        rng = self.rng
        q = case.unit.quality
        contacted = 1 if rng.random() < sigmoid(self.model.response + SLOPE_RESPONSE * q) else 2
        difficulty = case.difficulty + case.unit.resolution_shift
        resolved_p = sigmoid(self.model.resolution + SLOPE_RESOLUTION * (q + difficulty))
        resolved = 1 if rng.random() < resolved_p else 2
        unhappy = self.model.unsatisfied - SLOPE_UNSATISFIED * q
        unhappy += UNRESOLVED_UNSATISFIED if resolved == 2 else 0.0
        if rng.random() < sigmoid(unhappy):
            satisfaction = 3
        else:
            satisfaction = 1 if rng.random() < (0.86 if resolved == 1 else 0.45) else 2
        return [contacted, resolved, satisfaction]

    def _answers(
        self, rows: Chunk, case: Case, attempt_id: int, started: datetime, values: list[int]
    ) -> None:
        """One row per answer, a few seconds apart as the prompts play."""
        for offset, (question, answer) in enumerate(zip(Question, values, strict=False)):
            rows.answers.append(
                {
                    "id": self.ids.take("survey_answers"),
                    "attempt_id": attempt_id,
                    "ticket_id": case.ticket_id,
                    "question": question,
                    "answer": answer,
                    "via": "dtmf",
                    "answered_at": utc(started + timedelta(seconds=18 + 13 * offset), self.tz),
                }
            )

    def _survey(
        self,
        rows: Chunk,
        case: Case,
        attempt_id: int,
        attempt_no: int,
        started: datetime,
        ended: datetime,
        closed: datetime,
    ) -> datetime:
        """A completed survey: three answers, one valid callback, maybe rework and a re-close."""
        rng, unit, events = self.rng, case.unit, case.events
        values = self._answer_values(case)
        self._answers(rows, case, attempt_id, started, values)
        contacted, resolved, satisfaction = values
        self.resolved = resolved
        rows.valid.append(
            {
                "id": self.ids.take("valid_callbacks"),
                "ticket_id": case.ticket_id,
                "attempt_id": attempt_id,
                "department_id": unit.id,
                "surveyed_at": utc(ended, self.tz),
                "contacted": contacted,
                "resolved": resolved,
                "satisfaction": satisfaction,
                "source": SOURCE,
            }
        )
        events.append((ended, EventKind.SURVEYED, None, "robot", f"attempt {attempt_no}"))
        if (resolved == 2 or satisfaction == 3) and rng.random() < 0.5:
            reason = "回访未解决，发回重办" if resolved == 2 else "回访不满意，发回重办"
            at = ended + timedelta(minutes=2)
            events.append((at, EventKind.REWORK, unit.id, "robot", reason))
            closed = office(rng, at + minutes(rng, 36 * 60, 0.6))
            events.append((closed, EventKind.CLOSED, unit.id, unit.code, "重办后办结"))
        return closed
