"""The simulated household load: yearly use within published Dutch averages, a daily shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.simulator.household import household_for

YEAR = datetime(2026, 1, 1, tzinfo=UTC)


def yearly_kwh(seed: int) -> float:
    home = household_for(seed)
    return sum(home.load_w(YEAR + timedelta(minutes=15 * k)) for k in range(365 * 96)) / 4000


def test_homes_without_heat_pump_or_car_use_what_dutch_homes_use() -> None:
    plain = [
        s for s in range(40) if not (household_for(s).heat_pump or household_for(s).electric_car)
    ]
    uses = [yearly_kwh(s) for s in plain]
    mean = sum(uses) / len(uses)
    # CBS: 2,480-2,810 kWh per household and year (2019-2023)
    assert 2400 <= mean <= 3100, mean
    assert all(1500 < u < 4500 for u in uses)


def test_evening_peak_and_quiet_night() -> None:
    home = household_for(3)
    day = datetime(2026, 3, 10, tzinfo=UTC)  # UTC+1
    night = [home.load_w(day + timedelta(hours=2, minutes=m)) for m in range(0, 60, 15)]
    evening = [home.load_w(day + timedelta(hours=18, minutes=m)) for m in range(0, 60, 15)]
    assert max(night) < min(evening)
    assert home.load_w(day) == household_for(3).load_w(day)  # deterministic
