"""The job queue's stalled-worker timers: the defaults, and a cluster's own timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from hotline.jobs import HEARTBEAT_SECONDS, STALLED_CRON, STALLED_SECONDS, JobTimers
from tests.support.config import write_config


def test_one_box_and_a_default_cluster_keep_the_default_timers(tmp_path: Path) -> None:
    one_box = load_config(write_config(tmp_path / "one"))
    cluster = load_config(write_config(tmp_path / "cluster", cluster={}))
    defaults = JobTimers(HEARTBEAT_SECONDS, STALLED_SECONDS, STALLED_CRON)
    assert JobTimers.for_config(one_box) == defaults
    assert JobTimers.for_config(cluster) == defaults


def test_a_shorter_timeout_beats_four_times_within_it_and_looks_twice(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, cluster={"jobs": {"stalled_seconds": 8}}))
    timers = JobTimers.for_config(config)
    assert timers.stalled_seconds == 8 and timers.heartbeat_seconds == 2
    assert timers.recovery_cron == "* * * * * */4"


def test_a_timeout_under_two_seconds_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stalled_seconds"):
        load_config(write_config(tmp_path, cluster={"jobs": {"stalled_seconds": 1}}))
