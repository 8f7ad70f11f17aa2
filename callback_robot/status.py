"""What the robot is doing and has done, for `hotline robot status|report` and the web app.

Library functions over the store: the CLI and the dashboard print the same
figures, and neither does SQL or period arithmetic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from callback_robot.dispatcher import due_rules
from callback_robot.eligibility import due_counts, waiting_to_retry
from callback_robot.heartbeat import latest_heartbeat
from callback_robot.reporting import RobotFigures, attempt_state_counts, robot_figures
from callback_robot.windows import in_call_window, next_window_start
from core import periods
from core.config import HotlineConfig
from core.vocabulary import AttemptState
from db.models import CallbackAttempt, ClusterNode

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


@dataclass(frozen=True)
class NodeRobotState:
    """The robot's calls on one cluster node, and what the cluster decided about the node."""

    name: str
    dialing: int
    in_call: int
    placed_today: int  # attempts the claims sent to this node since local midnight
    draining_since: datetime | None
    lost_since: datetime | None


def node_states(session: Session, config: HotlineConfig, now: datetime) -> list[NodeRobotState]:
    """Each configured node's robot calls (one box: none), counted in the store.

    What every robot chose is there (`callback_attempts.node`), so this shows the
    node choice of all of them: in flight now, and placed today.
    """
    if config.cluster is None:
        return []
    midnight = now.astimezone(config.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    live = session.execute(
        select(CallbackAttempt.node, CallbackAttempt.state, func.count())
        .where(CallbackAttempt.state.in_((AttemptState.DIALING, AttemptState.IN_CALL)))
        .group_by(CallbackAttempt.node, CallbackAttempt.state)
    )
    counts = {(node, state): int(n) for node, state, n in live}
    placed = session.execute(
        select(CallbackAttempt.node, func.count())
        .where(CallbackAttempt.started_at >= midnight)
        .group_by(CallbackAttempt.node)
    )
    today = {node: int(n) for node, n in placed}
    marks = {row.name: row for row in session.scalars(select(ClusterNode))}
    return [
        NodeRobotState(
            name=node.name,
            dialing=counts.get((node.name, AttemptState.DIALING), 0),
            in_call=counts.get((node.name, AttemptState.IN_CALL), 0),
            placed_today=today.get(node.name, 0),
            draining_since=marks[node.name].draining_since if node.name in marks else None,
            lost_since=marks[node.name].lost_since if node.name in marks else None,
        )
        for node in config.cluster.nodes
    ]


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
