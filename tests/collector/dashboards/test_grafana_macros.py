"""Grafana's time ranges, intervals and variable interpolation, reproduced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from collector.dashboards.grafana_macros import (
    MacroError,
    TimeRange,
    Variable,
    apply_macros,
    dashboard_range,
    format_interval,
    panel_range,
    query_interval,
    render_query,
)

AMS = ZoneInfo("Europe/Amsterdam")


def test_today_on_the_spring_dst_day_has_23_hours() -> None:
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    today = panel_range(dashboard_range("now-24h", "now", now, AMS), "now/d", now, AMS)
    assert today.start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert today.end - today.start == timedelta(hours=23) - timedelta(milliseconds=1)


def test_this_month_and_year_round_in_the_dashboard_time_zone() -> None:
    now = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)  # already 1 February in Amsterdam
    month = panel_range(dashboard_range("now-1d", "now", now, AMS), "now/M", now, AMS)
    assert month.start == datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    year = dashboard_range("now/y", "now", now, AMS)
    assert year.start == datetime(2025, 12, 31, 23, 0, tzinfo=UTC) and year.end == now


def test_relative_overrides_end_now() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    last = panel_range(dashboard_range("now-7d", "now", now, AMS), "15m", now, AMS)
    assert last == TimeRange(now - timedelta(minutes=15), now)
    with pytest.raises(MacroError):
        panel_range(last, "yesterday", now, AMS)


@pytest.mark.parametrize(
    ("span", "points", "expected"),
    [
        (timedelta(hours=24), 1200, "1m"),
        (timedelta(hours=1), 1200, "10s"),  # the data source's minimum
        (timedelta(days=30), 900, "1h"),
        (timedelta(days=365), 900, "12h"),
    ],
)
def test_interval_is_rounded_like_grafana(span: timedelta, points: int, expected: str) -> None:
    assert format_interval(query_interval(span, points)) == expected


def test_macros_are_replaced_as_the_influxdb_backend_does() -> None:
    tr = TimeRange(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC))
    out = apply_macros(
        "SELECT mean(x) FROM m WHERE $timeFilter GROUP BY time($__interval) -- $__interval_ms",
        tr,
        timedelta(minutes=5),
    )
    assert "time >= 1780272000000ms and time <= 1780358400000ms" in out
    assert "time(5m)" in out and "300000" in out


def test_variables_single_multi_and_all() -> None:
    single = Variable("device", ("inv.1",))
    assert single.interpolate() == r"inv\.1"
    assert Variable("n", ("42",)).interpolate() == "42"
    multi = Variable("gateway", ("gw-1", "gw-2"), multi=True, include_all=True, all_value=".*")
    assert multi.interpolate() == "gw-1|gw-2"
    everything = Variable("gateway", (), True, True, ".*", all_selected=True)
    q = render_query(
        '"gateway" =~ /^($gateway)$/ AND "device" =~ /^$device$/ AND time > ${__to}ms - 1d',
        time_range=TimeRange(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC)),
        interval=timedelta(seconds=10),
        variables=[everything, single],
    )
    assert q == '"gateway" =~ /^(.*)$/ AND "device" =~ /^inv\\.1$/ AND time > 1780358400000ms - 1d'
    with pytest.raises(MacroError):
        Variable("device", ("a", "b")).interpolate()
