"""metrics.min_valid_callbacks: a unit with too few valid callbacks is shown but not ranked.

Before the fix a street with a single valid callback ranked first at 100%
above a street with fifty callbacks at 98%.
"""

from __future__ import annotations

from pathlib import Path

from core import periods
from core.config import load_config
from db.migrate import upgrade
from db.session import make_engine, make_session_factory, unit_of_work
from reports.build import ranking_report
from tests.support.config import write_config
from tests.support.metrics_city import add_callback, build_city, utc


def test_a_unit_below_min_valid_callbacks_is_listed_without_a_rank(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        units = build_city(session)
        add_callback(session, units["S1"], utc(2026, 11, 18, 3), (1, 1, 1))  # one call, 100%
        for index in range(50):  # fifty calls, one of them not resolved
            add_callback(
                session, units["S2"], utc(2026, 11, 18, 4, index), (1, 2 if index == 0 else 1, 1)
            )
        for index in range(5):
            add_callback(session, units["S3"], utc(2026, 11, 18, 5, index), (1, 2, 1))
    config = load_config(
        write_config(tmp_path / "cfg", database={"url": url}, metrics={"min_valid_callbacks": 5})
    )
    with unit_of_work(sessions) as session:
        report = ranking_report(session, config, periods.iso_week("2026-W47"))
    engine.dispose()
    streets = [(row[1], row[3]) for row in report.rows if row[0] == "street"]
    # S3 has exactly the minimum: ranked; S1 is listed after the ranked ones as too few (样本不足)
    assert streets == [(1, "S2"), (2, "S3"), ("样本不足", "S1"), ("无数据", "S4")]
