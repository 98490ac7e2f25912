"""The series checks of ``faults check`` on crafted single-device series."""

from __future__ import annotations

import numpy as np

from collector.faults.model import STATE_CODE, FaultKind, FleetSeries
from collector.faults.series_checks import (
    ClearSkyParams,
    detect_clipping,
    detect_gaps,
    detect_night_production,
    detect_spikes,
    detect_stale,
    detect_underperformance_clear_sky,
)
from zonnewijk_wire import InverterState

STEP_S = 900


def series(power: np.ndarray, elevation: np.ndarray, rating_w: float = 1000.0) -> FleetSeries:
    t = power.size
    state = np.where(np.isfinite(power), STATE_CODE[InverterState.UNKNOWN], -1)[None, :]
    return FleetSeries(
        times=(np.arange(t) * STEP_S).astype("datetime64[s]"),
        step_s=STEP_S,
        device_ids=("inv",),
        gateway_ids=("gw",),
        kwp=np.array([rating_w / 1000]),
        ac_rating_w=np.array([rating_w]),
        ac_power_w=power[None, :].astype(float),
        ac_energy_wh=np.full((1, t), np.nan),
        state=state.astype(np.int64),
        event_bits=np.zeros((1, t), dtype=np.int64),
        dc_power_w=np.full((1, 1, t), np.nan),
        gateway_seen=np.isfinite(power)[None, :],
        sun_elevation_deg=elevation.astype(float),
    )


def day_curve(days: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A sine day (sun up 06-18), 96 steps per day, slightly noisy power; and the elevation."""
    hours = np.arange(96 * days) * 0.25 % 24
    elevation = 60 * np.sin(np.pi * (hours - 6) / 12)
    rng = np.random.default_rng(1)
    power = np.maximum(0.0, 800 * np.sin(np.pi * (hours - 6) / 12)) + rng.uniform(0, 3, hours.size)
    return np.round(np.where(elevation > 0, power, 0.0), 1), elevation


def test_a_value_repeated_for_an_hour_is_stale_at_any_sun_height() -> None:
    power, elevation = day_curve()
    power[40:46] = power[40]  # 10:00-11:30
    power[80:90] = 55.5  # 20:00-22:30, after dark: a logger repeating its last value
    active = detect_stale(series(power, elevation)).active[0]
    assert active[40:46].all() and active[80:90].all()
    assert active.sum() == 16


def test_repeated_zeros_and_a_clipping_plateau_are_not_stale() -> None:
    power, elevation = day_curve()
    power[44:52] = 1000.0  # at the rating
    s = series(power, elevation)
    assert not detect_stale(s).active.any()
    clipping = detect_clipping(s)
    assert clipping.kind is FaultKind.CLIPPING and clipping.active[0, 44:52].all()


def test_a_single_spike_or_dip_is_an_outlier_and_a_cloud_edge_is_not() -> None:
    power, elevation = day_curve()
    power[40] = 50.0  # a dip between neighbours that agree
    power[60:64] *= 0.3  # a cloud for an hour: a step down and up, not one reading
    active = detect_spikes(series(power, elevation)).active[0]
    assert np.flatnonzero(active).tolist() == [40]


def test_power_after_dark_is_night_production() -> None:
    power, elevation = day_curve()
    power[88:92] = 400.0 + np.arange(4)
    active = detect_night_production(series(power, elevation)).active[0]
    assert np.flatnonzero(active).tolist() == [88, 89, 90, 91]


def test_a_logger_that_sleeps_at_night_has_gaps_only_in_daylight() -> None:
    power, elevation = day_curve(days=3)
    power[elevation < 0] = np.nan  # no rows at night
    power[96 + 40 : 96 + 44] = np.nan  # one hour missing on day two
    active = detect_gaps(series(power, elevation)).active[0]
    assert np.flatnonzero(active).tolist() == list(range(136, 140))


def test_one_device_underperforms_against_its_own_clear_sky_ratio() -> None:
    days = 20
    power, _ = day_curve(days)
    poa = np.maximum(0.0, 1000 * np.sin(np.pi * ((np.arange(96 * days) * 0.25 % 24) - 6) / 12))
    rng = np.random.default_rng(2)
    daily = rng.uniform(0.3, 1.0, days)
    daily[::3] = 1.0  # a clear day every three days
    clouds = np.repeat(daily, 96)
    power = power * clouds
    power[96 * 14 :] *= 0.4
    times = (np.arange(96 * days) * STEP_S).astype("datetime64[s]")
    day_list, detection = detect_underperformance_clear_sky(
        times, power[None, :], poa[None, :], np.array([1000.0]), ClearSkyParams()
    )
    assert len(day_list) == days
    flagged = np.flatnonzero(detection.active[0]).tolist()
    assert flagged and min(flagged) >= 14 and max(flagged) == days - 1
