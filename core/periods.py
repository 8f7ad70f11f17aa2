"""Report periods: ISO weeks, calendar months, assessment months, any date range.

A period is a half-open range of local calendar days [first, end) in the
hotline's time zone; `utc_range` turns it into the UTC instants the store
filters on, so a callback at 23:30 on the last evening of a week belongs to
that week in Beijing time whatever the server's clock zone is.

The assessment month (考核月) may start on a configured day d: the assessment
month "2026-10" with d = 19 runs from 2026-10-19 up to and excluding
2026-11-19, and with d = 1 it is exactly the calendar month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class PeriodError(ValueError):
    """A period label that cannot be read; the message says the expected form."""


# The days a period may cover: a hotline's records start after 1970, and local midnight
# of year 1 or the day after 9999-12-31 cannot even be written as a UTC instant.
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)


def _within(label: str, *days: date) -> None:
    if any(not EARLIEST <= day <= LATEST for day in days):
        raise PeriodError(f"{label!r}: outside {EARLIEST} .. {LATEST}")


@dataclass(frozen=True)
class Period:
    """Local days [first, end) with the label reports print."""

    label: str
    first: date
    end: date  # exclusive

    def utc_range(self, tz: str) -> tuple[datetime, datetime]:
        """The UTC instants of local midnight at first and at end."""
        zone = ZoneInfo(tz)
        return (
            datetime.combine(self.first, time(), zone).astimezone(UTC),
            datetime.combine(self.end, time(), zone).astimezone(UTC),
        )

    @property
    def last(self) -> date:
        """The last day inside the period."""
        return self.end - timedelta(days=1)


WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$")
MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


def iso_week(label: str) -> Period:
    """'2026-W47' -> Monday 2026-11-16 up to Monday 2026-11-23."""
    match = WEEK.match(label.strip())
    if not match:
        raise PeriodError(f"week {label!r}: expected YYYY-Www, e.g. 2026-W47")
    year, week = int(match[1]), int(match[2])
    _within(label, date(year, 1, 1))
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise PeriodError(f"week {label!r}: {year} has no ISO week {week}") from None
    return Period(f"{year}-W{week:02d}", monday, monday + timedelta(days=7))


def week_of(day: date) -> Period:
    """The ISO week that contains day."""
    year, week, _ = day.isocalendar()
    return iso_week(f"{year}-W{week:02d}")


def _month_start(label: str) -> date:
    match = MONTH.match(label.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise PeriodError(f"month {label!r}: expected YYYY-MM, e.g. 2026-10")
    first = date(int(match[1]), int(match[2]), 1)
    _within(label, first)
    return first


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1)


def calendar_month(label: str) -> Period:
    """'2026-10' -> 2026-10-01 up to 2026-11-01."""
    first = _month_start(label)
    return Period(first.strftime("%Y-%m"), first, _add_months(first, 1))


def assessment_month(label: str, start_day: int) -> Period:
    """The assessment month named label, starting on start_day of that month."""
    first = _month_start(label).replace(day=start_day)
    name = first.strftime("%Y-%m") + ("" if start_day == 1 else f" (from day {start_day})")
    return Period(name, first, _add_months(first, 1))


def previous_assessment_months(label: str, start_day: int, count: int) -> list[Period]:
    """The `count` assessment months ending with label, oldest first."""
    first = _month_start(label)
    labels = [_add_months(first, -back).strftime("%Y-%m") for back in range(count - 1, -1, -1)]
    return [assessment_month(one, start_day) for one in labels]


def date_range(first: str, last: str) -> Period:
    """An inclusive range of local days, 'YYYY-MM-DD' to 'YYYY-MM-DD'."""
    try:
        start, stop = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as exc:
        raise PeriodError(f"date range {first}..{last}: {exc} (expected YYYY-MM-DD)") from None
    if stop < start:
        raise PeriodError(f"date range {first}..{last}: the end is before the start")
    _within(f"{first}..{last}", start, stop)
    return Period(f"{start}..{stop}", start, stop + timedelta(days=1))


def last_weeks(today: date, count: int) -> list[Period]:
    """The `count` ISO weeks ending with the week of today, oldest first."""
    current = week_of(today)
    return [week_of(current.first - timedelta(days=7 * back)) for back in range(count - 1, -1, -1)]


def last_week(today: date) -> Period:
    """The ISO week before the week of today (what reports show by default)."""
    return week_of(today - timedelta(days=7))


def choose_period(
    today: date,
    assessment_start_day: int,
    *,
    week: str = "",
    month: str = "",
    assessment: str = "",
    first: str = "",
    last: str = "",
) -> Period:
    """The one period the options name: a week, a month, an assessment month or a range.

    With none of them, last week. Raises PeriodError naming what is wrong.
    """
    given = [bool(week), bool(month), bool(assessment), bool(first or last)]
    if sum(given) > 1:
        raise PeriodError("give one period: --week, --month, --assessment-month or --from/--to")
    if week:
        return iso_week(week)
    if month:
        return calendar_month(month)
    if assessment:
        return assessment_month(assessment, assessment_start_day)
    if first or last:
        if not (first and last):
            raise PeriodError("--from and --to go together")
        return date_range(first, last)
    return last_week(today)
