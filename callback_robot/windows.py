"""When the robot may call: daily windows in the hotline's local time.

Windows are compared in local time (Asia/Shanghai by default), never in UTC,
and, when `robot.working_days_only` is set, only on working days of the
Chinese calendar (adjusted working weekends included).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from core.config import RobotConfig
from core.deadlines import is_working_day


def in_call_window(now: datetime, robot: RobotConfig, tz: tzinfo) -> bool:
    """May the robot place a call at `now` (an aware datetime)?"""
    local = now.astimezone(tz)
    if robot.working_days_only and not is_working_day(local.date()):
        return False
    clock = local.time().replace(tzinfo=None)
    return any(window.start <= clock < window.end for window in robot.call_windows)


def next_window_start(
    now: datetime, robot: RobotConfig, tz: tzinfo, horizon_days: int = 31
) -> datetime | None:
    """`now` if calls are allowed now, else the start of the next window (None if none soon)."""
    if in_call_window(now, robot, tz):
        return now
    local = now.astimezone(tz)
    for offset in range(horizon_days + 1):
        day = (local + timedelta(days=offset)).date()
        if robot.working_days_only and not is_working_day(day):
            continue
        for window in sorted(robot.call_windows, key=lambda w: w.start):
            start = datetime.combine(day, window.start, tzinfo=local.tzinfo)
            if start > local:
                return start
    return None
