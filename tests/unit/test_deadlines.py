"""Due times on the Chinese working-day calendar, worked out by hand."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.config import DeadlineConfig
from core.deadlines import due_at, is_working_day
from core.vocabulary import Urgency

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = DeadlineConfig()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_adjusted_working_sunday_counts_as_a_working_day() -> None:
    # 2025: National Day holiday Oct 1-8; Sunday Sep 28 and Saturday Oct 11 were working days.
    assert is_working_day(local(2025, 9, 28).date())
    assert not is_working_day(local(2025, 10, 3).date())
    friday = local(2025, 9, 26, 10, 0)
    assert due_at(friday, Urgency.EMERGENCY, RULES, SHANGHAI) == local(2025, 9, 28, 10, 0)


def test_daily_life_skips_the_golden_week_and_lands_on_the_working_saturday() -> None:
    # Tue Sep 30 -> Oct 1-8 off -> Thu Oct 9 (1), Fri Oct 10 (2), Sat Oct 11 (3, adjusted)
    due = due_at(local(2025, 9, 30, 16, 45), Urgency.DAILY_LIFE, RULES, SHANGHAI)
    assert due == local(2025, 10, 11, 16, 45)


def test_complex_counts_calendar_days_and_utc_input_is_converted() -> None:
    accepted_utc = datetime(2025, 9, 30, 20, 0, tzinfo=ZoneInfo("UTC"))  # Oct 1 04:00 local
    assert due_at(accepted_utc, Urgency.COMPLEX, RULES, SHANGHAI) == local(2025, 10, 8, 4, 0)


def test_weekend_acceptance_counts_from_the_next_working_day() -> None:
    saturday = local(2026, 11, 21, 9, 0)
    assert due_at(saturday, Urgency.EMERGENCY, RULES, SHANGHAI) == local(2026, 11, 23, 9, 0)


def test_a_year_without_a_schedule_falls_back_to_weekdays(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        friday = local(2031, 1, 10, 12, 0)
        assert due_at(friday, Urgency.DAILY_LIFE, RULES, SHANGHAI) == local(2031, 1, 15, 12, 0)
    assert "no holiday schedule for 2031" in caplog.text
