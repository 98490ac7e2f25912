"""Properties of the simulated production (issue 3, "Done when"), not fixed numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pvlib
import pytest

from collector.simulator.engine import S_SLEEPING, Simulation, window
from collector.simulator.fleet import COUNTER_RESOLUTION_WH, FAMILIES, generate_fleet
from collector.simulator.solar import DISTRICT_LATITUDE_DEG, DISTRICT_LONGITUDE_DEG
from collector.simulator.weather import day_weather


def _months(run: Any) -> np.ndarray:
    return pd.to_datetime(run.epoch_s, unit="s", utc=True).month.to_numpy()


def test_faultless_year_yield_is_dutch(faultless_year: Any) -> None:
    kwp = faultless_year.fleet.column("kwp")
    specific = faultless_year.energy_wh.sum(axis=0) / 1000.0 / kwp
    assert 850.0 <= specific.mean() <= 1000.0
    # Every roof produces something sensible; none beats a perfect south roof by much.
    assert specific.min() > 500.0
    assert specific.max() < 1150.0


def test_june_produces_several_times_december(faultless_year: Any) -> None:
    months = _months(faultless_year)
    june = faultless_year.energy_wh[months == 6].sum()
    december = faultless_year.energy_wh[months == 12].sum()
    assert june > 4.0 * december


def test_east_roofs_peak_earlier_than_west(faultless_year: Any) -> None:
    hours = (faultless_year.epoch_s % 86400) / 3600.0
    energy = faultless_year.energy_wh
    # Energy-weighted hour of production of each site.
    centroid = (energy * hours[:, None]).sum(axis=0) / energy.sum(axis=0)
    sites = faultless_year.fleet.sites
    by = {o: centroid[[s.orientation == o for s in sites]] for o in ("east", "south", "west")}
    fleet = generate_fleet(60, seed=7)
    assert len(by["south"]) and len(by["west"])
    if len(by["east"]):
        assert by["east"].max() < by["south"].min() + 0.5
        assert by["east"].mean() < by["south"].mean() - 0.5
    assert by["west"].mean() > by["south"].mean() + 0.5
    # The generator makes all three kinds of roof in a fleet of a realistic size.
    assert {s.orientation for s in fleet.sites} >= {"east", "south", "west"}


def test_no_production_at_night(faultless_year: Any) -> None:
    times = pd.to_datetime(faultless_year.epoch_s, unit="s", utc=True)
    sun = pvlib.solarposition.get_solarposition(
        times, DISTRICT_LATITUDE_DEG, DISTRICT_LONGITUDE_DEG
    )
    night = sun["apparent_elevation"].to_numpy() < -1.0
    assert night.sum() > 3000
    assert np.all(faultless_year.ac_power_w[night] == 0.0)
    assert np.all(faultless_year.state[night] == S_SLEEPING)
    # The counter holds through the night: consecutive night readings are equal.
    both_night = night[1:] & night[:-1]
    steps = np.diff(faultless_year.ac_energy_wh, axis=0)[both_night]
    assert np.all(steps == 0.0)


def test_counters_advance_exactly_by_energy(faultless_year: Any) -> None:
    run = faultless_year
    resolution = np.array([COUNTER_RESOLUTION_WH[s.family] for s in run.fleet.sites])
    produced = run.energy_wh[1:].sum(axis=0)
    counted = run.ac_energy_wh[-1] - run.ac_energy_wh[0]
    assert np.all(np.abs(counted - produced) <= resolution + 1e-6)
    assert np.all(np.diff(run.ac_energy_wh, axis=0) >= 0.0)


def test_some_inverters_clip_at_noon() -> None:
    fleet = generate_fleet(122, seed=1)
    sim = Simulation(fleet, *window(date(2026, 6, 1), 30), 900)
    throttled = np.zeros(len(fleet), dtype=bool)
    for chunk in sim.chunks():
        throttled |= (chunk.state == 4).any(axis=0)  # STATES index of THROTTLED
        assert np.all(chunk.ac_power_w[chunk.present] <= fleet.column("ac_rating_w")[None, :].max())
    ratios = np.array([s.dc_ac_ratio for s in fleet.sites])
    assert 0 < throttled.sum() < len(fleet)
    assert ratios[throttled].mean() > ratios[~throttled].mean()


def test_same_seed_same_data_different_seed_different_fleet() -> None:
    start, end = window(date(2026, 5, 1), 3)
    a = [c.ac_power_w for c in Simulation(generate_fleet(5, 3), start, end, 600).chunks()]
    b = [c.ac_power_w for c in Simulation(generate_fleet(5, 3), start, end, 600).chunks()]
    c = [c.ac_power_w for c in Simulation(generate_fleet(5, 4), start, end, 600).chunks()]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert generate_fleet(5, 3) == generate_fleet(5, 3)
    assert generate_fleet(5, 3) != generate_fleet(5, 4)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_neighbours_share_clouds() -> None:
    """Same district, same clouds: sites' clear-sky index moves together."""
    fleet = generate_fleet(10, seed=2)
    start, end = window(date(2026, 7, 1), 10)
    power = np.concatenate([c.ac_power_w for c in Simulation(fleet, start, end, 300).chunks()])
    rating = fleet.column("kwp") * 1000.0
    normalised = power / rating
    corr = np.corrcoef(normalised.T)
    assert corr[np.triu_indices(10, 1)].mean() > 0.8


def test_day_weather_is_independent_of_the_window() -> None:
    day = date(2026, 3, 14)
    a = day_weather(5, day)
    day_weather.cache_clear()
    b = day_weather(5, day)
    assert np.array_equal(a.clear_sky_index, b.clear_sky_index)
    # A chunk that starts earlier gives the same power on the shared day.
    fleet = generate_fleet(3, seed=5)
    t0 = datetime(2026, 3, 14, tzinfo=UTC)
    late = next(Simulation(fleet, t0, t0 + timedelta(days=1), 600).chunks())
    early = next(Simulation(fleet, t0 - timedelta(days=2), t0 + timedelta(days=1), 600).chunks())
    assert np.array_equal(late.ac_power_w, early.ac_power_w[-len(late.epoch_s) :])


def test_fleet_has_every_family_and_realistic_sizes() -> None:
    fleet = generate_fleet(122, seed=1)
    assert {s.family for s in fleet.sites} == set(FAMILIES)
    kwp = fleet.column("kwp")
    assert kwp.min() >= 1.9 and kwp.max() <= 6.1
    assert len({s.gateway_id for s in fleet.sites}) == 122
    assert any(s.shaded for s in fleet.sites)


@pytest.mark.parametrize("bad", [0, 7, 86401])
def test_interval_must_divide_a_day(bad: int) -> None:
    with pytest.raises(ValueError, match="interval must divide a day"):
        Simulation(generate_fleet(1, 1), *window(date(2026, 1, 1), 1), bad)
