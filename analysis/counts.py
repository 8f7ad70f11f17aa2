"""Ticket counts per category x area x local day, from one GROUP BY, rolled up in numpy.

The surge detectors read nothing but these counts. The store groups by the
ticket's own area (often a village) and the hotline's local day; the roll-up to
townships and districts and to ISO weeks happens here, on arrays, so the
database does one cheap pass whatever levels and periods are tested.

The local day: on PostgreSQL the store converts with the zone itself (daylight
saving included); on SQLite, which knows no zones, a zone with one fixed offset
over the range (Asia/Shanghai) is bucketed by whole days from local midnight,
and a zone with daylight saving by hours, folded into local days here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Date, Integer, cast, func, literal, select
from sqlalchemy.orm import Session

from db.models import Department, Ticket

AreaLevel = Literal["district", "township"]
LEVEL_NUMBER: dict[str, int] = {"district": 3, "township": 4}  # core.vocabulary.Level
SeriesKey = tuple[str, int | None]  # (category, area id; None: unknown area)


@dataclass(frozen=True)
class DailyCounts:
    """Tickets per (category, the ticket's own area) and local day from first_day on."""

    first_day: date
    days: int
    cells: dict[SeriesKey, np.ndarray]  # each of length `days`

    def window(self, first_day: date, end_day: date) -> DailyCounts:
        """The counts of local days [first_day, end_day) inside these, as `daily_counts`
        would read them alone (a series with no ticket in the window is left out).

        A month's surges and its charts read overlapping spans: one GROUP BY over both
        serves the two.
        """
        start, stop = (first_day - self.first_day).days, (end_day - self.first_day).days
        if start < 0 or stop > self.days or stop < start:
            raise ValueError(
                f"days {first_day}..{end_day} are not inside the counts' "
                f"{self.first_day} + {self.days} days"
            )
        cells = {key: row[start:stop] for key, row in self.cells.items() if row[start:stop].any()}
        return DailyCounts(first_day, stop - start, cells)


@dataclass(frozen=True)
class SeriesTable:
    """Count series side by side: row i of `values` is the series `keys[i]`."""

    keys: list[SeriesKey]
    values: np.ndarray  # (series, periods), int64
    first: date  # the first period's first day (a Monday for weekly tables)

    def row(self, key: SeriesKey) -> np.ndarray | None:
        try:
            return self.values[self.keys.index(key)]
        except ValueError:
            return None


@dataclass(frozen=True)
class AreaTree:
    """Each department's level and parent: enough to find a place's township and district."""

    levels: dict[int, int]
    parents: dict[int, int | None]

    def ancestor_at(self, area_id: int | None, level: AreaLevel) -> int | None:
        """The area's unit at `level` (itself or above it); None when it lies above that."""
        wanted, seen = LEVEL_NUMBER[level], 0
        current = area_id
        while current is not None and seen < 16:  # the tree has five levels; a loop must end
            current_level = self.levels.get(current)
            if current_level is None or current_level < wanted:
                return None
            if current_level == wanted:
                return current
            current, seen = self.parents.get(current), seen + 1
        return None


def area_tree(session: Session) -> AreaTree:
    rows = session.execute(select(Department.id, Department.level, Department.parent_id)).all()
    return AreaTree({r.id: r.level for r in rows}, {r.id: r.parent_id for r in rows})


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz).astimezone(UTC)


def _fixed_offset(first_day: date, end_day: date, tz: ZoneInfo) -> bool:
    """Whether the zone keeps one UTC offset from first_day to end_day (no daylight saving)."""
    offsets = {
        datetime.combine(day, time(12), tz).utcoffset() for day in _month_steps(first_day, end_day)
    }
    return len(offsets) == 1


def _month_steps(first_day: date, end_day: date) -> Iterable[date]:
    day = first_day
    while day < end_day:
        yield day
        day += timedelta(days=14)
    yield end_day


def _bucket(session: Session, first_day: date, end_day: date, tz: ZoneInfo) -> tuple[Any, int]:
    """The SQL expression of a ticket's bucket from first_day's local midnight, and its hours.

    24: the bucket is the local day's index; 1: the hour's index, folded into days later.
    """
    start = local_midnight(first_day, tz)
    if session.get_bind().dialect.name == "postgresql":
        local = cast(func.timezone(tz.key, Ticket.accepted_at), Date)
        return cast(local - literal(first_day, Date), Integer), 24
    hours = 24 if _fixed_offset(first_day, end_day, tz) else 1
    seconds = func.round(
        (func.julianday(Ticket.accepted_at) - func.julianday(literal(start))) * 86400
    )
    return cast(seconds / float(3600 * hours), Integer), hours


def daily_counts(
    session: Session,
    first_day: date,
    end_day: date,
    tz: ZoneInfo,
    category: str | None = None,
) -> DailyCounts:
    """Tickets with a category accepted on local days [first_day, end_day), per area and day."""
    days = (end_day - first_day).days
    bucket, hours = _bucket(session, first_day, end_day, tz)
    bucket = bucket.label("bucket")
    query = (
        select(Ticket.category, Ticket.area_id, bucket, func.count().label("n"))
        .where(
            Ticket.accepted_at >= local_midnight(first_day, tz),
            Ticket.accepted_at < local_midnight(end_day, tz),
            Ticket.category.is_not(None),
        )
        .group_by(Ticket.category, Ticket.area_id, bucket)
    )
    if category is not None:
        query = query.where(Ticket.category == category)
    rows = session.execute(query).all()
    if not rows:
        return DailyCounts(first_day, days, {})
    categories, areas, raw_buckets, numbers = zip(*rows, strict=True)
    buckets = np.array(raw_buckets, dtype=np.int64)
    if hours == 1:  # an hour from the start: its local day
        buckets = _local_days(buckets, local_midnight(first_day, tz), first_day, tz)
    keys: dict[SeriesKey, int] = {}
    series = np.array(
        [keys.setdefault(key, len(keys)) for key in zip(categories, areas, strict=True)],
        dtype=np.int64,
    )
    values = np.zeros((len(keys), days), dtype=np.int64)
    inside = (buckets >= 0) & (buckets < days)
    np.add.at(values, (series[inside], buckets[inside]), np.array(numbers, dtype=np.int64)[inside])
    held = set(series[inside].tolist())  # a series with no day inside is not one
    return DailyCounts(
        first_day, days, {(str(c), a): values[i] for (c, a), i in keys.items() if i in held}
    )


def _local_days(hours: np.ndarray, start: datetime, first_day: date, tz: ZoneInfo) -> np.ndarray:
    """Hours from `start` as local days from first_day (each distinct hour converted once)."""
    distinct, where = np.unique(hours, return_inverse=True)
    days = [
        ((start + timedelta(hours=int(h))).astimezone(tz).date() - first_day).days for h in distinct
    ]
    return np.asarray(days, dtype=np.int64).reshape(-1)[where.reshape(-1)]


def roll_up(counts: DailyCounts, tree: AreaTree, level: AreaLevel) -> SeriesTable:
    """Daily series per (category, the area's unit at `level`); None gathers the unknown."""
    rows: dict[SeriesKey, np.ndarray] = {}
    for (category, area_id), series in counts.cells.items():
        key = (category, tree.ancestor_at(area_id, level))
        if key in rows:
            rows[key] = rows[key] + series
        else:
            rows[key] = series.copy()
    keys = sorted(rows, key=lambda k: (k[0], k[1] is None, k[1] or 0))
    values = np.array([rows[k] for k in keys], dtype=np.int64).reshape(len(keys), counts.days)
    return SeriesTable(keys, values, counts.first_day)


def to_weeks(table: SeriesTable) -> SeriesTable:
    """Daily series that start on a Monday, summed per ISO week (a partial last week is dropped)."""
    if table.first.weekday() != 0:
        raise ValueError(f"weekly counts must start on a Monday, not {table.first}")
    weeks = table.values.shape[1] // 7
    values = table.values[:, : weeks * 7].reshape(len(table.keys), weeks, 7).sum(axis=2)
    return SeriesTable(table.keys, values, table.first)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())
