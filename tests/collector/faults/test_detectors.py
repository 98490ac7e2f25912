"""Each detector on crafted data: it finds what it should, when it should, and nothing else."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import pytest

from collector.faults.fault_state import detect_fault_state
from collector.faults.integrity import detect_counter_anomalies, detect_frozen
from collector.faults.model import EVENT_BIT, STATE_CODE
from collector.faults.offline import OfflineParams, detect_offline
from collector.faults.peers import detect_underperformance
from collector.faults.production import detect_no_production
from collector.faults.strings import detect_string_imbalance
from zonnewijk_wire import InverterState

# the crafted fleet (conftest.py): 12 south-ish roofs, then an east/west and a shaded one
EAST_WEST = 12
SHADED = 13
STEP_S = 300


def _first(active: np.ndarray, device: int) -> int | None:
    hits = np.flatnonzero(active[device])
    return int(hits[0]) if hits.size else None


@pytest.fixture
def day(make_fleet: Any) -> Any:
    return make_fleet(start=date(2026, 6, 10), days=1)


@pytest.fixture(scope="module")
def cloudy_day(make_fleet: Any) -> Any:
    return make_fleet(start=date(2026, 6, 10), days=1, clearness=np.array([0.12]))


# --- the healthy fleet raises nothing -------------------------------------------------------


@pytest.mark.parametrize("weather", ["clear", "cloudy"])
def test_healthy_day_raises_nothing(day: Any, cloudy_day: Any, weather: str) -> None:
    fleet = day if weather == "clear" else cloudy_day
    s = fleet.series()
    gw, dev = detect_offline(s)
    for det in (
        gw,
        dev,
        detect_no_production(s),
        detect_fault_state(s),
        detect_string_imbalance(s),
        detect_frozen(s),
        detect_counter_anomalies(s),
    ):
        assert not det.active.any(), f"{det.kind} raised on a healthy {weather} day"


# --- offline --------------------------------------------------------------------------------


def test_gateway_down_is_told_apart_from_inverter_down(day: Any) -> None:
    down = day.index(0, 10.0)
    day.ac_power_w[2, down:] = np.nan
    day.state[2, down:] = -1
    day.gateway_seen[2, down:] = False  # gateway 2 is dead
    day.ac_power_w[5, down:] = np.nan
    day.state[5, down:] = -1  # inverter 5 silent, its gateway still sends status
    gw, dev = detect_offline(day.series())
    assert _first(gw.active, 2) == down + 2  # 15 min of silence: 3 steps
    assert not dev.active[2].any()
    assert _first(dev.active, 5) == down + 2
    assert not gw.active[5].any()
    assert gw.evidence["silent_s"][2, -1] > 10 * 3600
    assert gw.active.sum(axis=1)[[0, 1, 3, 4]].sum() == 0


def test_inverter_silent_at_night_is_offline_unless_configured_otherwise(day: Any) -> None:
    night = day.sun_elevation_deg < 0
    day.state[4, night] = -1
    day.ac_power_w[4, night] = np.nan
    _, dev = detect_offline(day.series())
    assert dev.active[4].any()  # by default inverters are expected to answer at night
    _, dev = detect_offline(day.series(), OfflineParams(device_min_elevation_deg=0.0))
    assert not dev.active.any()


def test_devices_not_installed_are_not_offline(day: Any) -> None:
    day.state[3, :] = -1
    day.ac_power_w[3, :] = np.nan
    s = day.series()
    expected = np.ones_like(s.present)
    expected[3] = False
    _, dev = detect_offline(s)
    assert dev.active[3].any()
    _, dev = detect_offline(replace(s, expected=expected))
    assert not dev.active.any()


def test_offline_clears_when_readings_return(day: Any) -> None:
    a, b = day.index(0, 9.0), day.index(0, 11.0)
    day.state[1, a:b] = -1
    day.ac_power_w[1, a:b] = np.nan
    _, dev = detect_offline(day.series())
    assert dev.active[1, b - 1]
    assert not dev.active[1, b:].any()


# --- no production --------------------------------------------------------------------------


def test_dead_inverter_in_daylight_found_within_20_minutes(day: Any) -> None:
    dead = day.index(0, 9.5)
    day.ac_power_w[3, dead:] = 0.0
    day.state[3, dead:] = STATE_CODE[InverterState.STANDBY]
    det = detect_no_production(day.series())
    first = _first(det.active, 3)
    assert first is not None
    assert (first - dead) * STEP_S <= 20 * 60
    assert det.active.sum(axis=1)[np.arange(14) != 3].sum() == 0
    assert det.evidence["fleet_w_per_kwp"][3, first] > 300


def test_no_production_on_an_overcast_day_only_when_neighbours_produce(make_fleet: Any) -> None:
    fleet = make_fleet(start=date(2026, 6, 10), days=1, clearness=np.array([0.12]))
    fleet.ac_power_w[3, :] = 0.0
    det = detect_no_production(fleet.series())
    # the neighbours still make 60+ W/kWp at midday under this overcast, so it is found
    assert det.active[3].any()
    dark = make_fleet(start=date(2026, 12, 21), days=1, clearness=np.array([0.0]))
    dark.ac_power_w *= 0.5  # a dark December day: the fleet stays below 60 W/kWp all day
    assert np.nanmax(np.nanmedian(dark.ac_power_w / dark.kwp[:, None], axis=0)) < 60
    dark.ac_power_w[3, :] = 0.0
    assert not detect_no_production(dark.series()).active.any()


def test_fault_state_is_not_also_reported_as_no_production(day: Any) -> None:
    a = day.index(0, 10.0)
    day.ac_power_w[6, a:] = 0.0
    day.state[6, a:] = STATE_CODE[InverterState.FAULT]
    assert not detect_no_production(day.series()).active.any()
    assert detect_fault_state(day.series()).active[6].any()


# --- fault state ----------------------------------------------------------------------------


def test_fault_state_raises_after_ten_minutes_and_clears(day: Any) -> None:
    a, b = day.index(0, 10.0), day.index(0, 12.0)
    day.state[0, a:b] = STATE_CODE[InverterState.FAULT]
    det = detect_fault_state(day.series())
    assert _first(det.active, 0) == a + 1
    assert not det.active[0, b + 3 :].any()
    assert det.evidence["state_code"][0, a + 1] == STATE_CODE[InverterState.FAULT]


def test_single_fault_flash_and_grid_events_do_not_raise(day: Any) -> None:
    day.state[0, day.index(0, 5.0)] = STATE_CODE[InverterState.FAULT]
    day.event_bits[1, day.index(0, 10.0) : day.index(0, 11.0)] = EVENT_BIT["grid_disconnect"]
    assert not detect_fault_state(day.series()).active.any()


def test_fault_event_bits_raise_without_fault_state(day: Any) -> None:
    a = day.index(0, 13.0)
    day.event_bits[7, a:] = EVENT_BIT["ground_fault"]
    det = detect_fault_state(day.series())
    assert _first(det.active, 7) == a + 1


# --- string imbalance -----------------------------------------------------------------------


def test_dead_string_found_within_about_an_hour(day: Any) -> None:
    a = day.index(0, 8.0)
    day.dc_power_w[4, 1, a:] = 0.0
    det = detect_string_imbalance(day.series())
    first = _first(det.active, 4)
    assert first is not None and (first - a) * STEP_S <= 75 * 60
    assert det.evidence["weakest_ratio"][4, first] == 0.0
    # the east/west roof's inputs differ a lot in the morning and evening: not an alarm
    assert not det.active[EAST_WEST].any()
    assert det.active.sum() == det.active[4].sum()


def test_single_input_inverters_are_not_judged(day: Any) -> None:
    day.dc_power_w[5, 1, :] = np.nan  # inverter 5 has one input
    day.dc_power_w[5, 0, day.index(0, 8.0) :] *= 0.02
    assert not detect_string_imbalance(day.series()).active[5].any()


# --- frozen values and counters -------------------------------------------------------------


def test_frozen_power_found_after_half_an_hour(day: Any) -> None:
    a, b = day.index(0, 9.0), day.index(0, 11.0)
    day.ac_power_w[8, a:b] = day.ac_power_w[8, a]
    det = detect_frozen(day.series())
    assert _first(det.active, 8) == a + 5
    assert not det.active[8, b + 2 :].any()


def test_clipping_is_flat_but_not_frozen(make_fleet: Any) -> None:
    fleet = make_fleet(start=date(2026, 6, 10), days=1)
    fleet.ac_rating_w[2] = fleet.kwp[2] * 1000 * 0.45  # small inverter: clips for hours
    fleet.ac_power_w[2] = np.minimum(fleet.ac_power_w[2], fleet.ac_rating_w[2])
    fleet.recount()
    flat = np.sum(fleet.ac_power_w[2] == fleet.ac_rating_w[2])
    assert flat * STEP_S >= 3 * 3600
    assert not detect_frozen(fleet.series()).active.any()


def test_stalled_counter_while_producing_is_frozen(day: Any) -> None:
    a = day.index(0, 10.0)
    day.ac_energy_wh[9, a:] = day.ac_energy_wh[9, a]
    det = detect_frozen(day.series())
    first = _first(det.active, 9)
    assert first is not None and a < first <= a + 13


def test_counter_backwards_and_spike_are_anomalies(day: Any) -> None:
    a = day.index(0, 10.0)
    day.ac_energy_wh[1, a] *= 100  # a 100x read, then back to normal: jump, then backwards
    day.ac_energy_wh[2, a:] -= 5000.0  # steps back 5 kWh
    det = detect_counter_anomalies(day.series())
    assert _first(det.active, 1) == a
    assert _first(det.active, 2) == a
    assert det.evidence["delta_wh"][2, a] == pytest.approx(-5000.0, abs=200)
    assert det.active.sum(axis=1)[[0, 3, 4, 5]].sum() == 0


def test_known_reset_is_not_an_anomaly(day: Any) -> None:
    a = day.index(0, 10.0)
    day.ac_energy_wh[3, a:] -= day.ac_energy_wh[3, a] - 10.0  # a new inverter's counter
    known = np.zeros_like(day.state, dtype=bool)
    known[3, a] = True
    assert detect_counter_anomalies(day.series()).active[3].any()
    assert not detect_counter_anomalies(day.series(), known_resets=known).active.any()


def test_counter_rise_after_a_long_gap_is_plausible(day: Any) -> None:
    a, b = day.index(0, 8.0), day.index(0, 14.0)
    day.ac_energy_wh[5, a:b] = np.nan  # six hours without readings, then the real counter
    day.ac_power_w[5, a:b] = np.nan
    day.state[5, a:b] = -1
    assert not detect_counter_anomalies(day.series()).active.any()


# --- underperformance against peers ---------------------------------------------------------


def test_sixty_mixed_days_with_east_west_and_shade_raise_nothing(two_months: Any) -> None:
    det = detect_underperformance(two_months.daily())
    assert not det.active.any()
    rel = det.evidence["relative"]
    assert np.nanmin(rel[[EAST_WEST, SHADED]]) > 0.85  # their own normal, not the fleet's


@pytest.mark.parametrize("device", [3, EAST_WEST, SHADED])
def test_thirty_percent_loss_found_within_three_days(two_months: Any, device: int) -> None:
    daily = two_months.daily()
    energy = daily.energy_wh.copy()
    energy[device, 40:] *= 0.68
    det = detect_underperformance(
        type(daily)(days=daily.days, device_ids=daily.device_ids, kwp=daily.kwp, energy_wh=energy)
    )
    first = _first(det.active, device)
    assert first is not None and 40 <= first <= 42
    assert det.active.sum(axis=1)[np.arange(14) != device].sum() == 0
    assert det.active[device, first:].all()  # the loss persists, the alarm does not flap
    assert det.evidence["relative"][device, first] == pytest.approx(0.68, abs=0.06)


def test_underperformance_clears_after_repair(two_months: Any) -> None:
    daily = two_months.daily()
    energy = daily.energy_wh.copy()
    energy[2, 30:40] *= 0.5
    det = detect_underperformance(
        type(daily)(days=daily.days, device_ids=daily.device_ids, kwp=daily.kwp, energy_wh=energy)
    )
    hits = np.flatnonzero(det.active[2])
    assert hits.size and hits[0] == 30 and hits[-1] < 43
    assert not det.active[2, 45:].any()


def test_a_cloudy_spell_does_not_alarm(make_fleet: Any) -> None:
    fleet = make_fleet(
        start=date(2026, 5, 1), days=30, clearness=np.r_[np.ones(15), np.full(15, 0.1)]
    )
    assert not detect_underperformance(fleet.daily()).active.any()
