"""Due times by urgency on the Chinese working-day calendar.

Emergency and daily-life requests count working days (the State Council
schedule, with its adjusted working weekends, from `chinese-calendar`);
complex ones count calendar days. Counting keeps the clock time: a request
accepted on Friday 15:00 with one working day is due the next working day at
15:00. For a year the calendar package does not know yet (it ships each
year's schedule when the State Council publishes it), Monday to Friday is
assumed and a warning is logged once per year.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, tzinfo
from functools import cache

import chinese_calendar

from core.config import DeadlineConfig
from core.vocabulary import Urgency

log = logging.getLogger(__name__)


@cache
def _warn_unknown_year(year: int) -> None:
    log.warning(
        "chinese-calendar has no holiday schedule for %s; assuming Monday-Friday "
        "(upgrade chinese-calendar when the State Council publishes it)",
        year,
    )


def is_working_day(day: date) -> bool:
    """True on a working day, including adjusted working weekends."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        _warn_unknown_year(day.year)
        return day.weekday() < 5


def add_working_days(start: datetime, days: int) -> datetime:
    """The same clock time `days` working days after start (start must be local time)."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if is_working_day(current.date()):
            remaining -= 1
    return current


def due_at(accepted_at: datetime, urgency: Urgency, rules: DeadlineConfig, tz: tzinfo) -> datetime:
    """When a ticket accepted at accepted_at (aware) must be closed."""
    local = accepted_at.astimezone(tz)
    if urgency == Urgency.EMERGENCY:
        return add_working_days(local, rules.emergency_working_days)
    if urgency == Urgency.DAILY_LIFE:
        return add_working_days(local, rules.daily_life_working_days)
    return local + timedelta(days=rules.complex_calendar_days)
