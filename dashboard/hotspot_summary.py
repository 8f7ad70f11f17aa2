"""The stored run's `summary` JSON, read at the console's edge into typed models.

The monthly run writer (`hotline analyse --month`) stores the month's category
lines, the category × district grid, each flag's weekly series, the 每月一题
candidates, the adopted topics' progress and the knowledge base's figures as one
JSON text on `analysis_runs.summary`. The page reads it through these models:
a missing part is an empty list (a run from an older writer still shows what it
has), unknown keys are ignored, and text that is not the expected shape is
reported on the page instead of failing it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CategoryLine(_Part):
    """One line of the monthly report: "劳动纠纷 120件，环比 +20.0%，同比 +33.3%，主要反映…"."""

    category: str
    count: int = 0
    previous: int | None = None
    year_ago: int | None = None
    mom: float | None = None  # month on month, 0.2 = +20 %
    yoy: float | None = None  # year on year
    topics: list[str] = Field(default_factory=list)
    line: str = ""


class GridCell(_Part):
    """One category in one district this month: observed against its expectation."""

    category: str
    area_id: int | None = None
    observed: float = 0
    expected: float | None = None


class Grid(_Part):
    districts: list[tuple[int, str]] = Field(default_factory=list)  # (department id, name)
    cells: list[GridCell] = Field(default_factory=list)


class FlagSeries(_Part):
    """A flagged series' recent weeks: what came, what was expected, the alarm threshold."""

    weeks: list[str] = Field(default_factory=list)
    observed: list[float | None] = Field(default_factory=list)
    expected: list[float | None] = Field(default_factory=list)
    upper: list[float | None] = Field(default_factory=list)


class Candidate(_Part):
    """A 每月一题 candidate: a frequent, hard topic over the last twelve months."""

    rank: int
    category: str
    topic: str | None = None  # None: the whole category
    volume: int = 0
    months_in_top10: int = 0
    unresolved_share: float | None = None
    returns: int = 0
    districts_above: list[str] = Field(default_factory=list)
    score: float | None = None


class GovernanceMonth(_Part):
    month: str
    observed: int = 0
    baseline: float | None = None
    change: float | None = None  # against the baseline, -0.27 = 27 % fewer
    method: str = ""  # same_month | seasonal_index | none


class Governance(_Part):
    """An adopted 每月一题 and its months since adoption."""

    id: int
    title: str
    lead_unit: str = ""
    start_month: str = ""
    goal: str | None = None
    months: list[GovernanceMonth] = Field(default_factory=list)


class KbFigures(_Part):
    """One knowledge-base entry's month: offered, heard, accepted, truly deflected."""

    key: str
    title: str = ""
    offered: int = 0
    heard: int = 0
    accepted: int = 0
    true_deflection: int = 0

    @property
    def deflection_rate(self) -> float | None:
        return self.true_deflection / self.offered if self.offered else None


class KbGap(_Part):
    """A frequent consultation topic the knowledge base has no entry for."""

    topic: str
    count: int = 0


class Kb(_Part):
    entries: list[KbFigures] = Field(default_factory=list)
    gaps: list[KbGap] = Field(default_factory=list)


class RunSummary(_Part):
    categories: list[CategoryLine] = Field(default_factory=list)
    grid: Grid = Field(default_factory=Grid)
    series: dict[str, FlagSeries] = Field(default_factory=dict)  # by flag id, as text
    candidates: list[Candidate] = Field(default_factory=list)  # categories
    topic_candidates: list[Candidate] = Field(default_factory=list)  # topics of a category
    governance: list[Governance] = Field(default_factory=list)
    kb: Kb = Field(default_factory=Kb)


def read_summary(run_id: int, text: str | None) -> tuple[RunSummary, str]:
    """The run's summary and the problems to show ("" when it read cleanly).

    Each part is read on its own, so one part in an unexpected shape blanks that
    part only. A run still being written has no summary yet: an empty one."""
    if not text:
        return RunSummary(), ""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        log.warning("analysis run %s: summary is not JSON: %s", run_id, exc)
        return RunSummary(), f"运行 {run_id} 的摘要不是 JSON / the summary is not JSON"
    if not isinstance(raw, dict):
        return RunSummary(), f"运行 {run_id} 的摘要不是对象 / the summary is not an object"
    parts: dict[str, Any] = {}
    problems: list[str] = []
    for name in RunSummary.model_fields:
        if name not in raw:
            continue
        try:
            parts[name] = getattr(RunSummary.model_validate({name: raw[name]}), name)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            log.warning("analysis run %s: summary part %s unreadable: %s", run_id, name, exc)
            problems.append(f"{where}: {first['msg']}")
    problem = f"运行 {run_id} 的摘要有部分无法读取 / unreadable: {'; '.join(problems)}"
    return RunSummary(**parts), problem if problems else ""
