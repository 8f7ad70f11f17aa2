"""The job queue's tables, read for `/metrics`: how many jobs wait, and for how long.

procrastinate (the job queue of a hotline on PostgreSQL, issue 22) keeps its
jobs in its own tables, which migration 0013 creates in a PostgreSQL schema
of their own, `procrastinate`, apart from the ticket store's tables: the
models' comparison with the database never sees them, and a downgrade drops
the schema whole. procrastinate's own connections find its tables through
their search path (`JOBS_SEARCH_PATH`); the store's sessions name the schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

JOBS_SCHEMA = "procrastinate"
JOBS_SEARCH_PATH = f"-c search_path={JOBS_SCHEMA}"  # libpq `options` for procrastinate's pool


@dataclass(frozen=True)
class QueueBacklog:
    """One queue's jobs to do, and how long the one waiting longest has been due."""

    queue: str
    todo: int
    oldest_age_seconds: float  # 0 when none is due yet (all scheduled for later)


# a job is due from its scheduled time (a retry's wait) or else from when it was deferred
_BACKLOG = text(
    f"""
    SELECT job.queue_name AS queue,
           count(*) AS todo,
           coalesce(extract(epoch FROM now() - min(
               CASE WHEN job.scheduled_at IS NULL OR job.scheduled_at <= now()
                    THEN coalesce(job.scheduled_at, deferred.at) END)), 0) AS age
      FROM {JOBS_SCHEMA}.procrastinate_jobs AS job
      LEFT JOIN LATERAL (
            SELECT min(event.at) AS at
              FROM {JOBS_SCHEMA}.procrastinate_events AS event
             WHERE event.job_id = job.id AND event.type = 'deferred'
      ) AS deferred ON true
     WHERE job.status = 'todo'
     GROUP BY job.queue_name
    """
)


def queue_backlog(session: Session) -> list[QueueBacklog]:
    """Every queue with jobs to do (a queue with none is absent), on PostgreSQL only."""
    return [
        QueueBacklog(str(row.queue), int(row.todo), max(0.0, float(row.age)))
        for row in session.execute(_BACKLOG)
    ]


_OPEN_LOCKS = text(
    f"""
    SELECT DISTINCT lock FROM {JOBS_SCHEMA}.procrastinate_jobs
     WHERE status IN ('todo', 'doing') AND lock = ANY(:locks)
    """
)


def locks_with_open_jobs(session: Session, locks: list[str]) -> set[str]:
    """Which of these job locks a job waiting or running holds (a dead worker's too)."""
    if not locks:
        return set()
    return {str(lock) for lock in session.scalars(_OPEN_LOCKS, {"locks": locks})}
