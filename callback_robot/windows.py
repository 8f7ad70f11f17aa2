"""When the robot may call: daily windows in the hotline's local time.

Windows are compared in local time (Asia/Shanghai by default), never in UTC,
and, when `robot.working_days_only` is set, only on working days of the
Chinese calendar (adjusted working weekends included).

A window whose start is after its end spans midnight: 22:00-06:00 is the
night, from 22:00 of one day to 06:00 of the next. The night belongs to the
day it starts on, so with `working_days_only` Friday's night runs into
Saturday morning and Sunday's night (a Monday morning) is not called.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

from core.config import CallWindow, RobotConfig
from core.deadlines import is_working_day


def _may_call_on(day: date, robot: RobotConfig) -> bool:
    """Whether windows starting on `day` are open at all."""
    return not robot.working_days_only or is_working_day(day)


def _opened_on(window: CallWindow, day: date, clock: time) -> date | None:
    """The day whose window holds `clock` of `day` (the day before for a night's morning)."""
    if window.start < window.end:
        return day if window.start <= clock < window.end else None
    if clock >= window.start:
        return day
    if clock < window.end:
        return day - timedelta(days=1)
    return None


def in_call_window(now: datetime, robot: RobotConfig, tz: tzinfo) -> bool:
    """May the robot place a call at `now` (an aware datetime)?"""
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    for window in robot.call_windows:
        opened = _opened_on(window, local.date(), clock)
        if opened is not None and _may_call_on(opened, robot):
            return True
    return False


def next_window_start(
    now: datetime, robot: RobotConfig, tz: tzinfo, horizon_days: int = 31
) -> datetime | None:
    """`now` if calls are allowed now, else the start of the next window (None if none soon).

    Every window, a night one too, opens at its start on a day of its own, so
    the next opening is the earliest start after `now` on a day that may call.
    """
    if in_call_window(now, robot, tz):
        return now
    local = now.astimezone(tz)
    for offset in range(horizon_days + 1):
        day = (local + timedelta(days=offset)).date()
        if not _may_call_on(day, robot):
            continue
        for window in sorted(robot.call_windows, key=lambda w: w.start):
            start = datetime.combine(day, window.start, tzinfo=local.tzinfo)
            if start > local:
                return start
    return None
