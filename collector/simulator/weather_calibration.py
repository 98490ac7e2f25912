"""Fit the weather's monthly cloud levels to a monthly irradiation climatology.

    .venv/bin/python -m collector.simulator.weather_calibration [--seeds 16] [--years 2025 2026]

prints the fitted ``MEAN_CLOUD_FRACTION`` of :mod:`collector.simulator.weather` and, per month,
the simulated mean GHI next to its target. The simulated GHI is that of the district centre
(on the 5-minute cloud grid, clear-sky GHI times the clear-sky index), averaged over every
seed and year: a single seed-year scatters around it like a real year does.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import pandas as pd

from collector.simulator.solar import FloatArray, sun_and_clear_sky
from collector.simulator.weather import (
    CLOUD_GRID_S,
    MEAN_CLOUD_FRACTION,
    MONTHLY_GHI_KWH_M2,
    day_weather_at_levels,
)

_NORMAL = NormalDist()
_WH_PER_STEP = CLOUD_GRID_S / 3600.0 / 1000.0  # W/m2 on one grid step -> kWh/m2


def _clear_sky_by_day(year: int) -> tuple[list[date], FloatArray]:
    """Days of a year and their clear-sky GHI on the cloud grid, (n_days, steps) [W/m2]."""
    first = date(year, 1, 1)
    days = [first + timedelta(days=d) for d in range((date(year + 1, 1, 1) - first).days)]
    times = pd.date_range(
        str(first), periods=len(days) * 86400 // CLOUD_GRID_S, freq=f"{CLOUD_GRID_S}s", tz="UTC"
    )
    clear = sun_and_clear_sky(times).ghi_clear_w_m2.reshape(len(days), -1)
    return days, clear


def yearly_monthly_ghi_kwh_m2(
    seeds: list[int], years: list[int], cloud_levels: tuple[float, ...]
) -> FloatArray:
    """GHI of each month of each seed-year at the district centre, (n_seed_years, 12) [kWh/m2].

    Parameters
    ----------
    seeds : list of int
        Fleet seeds (each has its own weather) [-]
    years : list of int
        Calendar years [-]
    cloud_levels : tuple of 12 floats
        Monthly cloud-fraction levels to simulate with [-]
    """
    rows = []
    for year in years:
        days, clear = _clear_sky_by_day(year)
        months = np.array([d.month for d in days])
        for seed in seeds:
            index = np.array(
                [day_weather_at_levels(seed, d, cloud_levels).clear_sky_index[:-1] for d in days]
            )
            daily = (index * clear).sum(axis=1) * _WH_PER_STEP
            rows.append(np.bincount(months - 1, weights=daily, minlength=12))
    return np.array(rows)


def fit_cloud_levels(
    targets_kwh_m2: tuple[float, ...],
    seeds: list[int],
    years: list[int],
    start: tuple[float, ...] = MEAN_CLOUD_FRACTION,
    iterations: int = 6,
) -> tuple[tuple[float, ...], FloatArray]:
    """Monthly cloud levels whose mean monthly GHI over the seed-years equals the targets.

    Newton steps on the probit of each level, with the slope of each month's GHI measured once
    by shifting every level (neighbouring months blend into each other through the daily
    interpolation, so the months move together).

    Returns
    -------
    levels, monthly_ghi_kwh_m2 : tuple, array
        Fitted levels and the mean GHI of each month they give [-], [kWh/m2]
    """
    target = np.array(targets_kwh_m2)
    z = np.array([_NORMAL.inv_cdf(v) for v in start])

    def levels_of(zs: FloatArray) -> tuple[float, ...]:
        return tuple(round(_NORMAL.cdf(float(v)), 4) for v in zs)

    def mean_ghi(zs: FloatArray) -> FloatArray:
        mean: FloatArray = yearly_monthly_ghi_kwh_m2(seeds, years, levels_of(zs)).mean(axis=0)
        return mean

    ghi = mean_ghi(z)
    step = 0.05
    slope = (mean_ghi(z + step) - ghi) / step
    for _ in range(iterations):
        z = z + np.clip((target - ghi) / slope, -0.5, 0.5)
        ghi = mean_ghi(z)
    return levels_of(z), ghi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16, help="seeds 1..N")
    parser.add_argument("--years", type=int, nargs="+", default=[2025, 2026])
    args = parser.parse_args()
    seeds = list(range(1, args.seeds + 1))
    levels, ghi = fit_cloud_levels(MONTHLY_GHI_KWH_M2, seeds, args.years)
    yearly = yearly_monthly_ghi_kwh_m2(seeds, args.years, levels).sum(axis=1)
    print(f"MEAN_CLOUD_FRACTION = {levels}")
    for month, (got, want) in enumerate(zip(ghi, MONTHLY_GHI_KWH_M2, strict=True), start=1):
        print(f"  month {month:2d}: {got:6.1f} kWh/m2 (target {want:6.1f})")
    print(
        f"year: {yearly.mean():.0f} kWh/m2 (target {sum(MONTHLY_GHI_KWH_M2):.0f}), "
        f"sd between seed-years {yearly.std():.0f}, range {yearly.min():.0f}-{yearly.max():.0f}"
    )


if __name__ == "__main__":
    main()
