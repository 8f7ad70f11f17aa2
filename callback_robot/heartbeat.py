"""The robot's heartbeat: one row per robot process, updated by each successful dispatch pass.

Not the robot lock: a pass that finds nobody due or no free channel claims
nothing and leaves the lock alone, yet the robot is alive. A robot whose
heartbeat is old has stalled (`callback_robot.status.is_stalled`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import RobotHeartbeat


def record_heartbeat(session: Session, robot_id: str, started_at: datetime, at: datetime) -> None:
    """A robot's successful dispatch pass (one row per robot process, updated in place)."""
    row = session.get(RobotHeartbeat, robot_id)
    if row is None:
        session.add(RobotHeartbeat(robot_id=robot_id, started_at=started_at, beat_at=at))
    else:
        row.beat_at = at
    session.flush()


def latest_heartbeat(session: Session) -> RobotHeartbeat | None:
    """The most recent dispatch pass of any robot, or None if no robot ever ran."""
    return session.scalars(
        select(RobotHeartbeat).order_by(RobotHeartbeat.beat_at.desc()).limit(1)
    ).first()
