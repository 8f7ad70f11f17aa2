"""One GROUP BY for a month's surges and its charts (analysis.counts.DailyCounts.window).

The month's analysis reads the daily counts once over both spans and hands each part
its window: what the surges flag and what the charts draw must be exactly what each
read alone. The counts' local days also hold in a zone with daylight saving (SQLite
buckets by hours there and folds them into days).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from analysis.bands import chart_span, weekly_series_of
from analysis.counts import daily_counts
from analysis.surges import weekly_span, weekly_surges
from db.models import Ticket
from tests.store.test_surges import SETTINGS, TZ, build_tree, plant


def test_a_window_of_the_counts_is_what_reading_the_window_gives(
    store: sessionmaker[Session],
) -> None:
    with store() as session:
        plant(session, build_tree(session))
        session.commit()
        wide = daily_counts(session, date(2023, 1, 2), date(2025, 6, 2), TZ)
        alone = daily_counts(session, date(2025, 5, 5), date(2025, 5, 26), TZ)
    window = wide.window(date(2025, 5, 5), date(2025, 5, 26))
    assert (window.first_day, window.days) == (alone.first_day, alone.days)
    assert set(window.cells) == set(alone.cells)
    for key, row in alone.cells.items():
        assert np.array_equal(window.cells[key], row), key
    with pytest.raises(ValueError, match="not inside"):
        wide.window(date(2022, 12, 26), date(2023, 1, 9))


def test_surges_and_charts_from_shared_counts_equal_their_own_reads(
    store: sessionmaker[Session],
) -> None:
    with store() as session:
        units = build_tree(session)
        plant(session, units)
        session.commit()
        surge_span = weekly_span("2025-05", SETTINGS)
        chart = chart_span(date(2025, 6, 1), 8, SETTINGS)
        shared = daily_counts(
            session, min(surge_span[0], chart[0]), max(surge_span[1], chart[1]), TZ
        )
        alone = weekly_surges(session, "2025-05", SETTINGS, TZ)
        together = weekly_surges(session, "2025-05", SETTINGS, TZ, shared)
        series = [(f.category, f.area_id, f.level) for f in alone]
        charts_alone = weekly_series_of(session, series, date(2025, 6, 1), 8, SETTINGS, TZ)
        charts_shared = weekly_series_of(session, series, date(2025, 6, 1), 8, SETTINGS, TZ, shared)
    assert alone and together == alone
    assert charts_shared == charts_alone


def test_local_days_hold_across_a_daylight_saving_change(store: sessionmaker[Session]) -> None:
    berlin = ZoneInfo("Europe/Berlin")  # clocks go forward on 2025-03-30 at 02:00
    with store() as session:
        units = build_tree(session)
        for n, when in enumerate(
            [
                datetime(2025, 3, 29, 23, 30, tzinfo=UTC),  # 00:30 local on the 30th (CET)
                datetime(2025, 3, 30, 22, 30, tzinfo=UTC),  # 00:30 local on the 31st (CEST)
                datetime(2025, 3, 30, 21, 59, tzinfo=UTC),  # 23:59 local on the 30th
            ]
        ):
            session.add(
                Ticket(
                    number=f"S{n}",
                    caller_number="1",
                    source="test",
                    category="劳动纠纷",
                    area_id=units["V1"].id,
                    accepted_at=when,
                )
            )
        session.flush()
        counts = daily_counts(session, date(2025, 3, 29), date(2025, 4, 1), berlin)
    assert list(counts.cells[("劳动纠纷", units["V1"].id)]) == [0, 2, 1]
