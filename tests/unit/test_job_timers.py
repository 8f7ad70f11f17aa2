"""The job queue's stalled-worker timers: the defaults, and a test's shorter timeout."""

from __future__ import annotations

from hotline.jobs import HEARTBEAT_SECONDS, STALLED_CRON, STALLED_SECONDS, STALLED_SWITCH, JobTimers


def test_without_the_switch_the_timers_are_the_defaults() -> None:
    timers = JobTimers.from_environ({})
    assert timers == JobTimers(HEARTBEAT_SECONDS, STALLED_SECONDS, STALLED_CRON)


def test_a_shorter_timeout_beats_four_times_within_it_and_looks_twice() -> None:
    timers = JobTimers.from_environ({STALLED_SWITCH: "8"})
    assert timers.stalled_seconds == 8 and timers.heartbeat_seconds == 2
    assert timers.recovery_cron == "* * * * * */4"
