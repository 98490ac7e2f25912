"""Europe/Amsterdam calendar periods as UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from collector.settlement.periods import (
    PeriodError,
    contract_year,
    day_period,
    days_in_month,
    month_period,
    parse_month,
    split_at_days,
)


def test_march_2026_has_743_hours_and_starts_at_local_midnight() -> None:
    march = parse_month("2026-03")
    assert march.start_utc == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert march.end_utc == datetime(2026, 3, 31, 22, tzinfo=UTC)
    assert march.hours == 743
    assert march.label == "2026-03"


def test_october_2026_has_745_hours() -> None:
    assert month_period(2026, 10).hours == 745


def test_dst_days_have_23_and_25_hours() -> None:
    assert day_period(date(2026, 3, 29)).hours == 23
    assert day_period(date(2026, 10, 25)).hours == 25
    assert day_period(date(2026, 6, 1)).hours == 24


@pytest.mark.parametrize("text", ["2026-13", "2026-3", "26-03", "march", ""])
def test_bad_month_text_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(PeriodError, match=r"YYYY-MM|1\.\.12"):
        parse_month(text)


def test_contract_year_of_a_leap_day_start() -> None:
    year = contract_year(date(2024, 2, 29), date(2025, 3, 1))
    assert (year.start_day, year.end_day) == (date(2025, 2, 28), date(2026, 2, 28))
    with pytest.raises(PeriodError):
        contract_year(date(2024, 2, 29), date(2024, 1, 1))


def test_split_at_days_covers_the_period() -> None:
    parts = split_at_days(month_period(2026, 4), [date(2026, 4, 16), date(2026, 5, 3)])
    assert [(p.start_day, p.end_day) for p in parts] == [
        (date(2026, 4, 1), date(2026, 4, 16)),
        (date(2026, 4, 16), date(2026, 5, 1)),
    ]
    assert days_in_month(date(2028, 2, 10)) == 29
