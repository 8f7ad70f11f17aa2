"""The month in lines a 12345 monthly report prints, and the category x district grid.

"劳动纠纷 120件，环比 +20.0%，同比 +33.3%，主要反映拖欠工资、社保未缴等问题": each
category's tickets this month against the month before (环比) and the same month a
year before (同比), with the labels of its largest topics. The grid gives every
category x district its count and what the same calendar month held on average in
the years before (or, with no year before, the twelve months before), so the console
colours what stands out even where no surge was flagged.

Counting: a ticket merged into another (并单) is the same matter and is not counted
again; tickets with no category count as "未分类".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.periods import Period, calendar_month
from core.vocabulary import Level
from db.models import Department, Ticket

UNCATEGORISED = "未分类"


@dataclass(frozen=True)
class CategoryLine:
    """One category's month: count, the months to compare with, and its main topics."""

    category: str
    count: int
    previous: int
    year_ago: int
    topics: tuple[str, ...]

    @property
    def mom(self) -> float | None:
        """环比: against the month before (None when that month had none)."""
        return (self.count - self.previous) / self.previous if self.previous else None

    @property
    def yoy(self) -> float | None:
        """同比: against the same month a year before."""
        return (self.count - self.year_ago) / self.year_ago if self.year_ago else None

    @property
    def line(self) -> str:
        """The sentence of the monthly report."""
        parts = [f"{self.category} {self.count}件"]
        parts.append("环比 " + _change(self.mom))
        parts.append("同比 " + _change(self.yoy))
        text = "，".join(parts)
        if self.topics:
            text += "，主要反映" + "、".join(self.topics) + "等问题"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "category": self.category,
            "count": self.count,
            "previous": self.previous,
            "year_ago": self.year_ago,
            "mom": self.mom,
            "yoy": self.yoy,
            "topics": list(self.topics),
            "line": self.line,
        }


def _change(value: float | None) -> str:
    return "无可比" if value is None else f"{value:+.1%}"


def month_period(month: str, shift: int = 0) -> Period:
    """The calendar month `shift` months after `month` (negative: before)."""
    first = calendar_month(month).first
    index = first.year * 12 + first.month - 1 + shift
    return calendar_month(f"{index // 12:04d}-{index % 12 + 1:02d}")


class Tree:
    """The department tree in memory: a problem's place rolled up to its district."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(
            select(Department.id, Department.name, Department.level, Department.parent_id)
        ).all()
        self.name = {row.id: row.name for row in rows}
        self.level = {row.id: row.level for row in rows}
        self.parent = {row.id: row.parent_id for row in rows}

    def up_to(self, area_id: int | None, level: Level) -> int | None:
        """The area's ancestor (or itself) at `level`; None above it or when unknown."""
        current = area_id
        while current is not None and self.level.get(current, 0) > level:
            current = self.parent.get(current)
        if current is None or self.level.get(current) != level:
            return None
        return current


def _counts(session: Session, period: Period, tz: str) -> list[tuple[str, int | None, int]]:
    """(category, area, tickets) accepted in the period: one GROUP BY."""
    start, end = period.utc_range(tz)
    category = func.coalesce(Ticket.category, UNCATEGORISED)
    rows = session.execute(
        select(category, Ticket.area_id, func.count())
        .where(
            Ticket.accepted_at >= start,
            Ticket.accepted_at < end,
            Ticket.merged_into_id.is_(None),
        )
        .group_by(category, Ticket.area_id)
    ).all()
    return [(str(row[0]), row[1], int(row[2])) for row in rows]


def _by_category(rows: Iterable[tuple[str, int | None, int]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for category, _, count in rows:
        totals[category] += count
    return totals


def category_lines(
    session: Session,
    month: str,
    tz: ZoneInfo,
    topic_labels: dict[str, Sequence[str]] | None = None,
    top_topics: int = 2,
) -> list[CategoryLine]:
    """Each category's line for the month, the largest first."""
    now = _by_category(_counts(session, month_period(month), tz.key))
    before = _by_category(_counts(session, month_period(month, -1), tz.key))
    year_ago = _by_category(_counts(session, month_period(month, -12), tz.key))
    labels = topic_labels or {}
    lines = [
        CategoryLine(
            category,
            count,
            before.get(category, 0),
            year_ago.get(category, 0),
            tuple(labels.get(category, ())[:top_topics]),
        )
        for category, count in now.items()
    ]
    return sorted(lines, key=lambda line: (-line.count, line.category))


@dataclass(frozen=True)
class GridCell:
    category: str
    area_id: int
    observed: int
    expected: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "category": self.category,
            "area_id": self.area_id,
            "observed": self.observed,
            "expected": self.expected,
        }


def _district_counts(
    session: Session, tree: Tree, period: Period, tz: str
) -> dict[tuple[str, int], int]:
    totals: dict[tuple[str, int], int] = defaultdict(int)
    for category, area, count in _counts(session, period, tz):
        district = tree.up_to(area, Level.DISTRICT)
        if district is not None:
            totals[(category, district)] += count
    return totals


def district_grid(
    session: Session, month: str, tz: ZoneInfo, years_back: int = 2
) -> tuple[list[tuple[int, str]], list[GridCell]]:
    """The districts that had tickets, and every category x district cell of the month.

    Expected: the mean of the same calendar month over `years_back` years before, over
    the years that have any tickets; with none, the mean of the twelve months before.
    """
    tree = Tree(session)
    observed = _district_counts(session, tree, month_period(month), tz.key)
    past_years = [
        _district_counts(session, tree, month_period(month, -12 * k), tz.key)
        for k in range(1, years_back + 1)
    ]
    past_years = [year for year in past_years if year]
    if not past_years:
        past_years = [
            counts
            for k in range(1, 13)
            if (counts := _district_counts(session, tree, month_period(month, -k), tz.key))
        ]
    keys = set(observed)
    for year in past_years:
        keys.update(year)
    cells = [
        GridCell(
            category,
            district,
            observed.get((category, district), 0),
            sum(year.get((category, district), 0) for year in past_years) / len(past_years)
            if past_years
            else None,
        )
        for category, district in sorted(keys, key=lambda key: (key[0], key[1]))
    ]
    districts = sorted({district for _, district in keys})
    return [(district, tree.name[district]) for district in districts], cells


def local_month_of(at: datetime, tz: ZoneInfo) -> str:
    """'2026-10' for an instant, in the hotline's time zone."""
    return at.astimezone(tz).strftime("%Y-%m")


def months_before(month: str, count: int) -> list[str]:
    """The `count` month labels before `month`, the nearest first."""
    return [month_period(month, -k).label for k in range(1, count + 1)]


def first_day(month: str) -> date:
    return calendar_month(month).first
