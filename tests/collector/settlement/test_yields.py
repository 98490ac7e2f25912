"""Yield per period from lifetime counters, against hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from collector.settlement.counter_segments import (
    CounterReadings,
    Installation,
    prepare_site,
    to_epoch_s,
)
from collector.settlement.fleet_profile import FleetProfile, build_fleet_profile, learn_site_ratio
from collector.settlement.periods import parse_month
from collector.settlement.yields import site_yield

T0 = datetime(2026, 2, 27, tzinfo=UTC)


def steady(
    device: str,
    start: datetime,
    end: datetime,
    wh_per_h: float,
    first_wh: float = 0.0,
    step_min: int = 30,
) -> CounterReadings:
    """A counter rising ``wh_per_h`` every hour, read every ``step_min`` minutes."""
    pairs = []
    t, value = start, first_wh
    while t <= end:
        pairs.append((t, value))
        t += timedelta(minutes=step_min)
        value += wh_per_h * step_min / 60
    return CounterReadings.from_pairs(device, pairs)


def one_device_site(readings: CounterReadings, kwp: float = 4.0, **inst: object) -> object:
    installation = Installation(readings.device_id, T0 - timedelta(days=400), **inst)  # type: ignore[arg-type]
    return prepare_site("site-1", kwp, [installation], {readings.device_id: readings})


def test_boundary_counter_is_interpolated_between_readings() -> None:
    # readings 22:45 (1000 Wh) and 23:15 UTC (1100 Wh); 1 March local midnight is 23:00 UTC
    r = CounterReadings.from_pairs(
        "inv",
        [
            (datetime(2026, 2, 28, 22, 45, tzinfo=UTC), 1000.0),
            (datetime(2026, 2, 28, 23, 15, tzinfo=UTC), 1100.0),
            (datetime(2026, 2, 28, 23, 45, tzinfo=UTC), 1100.0),
        ],
    )
    site = one_device_site(r)
    march = parse_month("2026-03")
    # counter at start 1050, the last reading (23:45) is inside March; rest of March missing
    y = site_yield(site, march.start_utc, datetime(2026, 2, 28, 23, 45, tzinfo=UTC), None)  # type: ignore[arg-type]
    assert y.measured_wh == pytest.approx(50.0)
    assert y.estimated_wh == 0.0
    assert y.completeness == 1.0


def test_dst_month_counts_743_hours() -> None:
    r = steady("inv", T0, datetime(2026, 4, 2, tzinfo=UTC), wh_per_h=100.0)
    march = parse_month("2026-03")
    y = site_yield(one_device_site(r), march.start_utc, march.end_utc, None)  # type: ignore[arg-type]
    assert y.measured_wh == pytest.approx(74_300.0)
    assert y.estimated_wh == 0.0
    assert y.completeness == 1.0


def night_then_morning_profile() -> FleetProfile:
    """Fleet produces only on 1 April 06:00-10:00 UTC, 100 Wh/kWp per hour."""
    start = datetime(2026, 3, 31, 0, tzinfo=UTC)
    values = np.zeros(48)
    values[24 + 6 : 24 + 10] = 100.0
    return FleetProfile(to_epoch_s(start), 3600.0, values, np.ones(48, dtype=bool))


def gap_across_month_end() -> CounterReadings:
    return CounterReadings.from_pairs(
        "inv",
        [
            (datetime(2026, 3, 31, 19, 30, tzinfo=UTC), 4900.0),
            (datetime(2026, 3, 31, 20, 0, tzinfo=UTC), 5000.0),
            # gap: nothing until 1 April 10:00 UTC
            (datetime(2026, 4, 1, 10, 0, tzinfo=UTC), 8000.0),
            (datetime(2026, 4, 1, 10, 30, tzinfo=UTC), 8100.0),
        ],
    )


def test_gap_across_month_boundary_is_split_by_the_fleet_profile() -> None:
    site = one_device_site(gap_across_month_end())
    boundary = parse_month("2026-04").start_utc  # 31 March 22:00 UTC
    start = datetime(2026, 3, 31, 19, 30, tzinfo=UTC)
    end = datetime(2026, 4, 1, 10, 30, tzinfo=UTC)
    profile = night_then_morning_profile()
    before = site_yield(site, start, boundary, profile)  # type: ignore[arg-type]
    after = site_yield(site, boundary, end, profile)  # type: ignore[arg-type]
    # the fleet produced nothing 20:00-22:00, so all 3000 Wh of the gap belong to April
    assert before.measured_wh == pytest.approx(100.0)
    assert before.estimated_wh == pytest.approx(0.0)
    assert after.measured_wh == pytest.approx(100.0)
    assert after.estimated_wh == pytest.approx(3000.0)
    assert [e.kind for e in after.estimates] == ["gap_split"]
    assert after.completeness == pytest.approx(100.0 / 3100.0)
    assert before.total_wh + after.total_wh == pytest.approx(3200.0)


def test_gap_split_without_profile_is_linear_in_time() -> None:
    site = one_device_site(gap_across_month_end())
    boundary = parse_month("2026-04").start_utc
    start = datetime(2026, 3, 31, 19, 30, tzinfo=UTC)
    before = site_yield(site, start, boundary, None)  # type: ignore[arg-type]
    # 2 of the gap's 14 hours fall before the boundary: 3000 × 2/14
    assert before.estimated_wh == pytest.approx(3000.0 * 2 / 14)


def test_gap_inside_the_period_is_measured_exactly() -> None:
    pairs = steady("inv", T0, datetime(2026, 4, 2, tzinfo=UTC), 100.0).pairs()
    week = (datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 17, tzinfo=UTC))
    kept = [(t, v) for t, v in pairs if not week[0] < t < week[1]]
    site = one_device_site(CounterReadings.from_pairs("inv", kept))
    march = parse_month("2026-03")
    y = site_yield(site, march.start_utc, march.end_utc, None)  # type: ignore[arg-type]
    assert y.measured_wh == pytest.approx(74_300.0)
    assert y.completeness == 1.0


def test_week_without_any_data_is_estimated_from_the_fleet_and_the_site_ratio() -> None:
    end = datetime(2026, 4, 2, tzinfo=UTC)
    peer = steady("peer", T0, end, wh_per_h=100.0)  # 2 kWp: 50 Wh/kWp/h
    # our site, 4 kWp, makes 160 Wh/h = 0.8 × the fleet's specific yield, but its data stop
    # at 24 March 23:00 UTC (the last week of March never arrived)
    stop = datetime(2026, 3, 24, 23, tzinfo=UTC)
    ours = steady("ours", T0, stop, wh_per_h=160.0)
    peer_site = prepare_site(
        "peer", 2.0, [Installation("peer", T0 - timedelta(days=1))], {"peer": peer}
    )
    our_site = prepare_site(
        "ours", 4.0, [Installation("ours", T0 - timedelta(days=1))], {"ours": ours}
    )
    march = parse_month("2026-03")
    profile = build_fleet_profile([peer_site, our_site], T0, end)
    assert learn_site_ratio(our_site, profile) == pytest.approx(0.8)
    y = site_yield(our_site, march.start_utc, march.end_utc, profile)
    hours_measured = (stop - march.start_utc).total_seconds() / 3600  # 576
    hours_missing = 743 - hours_measured  # 167: the last week, 31 March is 23 h short
    assert y.measured_wh == pytest.approx(160.0 * hours_measured)
    # fleet 50 Wh/kWp/h over the missing hours × 4 kWp × 0.8
    assert y.estimated_wh == pytest.approx(50.0 * hours_missing * 4.0 * 0.8)
    assert [e.kind for e in y.estimates] == ["missing_stretch"]
    assert y.completeness == pytest.approx(576 / 743)


def test_inverter_replacement_counts_both_counters() -> None:
    swap = datetime(2026, 3, 15, 10, tzinfo=UTC)
    old = steady("old", T0, swap, 100.0, first_wh=2_000_000.0)
    new = steady("new", swap, datetime(2026, 4, 2, tzinfo=UTC), 100.0, first_wh=20.0)
    site = prepare_site(
        "s",
        4.0,
        [Installation("old", T0 - timedelta(days=1), swap), Installation("new", swap)],
        {"old": old, "new": new},
    )
    march = parse_month("2026-03")
    y = site_yield(site, march.start_utc, march.end_utc, None)
    assert y.measured_wh == pytest.approx(74_300.0)
    assert site.anomalies == ()


def test_unknown_reset_is_reported_and_the_stretch_between_estimated() -> None:
    pairs = steady("inv", T0, datetime(2026, 4, 2, tzinfo=UTC), 100.0, first_wh=50_000.0).pairs()
    reset_at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    reset = [(t, v - 50_000.0 - 100.0 * 24 * 11.5 + 7.0 if t >= reset_at else v) for t, v in pairs]
    site = one_device_site(CounterReadings.from_pairs("inv", reset))
    assert [a.kind for a in site.anomalies] == ["unknown_reset"]  # type: ignore[attr-defined]
    march = parse_month("2026-03")
    flat = FleetProfile(
        to_epoch_s(T0), 3600.0, np.full(24 * 40, 25.0), np.ones(24 * 40, dtype=bool)
    )
    y = site_yield(site, march.start_utc, march.end_utc, flat, site_ratio=1.0)  # type: ignore[arg-type]
    # 742.5 h measured at 100 Wh/h; the half hour across the reset: 25 Wh/kWp/h × 4 kWp × 0.5 h
    assert y.measured_wh == pytest.approx(74_250.0)
    assert y.estimated_wh == pytest.approx(50.0)


def test_known_reset_is_not_an_anomaly() -> None:
    pairs = steady("inv", T0, datetime(2026, 4, 2, tzinfo=UTC), 100.0, first_wh=50_000.0).pairs()
    reset_at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    shifted = [(t, v - 60_000.0 if t >= reset_at else v) for t, v in pairs]
    site = one_device_site(CounterReadings.from_pairs("inv", shifted), known_resets=(reset_at,))
    assert site.anomalies == ()  # type: ignore[attr-defined]


def test_spike_and_dusk_dip_are_dropped_and_reported() -> None:
    pairs = steady("inv", T0, datetime(2026, 4, 2, tzinfo=UTC), 100.0, first_wh=50_000.0).pairs()
    pairs[500] = (pairs[500][0], pairs[500][1] * 100)  # 100× spike after a bad read
    pairs[900] = (pairs[900][0], 0.0)  # counter reads 0 once at dusk
    site = one_device_site(CounterReadings.from_pairs("inv", pairs))
    assert sorted(a.kind for a in site.anomalies) == ["dip", "spike"]  # type: ignore[attr-defined]
    march = parse_month("2026-03")
    y = site_yield(site, march.start_utc, march.end_utc, None)  # type: ignore[arg-type]
    assert y.measured_wh == pytest.approx(74_300.0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        CounterReadings.from_pairs("inv", [(datetime(2026, 3, 1), 1.0)])
