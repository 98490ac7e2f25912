"""Self-consumption per household from inverter yield and the grid meter's counters.

The counters are built from constant powers, so a lifetime counter is exactly linear between
the readings and the expected energy of any span is power x time, computed here
independently of the interpolation; the readings are taken on clocks that share neither
phase nor interval with the quarter-hour grid (inverter every 37 s, meter every 300 s offset
by 7 s), as on a real gateway.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.settlement.periods import month_period
from collector.settlement.self_consumption import (
    MIN_HOUSEHOLDS,
    Balance,
    CounterSample,
    SelfConsumptionError,
    aggregate_households,
    balance_interval,
    balance_intervals,
    by_day,
    by_month,
    counter_at_edges_wh,
    day_span,
    grid_edges_s,
    hour_ranges,
    interval_energies_wh,
    period_span,
    surplus_hours,
    total,
)


def linear_counter(
    start: datetime, end: datetime, every_s: float, offset_s: float, power_w: float, at_wh: float
) -> list[CounterSample]:
    """Readings of a counter rising at a constant power, on the given clock."""
    samples = []
    t = start - timedelta(seconds=every_s) + timedelta(seconds=offset_s)
    while t <= end + timedelta(seconds=every_s):
        hours = (t - start).total_seconds() / 3600
        samples.append(CounterSample(t, at_wh + power_w * hours))
        t += timedelta(seconds=every_s)
    return samples


START = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=2)


def test_constant_powers_on_unaligned_clocks_give_power_times_time() -> None:
    production_w, import_w, export_w = 2400.0, 150.0, 1700.0
    production = linear_counter(START, END, 37, 11, production_w, 1_234_567.0)
    imports = linear_counter(START, END, 300, 7, import_w, 8_000_000.0)
    exports = linear_counter(START, END, 300, 7, export_w, 3_000_000.0)

    intervals = balance_intervals([production], imports, exports, START, END)

    assert len(intervals) == 8
    quarter_h = 0.25
    for item in intervals:
        b = item.balance
        assert b.production_wh == pytest.approx(production_w * quarter_h)
        assert b.import_wh == pytest.approx(import_w * quarter_h)
        assert b.export_wh == pytest.approx(export_w * quarter_h)
        assert b.self_consumed_wh == pytest.approx((production_w - export_w) * quarter_h)
        assert b.consumption_wh == pytest.approx((import_w + production_w - export_w) * quarter_h)
    whole = total(intervals)
    assert whole.self_consumption_ratio == pytest.approx((production_w - export_w) / production_w)
    assert whole.self_sufficiency_ratio == pytest.approx(
        (production_w - export_w) / (import_w + production_w - export_w)
    )
    assert whole.completeness == 1.0


def test_export_beyond_production_is_never_self_consumed() -> None:
    # The meter's clock runs ahead of the inverter's: in one interval the meter saw more
    # export than the inverter produced. That surplus is reported, not taken from solar.
    b = balance_interval(production_wh=300.0, import_wh=0.0, export_wh=420.0, duration_s=900)
    assert b.self_consumed_wh == 0.0
    assert b.exported_solar_wh == 300.0
    assert b.unattributed_export_wh == pytest.approx(120.0)
    assert b.self_consumption_ratio == 0.0


@given(
    production=st.floats(0, 10_000),
    imports=st.floats(0, 10_000),
    exports=st.floats(0, 10_000),
)
def test_each_solar_wh_is_self_consumed_or_exported_never_both(
    production: float, imports: float, exports: float
) -> None:
    b = balance_interval(production, imports, exports, 900)
    assert b.self_consumed_wh + b.exported_solar_wh == pytest.approx(production)
    assert 0 <= b.self_consumed_wh <= production
    assert b.exported_solar_wh <= exports
    assert b.exported_solar_wh + b.unattributed_export_wh == pytest.approx(exports)
    for ratio in (b.self_consumption_ratio, b.self_sufficiency_ratio):
        assert ratio is None or 0 <= ratio <= 1 + 1e-12


def test_a_gap_or_a_reset_is_missing_time_never_energy() -> None:
    production = linear_counter(START, END, 37, 0, 1000.0, 0.0)
    imports = linear_counter(START, END, 300, 7, 200.0, 10_000.0)
    # The meter is swapped 40 minutes in: its export counter restarts at zero.
    swap = START + timedelta(minutes=40)
    exports = [s for s in linear_counter(START, END, 300, 7, 500.0, 90_000.0) if s.ts < swap]
    exports += [
        CounterSample(s.ts, s.energy_wh - 90_000.0 - 500.0 * 40 / 60)
        for s in linear_counter(START, END, 300, 7, 500.0, 90_000.0)
        if s.ts >= swap
    ]
    # The inverter is silent for an hour from 11:00.
    production = [
        s for s in production if not START + timedelta(hours=1) < s.ts < END - timedelta(minutes=1)
    ]

    intervals = balance_intervals([production], imports, exports, START, END)

    missing = [i.start for i in intervals if i.balance.covered_s == 0]
    # 10:30-10:45 holds the swap. No inverter reading lies between 10:59:xx and 11:59:xx, a
    # gap longer than 30 minutes: the edges 11:00 to 11:45 have no production counter, so
    # every interval touching one of them is missing.
    assert missing == [START + timedelta(minutes=m) for m in (30, 45, 60, 75, 90, 105)]
    for item in intervals:
        b = item.balance
        assert b.production_wh >= 0 and b.export_wh >= 0 and b.import_wh >= 0
    whole = total(intervals)
    assert whole.missing_s == 900 * len(missing)
    assert whole.production_wh == pytest.approx(1000.0 * 0.25 * (8 - len(missing)))


def test_days_follow_amsterdam_time_with_its_clock_changes() -> None:
    for day, quarters in ((date(2026, 3, 29), 92), (date(2026, 10, 25), 100)):
        start, end = day_span(day)
        imports = linear_counter(start, end, 300, 3, 400.0, 0.0)
        exports = linear_counter(start, end, 300, 3, 0.0, 0.0)
        intervals = balance_intervals([], imports, exports, start, end)
        assert len(intervals) == quarters
        days = by_day(intervals)
        assert list(days) == [day]
        assert days[day].import_wh == pytest.approx(400.0 * quarters / 4)


def test_months_split_at_local_midnight() -> None:
    start, end = period_span(month_period(2026, 6))
    start -= timedelta(days=1)
    end += timedelta(days=1)
    imports = linear_counter(start, end, 300, 7, 100.0, 0.0)
    exports = linear_counter(start, end, 300, 7, 50.0, 0.0)
    production = linear_counter(start, end, 60, 13, 80.0, 0.0)
    months = by_month(balance_intervals([production], imports, exports, start, end))
    assert list(months) == ["2026-05", "2026-06", "2026-07"]
    # June in Amsterdam is 30 days of 24 hours; the neighbours get one day each.
    assert months["2026-06"].import_wh == pytest.approx(100.0 * 24 * 30)
    assert months["2026-05"].import_wh == pytest.approx(100.0 * 24)
    assert months["2026-06"].self_consumed_wh == pytest.approx(30.0 * 24 * 30)


def test_grid_refuses_spans_off_the_grid_and_naive_times() -> None:
    with pytest.raises(SelfConsumptionError, match="grid"):
        grid_edges_s(START + timedelta(minutes=5), END)
    with pytest.raises(SelfConsumptionError, match="time zone"):
        counter_at_edges_wh([CounterSample(datetime(2026, 1, 1), 0.0)], [0.0])
    with pytest.raises(SelfConsumptionError, match="divide an hour"):
        grid_edges_s(START, END, 700)
    assert interval_energies_wh([1.0, None, 3.0, 2.0]) == [None, None, None]


def test_groups_need_five_households() -> None:
    one = Balance(production_wh=1000, import_wh=500, export_wh=400, self_consumed_wh=600,
                  exported_solar_wh=400, covered_s=86400)  # fmt: skip
    few = {f"m{k}": one for k in range(MIN_HOUSEHOLDS - 1)}
    assert aggregate_households(few) is None
    assert aggregate_households({**few, "silent": Balance(missing_s=86400)}) is None
    group = aggregate_households({**few, "last": one})
    assert group is not None
    assert group.households == MIN_HOUSEHOLDS
    assert group.balance.self_consumed_wh == pytest.approx(600 * MIN_HOUSEHOLDS)
    assert group.balance.self_consumption_ratio == pytest.approx(0.6)


def test_surplus_hours_from_the_households_own_history() -> None:
    # Ten days; the panels make 3 kW from 11:00 to 15:00 local time (CEST: 09:00-13:00 UTC)
    # while the home uses 500 W; the rest of the day nothing is produced.
    start = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)  # local midnight
    end = start + timedelta(days=10)
    production, imports, exports = [], [], []
    prod_wh = import_wh = export_wh = 0.0
    t = start
    while t <= end:
        production.append(CounterSample(t, prod_wh))
        imports.append(CounterSample(t, import_wh))
        exports.append(CounterSample(t, export_wh))
        sunny = 9 <= t.hour < 13
        step_h = 60 / 3600
        prod_wh += (3000.0 if sunny else 0.0) * step_h
        export_wh += (2500.0 if sunny else 0.0) * step_h
        import_wh += (0.0 if sunny else 500.0) * step_h
        t += timedelta(seconds=60)
    intervals = balance_intervals([production], imports, exports, start, end)
    hours = surplus_hours(intervals)
    assert hour_ranges(hours) == [(11, 15)]
    assert surplus_hours(intervals, min_days=11) == []


def test_a_homes_inverters_add_up_and_a_silent_one_makes_the_interval_missing() -> None:
    east = linear_counter(START, END, 37, 5, 1200.0, 50_000.0)
    west = linear_counter(START, END, 60, 21, 800.0, 70_000.0)
    imports = linear_counter(START, END, 300, 7, 100.0, 0.0)
    exports = linear_counter(START, END, 300, 7, 900.0, 0.0)
    both = total(balance_intervals([east, west], imports, exports, START, END))
    assert both.production_wh == pytest.approx((1200.0 + 800.0) * 2)
    assert both.self_consumed_wh == pytest.approx((2000.0 - 900.0) * 2)
    west_late = [s for s in west if s.ts >= START + timedelta(minutes=50)]
    partial = balance_intervals([east, west_late], imports, exports, START, END)
    assert [i.balance.covered_s == 0 for i in partial][:4] == [True, True, True, True]
    assert total(partial).production_wh == pytest.approx(2000.0 * 0.25 * 4)
