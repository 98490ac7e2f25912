"""Daily energy for the peer comparison: coarse counters are judged by their power."""

from __future__ import annotations

import numpy as np
import pytest

from collector.faults.daily_energy import (
    counter_resolution_wh,
    daily_energy_wh,
    energy_from_power_wh,
)


def test_resolution_is_recognised_from_the_values() -> None:
    rng = np.random.default_rng(1)
    fine = np.cumsum(rng.uniform(0, 50, 300)) + 0.37  # a float counter
    whole_kwh = np.floor(fine / 1000) * 1000 + 18_000_000
    tenth_kwh = np.floor(fine / 100) * 100
    ten_wh = np.floor(fine / 10) * 10
    values = np.vstack([fine, whole_kwh, tenth_kwh, ten_wh])
    values[1, 5] = np.nan  # missing readings do not matter
    assert counter_resolution_wh(values).tolist() == [1.0, 1000.0, 100.0, 10.0]


def test_a_counter_with_too_few_distinct_values_is_not_called_coarse() -> None:
    """A new counter at 0, 1000, 2000 Wh may sit on round numbers by chance."""
    assert counter_resolution_wh(np.array([[0.0, 1000.0, 1000.0, 2000.0]]))[0] == 1.0


def _day_of_power(step_s: int) -> np.ndarray:
    """One day of a clear-sky-like bell, sampled every ``step_s``, as 30-minute bucket means."""
    t = np.arange(0, 86400, step_s) + step_s / 2
    power = np.clip(3000 * np.sin(np.pi * (t - 6 * 3600) / (12 * 3600)), 0, None)
    return power.reshape(48, -1).mean(axis=1)


def test_energy_from_power_does_not_depend_on_the_polling_interval() -> None:
    daylight = np.zeros((1, 48), dtype=bool)
    daylight[0, 14:34] = True
    by_interval = {
        step: energy_from_power_wh(_day_of_power(step)[None, None, :], daylight)[0, 0]
        for step in (60, 300, 900)
    }
    exact = 3000 * 12 / np.pi * 2  # integral of the bell [Wh]
    for step, energy in by_interval.items():
        assert energy == pytest.approx(exact, rel=0.01), step


def test_a_daylight_bucket_without_readings_makes_the_day_unknown_not_low() -> None:
    means = _day_of_power(300)[None, None, :].repeat(2, axis=1)
    daylight = np.zeros((2, 48), dtype=bool)
    daylight[:, 14:34] = True
    means[0, 0, 20] = np.nan  # noon of day 0: no reading in that half hour
    means[0, 1, 2] = np.nan  # night of day 1: nobody expects one
    energy = energy_from_power_wh(means, daylight)
    assert np.isnan(energy[0, 0]) and np.isfinite(energy[0, 1])


def test_night_consumption_does_not_count_against_the_day() -> None:
    means = np.full((1, 1, 48), -5.0)
    energy = energy_from_power_wh(means, np.zeros((1, 48), dtype=bool))
    assert energy[0, 0] == 0.0


def test_each_device_uses_one_source() -> None:
    counter = np.array([[1000.0, 0.0], [512.0, 498.0]])
    power = np.array([[630.0, 590.0], [505.0, 501.0]])
    out = daily_energy_wh(counter, power, np.array([1000.0, 1.0]))
    np.testing.assert_array_equal(out, [[630.0, 590.0], [512.0, 498.0]])
