"""What the robot is doing and has done, for `hotline robot status|report` and the web app.

Library functions over the store: the CLI and the dashboard print the same
figures, and neither does SQL or period arithmetic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from callback_robot.dispatcher import due_rules
from callback_robot.eligibility import due_counts, waiting_to_retry
from callback_robot.heartbeat import latest_heartbeat
from callback_robot.reporting import RobotFigures, attempt_state_counts, robot_figures
from callback_robot.windows import in_call_window, next_window_start
from core import periods
from core.config import HotlineConfig
from core.vocabulary import AttemptState

# a robot whose last dispatch pass is older than three dispatch intervals (10 s) has stalled
STALLED_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class RobotStatus:
    """The robot's queue now."""

    window_open: bool
    window_opens: datetime | None  # local time of the next opening when closed
    states: dict[AttemptState, int]
    due_now: int
    waiting_to_retry: int
    heartbeat: datetime | None = None  # the last successful dispatch pass of any robot
    heartbeat_of: str | None = None
    stalled: bool = True  # no pass within STALLED_AFTER (or never)


def robot_status(session: Session, config: HotlineConfig, now: datetime) -> RobotStatus:
    """Attempts by state, tickets due now and waiting to retry, and the call window.

    The queue is counted in the database, however long it is: no ticket ids leave it.
    """
    due, tried_and_due = due_counts(session, due_rules(config, now))
    is_open = in_call_window(now, config.robot, config.tz)
    opens = None if is_open else next_window_start(now, config.robot, config.tz)
    beat = latest_heartbeat(session)
    return RobotStatus(
        window_open=is_open,
        window_opens=opens.astimezone(config.tz) if opens is not None else None,
        states=attempt_state_counts(session),
        due_now=due,
        waiting_to_retry=waiting_to_retry(session, tried_and_due),
        heartbeat=beat.beat_at if beat else None,
        heartbeat_of=beat.robot_id if beat else None,
        stalled=is_stalled(beat.beat_at if beat else None, now),
    )


def is_stalled(last_pass: datetime | None, now: datetime) -> bool:
    """No dispatch pass within STALLED_AFTER: the robot is down, stuck or cut off from AMI."""
    return last_pass is None or now - last_pass > STALLED_AFTER


def robot_report(
    session: Session,
    config: HotlineConfig,
    first: str,
    last: str,
    within: int,
    units: Select[Any] | None = None,
) -> RobotFigures:
    """The robot's figures from local day `first` to `last` (YYYY-MM-DD, both included),
    of every ticket or (`units`) of those departments' tickets only.

    Raises periods.PeriodError with a readable message for a bad day.
    """
    start, end = periods.date_range(first, last).utc_range(config.timezone)
    return robot_figures(session, start, end, config.timezone, within, units)
