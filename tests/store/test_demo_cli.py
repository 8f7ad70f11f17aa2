"""`hotline demo-data` end to end: a small city, its figures, a refusal on a second run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.config import write_config


def hotline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args], capture_output=True, text=True
    )


def test_demo_data_fills_an_empty_store_once_and_reports_work_on_it(tmp_path: Path) -> None:
    config = str(write_config(tmp_path))
    first = hotline(
        "demo-data", "--tickets", "1500", "--until", "2026-11-22", "--seed", "3", "-c", config
    )
    assert first.returncode == 0, first.stderr
    assert "1,500 tickets (2024-05-24 .. 2026-11-22)" in first.stdout
    assert "response 响应率" in first.stdout and "seed city" in first.stdout
    assert first.stdout.count("planted surge 计划突增") == 2  # what the analysis should find
    assert "over-claiming unit 谎报已解决" in first.stdout
    again = hotline("demo-data", "--tickets", "10", "-c", config)
    assert again.returncode == 2
    assert "already holds tickets" in again.stderr
    ranking = hotline(
        "report", "ranking", "--assessment-month", "2026-10", "--format", "csv", "-c", config
    )
    assert ranking.returncode == 0, ranking.stderr
    rows = ranking.stdout.lstrip("\ufeff").splitlines()
    assert rows[0].startswith("同类组,排名,位次")
    assert {row.split(",")[0] for row in rows[1:]} >= {"district", "street", "bureau"}
    bad = hotline("demo-data", "--until", "yesterday", "-c", config)
    assert bad.returncode == 2 and "--until: 'yesterday' is not a date" in bad.stderr
