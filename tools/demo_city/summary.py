"""What `generate_demo_city` reports: counts and the city's overall figures.

The figures are counted from the rows as each chunk is generated, so the
command can print them without reading the store back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.vocabulary import AttemptOutcome, TicketStatus
from tools.demo_city.data import SEED_CITY_PUBLISHED
from tools.demo_city.rows import Chunk


@dataclass(frozen=True)
class DemoSummary:
    """What was written, and the city's overall figures (from the generated rows)."""

    departments: int
    tickets: int
    events: int
    attempts: int
    answers: int
    valid_callbacks: int
    first_day: date
    last_day: date
    # None where there is nothing to divide by (no data is not 0%, as in reports.metrics)
    completion: float | None  # closed or archived / accepted
    response: float | None  # contacted / valid callbacks
    resolution: float | None  # resolved / valid callbacks
    satisfaction: float | None  # (satisfied + basically satisfied) / valid callbacks
    robot_success: float | None  # completed attempts / attempts placed
    # what was planted for the monthly analysis to find (surges, the over-claiming unit)
    planted: tuple[str, ...] = ()

    def against_seed_city(self) -> list[tuple[str, float | None, float]]:
        """(rate name, the demo city's figure, the seed city's published figure)."""
        mine = (
            self.completion,
            self.response,
            self.resolution,
            self.satisfaction,
            self.robot_success,
        )
        return [
            (name, value, target)
            for (name, target), value in zip(SEED_CITY_PUBLISHED.items(), mine, strict=True)
        ]


@dataclass
class Totals:
    """Running counts over the chunks generated so far: what the summary is made of."""

    tickets: int = 0
    closed: int = 0
    events: int = 0
    attempts: int = 0
    completed: int = 0
    answers: int = 0
    valid: int = 0
    contacted: int = 0
    resolved: int = 0
    satisfied: int = 0  # satisfied or basically satisfied

    def add(self, chunk: Chunk) -> None:
        self.tickets += len(chunk.tickets)
        self.closed += sum(
            1 for t in chunk.tickets if t["status"] in (TicketStatus.CLOSED, TicketStatus.ARCHIVED)
        )
        self.events += len(chunk.events)
        self.attempts += len(chunk.attempts)
        self.completed += sum(1 for a in chunk.attempts if a["outcome"] == AttemptOutcome.COMPLETED)
        self.answers += len(chunk.answers)
        self.valid += len(chunk.valid)
        self.contacted += sum(1 for v in chunk.valid if v["contacted"] == 1)
        self.resolved += sum(1 for v in chunk.valid if v["resolved"] == 1)
        self.satisfied += sum(1 for v in chunk.valid if v["satisfaction"] in (1, 2))

    def summary(
        self, departments: int, first_day: date, last_day: date, planted: tuple[str, ...] = ()
    ) -> DemoSummary:
        """The summary of everything added so far, with the lines naming what was planted."""
        return DemoSummary(
            departments=departments,
            tickets=self.tickets,
            events=self.events,
            attempts=self.attempts,
            answers=self.answers,
            valid_callbacks=self.valid,
            first_day=first_day,
            last_day=last_day,
            completion=_ratio(self.closed, self.tickets),
            response=_ratio(self.contacted, self.valid),
            resolution=_ratio(self.resolved, self.valid),
            satisfaction=_ratio(self.satisfied, self.valid),
            robot_success=_ratio(self.completed, self.attempts),
            planted=planted,
        )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
