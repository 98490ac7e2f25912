"""Persistence helpers, solar geometry, peer-comparison refinements, implausible values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from collector.faults.episodes import findings
from collector.faults.integrity import detect_frozen, detect_implausible_power
from collector.faults.model import Detection, FaultKind, FleetDaily, orientation_group
from collector.faults.peers import detect_underperformance
from collector.faults.solar import (
    clear_sky_daily_kwh_per_kwp,
    noon_elevation_deg,
    sun_elevation_deg,
    sunset_utc,
)
from collector.faults.temporal import forward_fill, hold, hysteresis, rolling_all

bools = arrays(np.bool_, st.tuples(st.integers(1, 4), st.integers(1, 60)))


@settings(max_examples=60, deadline=None)
@given(cond=bools, n_on=st.integers(1, 5))
def test_hysteresis_raises_only_after_n_consecutive(cond: np.ndarray, n_on: int) -> None:
    active = hysteresis(cond, ~cond, n_on, 1)
    expected = rolling_all(cond, n_on)
    np.testing.assert_array_equal(active, expected)


@settings(max_examples=60, deadline=None)
@given(events=bools, steps=st.integers(1, 10))
def test_hold_keeps_each_event_for_its_window(events: np.ndarray, steps: int) -> None:
    held = hold(events, steps)
    for d, t in zip(*np.nonzero(events), strict=True):
        assert held[d, t : t + steps].all()
    # nothing is active without an event in the window before it
    for d, t in zip(*np.nonzero(held), strict=True):
        assert events[d, max(0, t - steps + 1) : t + 1].any()


def test_neutral_steps_keep_the_count() -> None:
    raise_ = np.array([[1, 0, 1, 0, 0, 1]], dtype=bool)
    clear = np.array([[0, 0, 0, 0, 0, 0]], dtype=bool)
    assert hysteresis(raise_, clear, 3, 1).tolist() == [[False, False, False, False, False, True]]
    clear[0, 3] = True  # a clear step in between resets the count
    assert not hysteresis(raise_, clear, 3, 1).any()


def test_forward_fill() -> None:
    x = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan]])
    np.testing.assert_array_equal(forward_fill(x), [[np.nan, 1.0, 1.0, 3.0, 3.0]])


def test_findings_carry_episodes_and_evidence() -> None:
    active = np.array([[0, 1, 1, 0, 1], [0, 0, 0, 0, 0]], dtype=bool)
    evidence = {"x": np.arange(10, dtype=float).reshape(2, 5)}
    times = np.arange(
        np.datetime64("2026-06-10T10:00"), np.datetime64("2026-06-10T10:25"), np.timedelta64(5, "m")
    )
    out = findings(
        Detection(FaultKind.FROZEN_VALUE, active, evidence), times, ["a", "b"], ["g", "h"]
    )
    assert [(f.device_id, f.start.minute, f.last.minute, f.ongoing) for f in out] == [
        ("a", 5, 10, False),
        ("a", 20, 20, True),
    ]
    assert out[0].evidence == {"steps": 2, "x_at_start": 1.0, "x": 2.0}
    assert out[0].start.tzinfo is UTC


def test_solar_geometry_of_zwolle() -> None:
    summer = sunset_utc(date(2026, 6, 21))
    winter = sunset_utc(date(2026, 12, 21))
    assert (
        datetime(2026, 6, 21, 19, 50, tzinfo=UTC)
        < summer
        < datetime(2026, 6, 21, 20, 15, tzinfo=UTC)
    )
    assert (
        datetime(2026, 12, 21, 15, 10, tzinfo=UTC)
        < winter
        < datetime(2026, 12, 21, 15, 40, tzinfo=UTC)
    )
    noon = noon_elevation_deg(np.array(["2026-06-21", "2026-12-21"], dtype="datetime64[D]"))
    assert noon[0] == pytest.approx(90 - 52.52 + 23.44, abs=0.5)
    assert noon[1] == pytest.approx(90 - 52.52 - 23.44, abs=0.5)
    assert sun_elevation_deg(np.array(["2026-06-21T00:00"], dtype="datetime64[s]"))[0] < 0
    days = np.array(["2026-06-21", "2026-12-21"], dtype="datetime64[D]")
    cs = clear_sky_daily_kwh_per_kwp(
        days, np.array([35.0, 35.0, 35.0]), np.array([180.0, 90.0, 270.0])
    )
    assert cs[0, 0] > cs[1, 0] and cs[0, 1] > 2 * cs[1, 1]  # south beats east, in winter by far
    assert cs[0, 0] > 3 * cs[0, 1]  # a south roof's clear June day gives over 3x December's
    assert cs[1, 0] == pytest.approx(cs[2, 0], rel=0.05)  # east and west alike over a day


def test_orientation_groups() -> None:
    assert orientation_group(180, 35) == "south"
    assert orientation_group(95, 35) == "east"
    assert orientation_group(265, 20) == "west"
    assert orientation_group(200, 35) == "south"
    assert orientation_group(215, 35) == "south-west"
    assert orientation_group(90, 5) == "flat"


def test_frozen_at_the_clipping_plateau_is_caught_by_the_voltage(make_fleet: Any) -> None:
    fleet = make_fleet(start=date(2026, 6, 10), days=1)
    fleet.ac_rating_w[2] = fleet.kwp[2] * 1000 * 0.45
    fleet.ac_power_w[2] = np.minimum(fleet.ac_power_w[2], fleet.ac_rating_w[2])
    rng = np.random.default_rng(1)
    volts = 230 + rng.normal(0, 0.6, fleet.ac_power_w.shape).round(1)
    s = replace(fleet.series(), ac_voltage_v=volts)
    assert not detect_frozen(s).active.any()  # live voltage: the plateau is clipping
    a, b = fleet.index(0, 11.0), fleet.index(0, 12.0)
    volts[2, a:b] = volts[2, a]  # stale registers: power and voltage repeat
    det = detect_frozen(replace(fleet.series(), ac_voltage_v=volts))
    assert det.active[2, a + 6 : b].all() and det.active.sum() == det.active[2].sum()


def test_a_65535_spike_is_implausible(make_fleet: Any) -> None:
    fleet = make_fleet(start=date(2026, 6, 10), days=1)
    a = fleet.index(0, 10.0)
    fleet.ac_power_w[6, a] = 65535.0
    det = detect_implausible_power(fleet.series())
    assert det.active[6, a] and det.active.sum() == det.active[6].sum()
    assert det.evidence["ac_power_w"][6, a] == 65535.0


def _daily_with_geometry(fleet: Any) -> FleetDaily:
    d = fleet.daily()
    tilt = np.array([s.tilt_deg for s in fleet.sites])
    az = np.array([s.azimuth_deg for s in fleet.sites])
    return replace(
        d,
        clear_sky_kwh_per_kwp=clear_sky_daily_kwh_per_kwp(d.days, tilt, az),
        groups=tuple(orientation_group(a, t) for a, t in zip(az, tilt, strict=True)),
    )


def test_east_roofs_into_winter_follow_their_geometry(make_fleet: Any) -> None:
    # 80 autumn days: the sun sinks and an east roof's share of the fleet falls with it
    rng = np.random.default_rng(11)
    k = rng.choice([1.0, 0.7, 0.4, 0.15], size=80, p=[0.3, 0.3, 0.2, 0.2])
    sites = list(make_fleet(start=date(2026, 10, 1), days=1).sites)
    sites += [
        replace(sites[12], azimuth_deg=95.0, azimuth2_deg=None, tilt_deg=40.0) for _ in range(5)
    ]
    fleet = make_fleet(start=date(2026, 10, 1), days=80, sites=sites, clearness=k)
    daily = _daily_with_geometry(fleet)
    with_geometry = detect_underperformance(daily)
    # (the crafted shaded roof, 13, loses all direct sun once the noon sun is below 30°, from
    # mid-October: a new shade the comparison cannot tell from a fault, see docs/faults.md)
    others = np.arange(len(sites)) != 13
    assert not with_geometry.active[others].any()
    # and a 35 % loss on one east roof is still found within 3 days
    energy = daily.energy_wh.copy()
    energy[15, 60:] *= 0.65
    det = detect_underperformance(replace(daily, energy_wh=energy))
    hits = np.flatnonzero(det.active[15])
    assert hits.size and 60 <= hits[0] <= 62
    assert det.active.sum(axis=1)[others & (np.arange(len(sites)) != 15)].sum() == 0


def test_group_share_takes_out_weather_that_hits_one_orientation(make_fleet: Any) -> None:
    fleet = make_fleet(start=date(2026, 5, 1), days=40)
    daily = _daily_with_geometry(fleet)
    groups = list(daily.groups or ())
    # morning fog on days 35 and 36 over the five roofs of group "x": each loses 35 %
    members = [0, 1, 2, 3, 4]
    for i in members:
        groups[i] = "x"
    energy = daily.energy_wh.copy()
    energy[members, 35:37] *= 0.65
    grouped = detect_underperformance(replace(daily, energy_wh=energy, groups=tuple(groups)))
    ungrouped = detect_underperformance(replace(daily, energy_wh=energy, groups=None))
    assert not grouped.active.any()
    assert ungrouped.active[members, 36].all()  # without groups the fog looks like five faults
