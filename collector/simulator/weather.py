"""District weather: a cloud process all neighbours share, and the air temperature.

Each UTC day gets its own random stream derived from (seed, day number), so a day's weather
does not depend on where a simulation starts or how it is cut into chunks. Days are linked
by a moving-average "weather regime" over the previous days (fronts last a few days).

The cloud cover of a day is a smooth Gaussian process thresholded at the day's cloud
fraction; under a cloud the clear-sky index is the day's cloud transmittance, in the gaps it
is about 1, with a little enhancement at cloud edges. The monthly cloudiness is fitted
(:mod:`collector.simulator.weather_calibration`) so the mean over many seeds of each month's
global horizontal irradiation equals :data:`MONTHLY_GHI_KWH_M2`, the present climate of the
district (sources in ``docs/simulator.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from collector.simulator.solar import FloatArray

#: Resolution of the district cloud series; finer times are interpolated [s].
CLOUD_GRID_S = 300
_GRID_POINTS = 86400 // CLOUD_GRID_S + 1
#: Monthly normals 1991-2020 of global horizontal irradiation at De Bilt, Jan..Dec (KNMI;
#: 1,047 kWh/m2 a year). Their summer (455 kWh/m2) is KNMI's national 1991-2020 summer mean
#: of 206 W/m2 [kWh/m2].
NORMAL_1991_2020_GHI_KWH_M2 = (
    20.0,
    37.0,
    75.0,
    120.0,
    155.0,
    160.0,
    160.0,
    135.0,
    90.0,
    55.0,
    25.0,
    15.0,
)
#: KNMI: irradiation in the Netherlands has risen by 3.3 % per decade since the early 1980s.
BRIGHTENING_PER_DECADE = 0.033
#: The present climate is that of the last decade (2016-2025, centred on 2020.5), 1.5 decades
#: after the centre of the normal period (2005.5) [decades].
DECADES_SINCE_NORMAL = 1.5
#: KNMI: in summer the east of the country receives 199 W/m2 against the national 206 W/m2;
#: Zwolle lies in the east [-].
EAST_OF_COUNTRY_FACTOR = 199.0 / 206.0
#: Monthly GHI the weather is calibrated to: the normals brought to the present climate of
#: the district (1,062 kWh/m2 a year) [kWh/m2].
MONTHLY_GHI_KWH_M2 = tuple(
    round(g * (1.0 + BRIGHTENING_PER_DECADE * DECADES_SINCE_NORMAL) * EAST_OF_COUNTRY_FACTOR, 1)
    for g in NORMAL_1991_2020_GHI_KWH_M2
)
#: Cloud-fraction level by month (Jan..Dec), fitted to :data:`MONTHLY_GHI_KWH_M2` by
#: ``python -m collector.simulator.weather_calibration`` (32 seed-years).
MEAN_CLOUD_FRACTION = (
    0.6313,
    0.6584,
    0.5361,
    0.3911,
    0.457,
    0.4598,
    0.3503,
    0.3235,
    0.4136,
    0.3418,
    0.6317,
    0.6864,
)
#: Monthly mean air temperature at De Bilt 1991-2020, rounded [°C].
MEAN_AIR_TEMP_C = (3.6, 4.0, 6.7, 10.0, 13.6, 16.4, 18.6, 18.2, 15.0, 11.0, 7.0, 4.2)
_REGIME_WEIGHTS = np.array([1.0, 0.8, 0.55, 0.3])
_NORMAL = NormalDist()


@dataclass(frozen=True)
class DayWeather:
    """One day's district weather on the cloud grid (00:00 to 24:00 UTC)."""

    day: date
    cloud_fraction: float
    clear_sky_index: FloatArray
    air_temp_c: FloatArray


def _day_rng(seed: int, ordinal: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, ordinal, stream, 0xC10D])


def _regime(seed: int, ordinal: int) -> float:
    """Standardised weather regime of a day: negative sunny, positive cloudy [-]."""
    shocks = np.array([_day_rng(seed, ordinal - k, 0).standard_normal() for k in range(4)])
    return float(shocks @ _REGIME_WEIGHTS / np.sqrt(np.sum(_REGIME_WEIGHTS**2)))


def _monthly(table: tuple[float, ...], day: date) -> float:
    """A monthly table interpolated to the day (values belong to mid-month)."""
    day_of_year = day.timetuple().tm_yday
    mids = np.array([15.5 + 30.42 * m for m in range(-1, 13)])
    values = np.array([table[-1], *table, table[0]])
    return float(np.interp(day_of_year, mids, values))


@lru_cache(maxsize=4096)
def day_weather(seed: int, day: date) -> DayWeather:
    """The district's weather of one UTC day.

    Parameters
    ----------
    seed : int
        Fleet seed [-]
    day : date
        UTC day [-]
    """
    return day_weather_at_levels(seed, day, MEAN_CLOUD_FRACTION)


def day_weather_at_levels(seed: int, day: date, cloud_levels: tuple[float, ...]) -> DayWeather:
    """One day's weather for given monthly cloud-fraction levels (the calibration varies them).

    Parameters
    ----------
    seed : int
        Fleet seed [-]
    day : date
        UTC day [-]
    cloud_levels : tuple of 12 floats
        Cloud-fraction level of each month, Jan..Dec, each in (0, 1) [-]
    """
    ordinal = day.toordinal()
    rng = _day_rng(seed, ordinal, 1)
    regime = _regime(seed, ordinal)
    mean_fraction = _monthly(cloud_levels, day)
    # Probit link: mean fraction shifts the level, the regime spreads days from clear to overcast.
    fraction = _NORMAL.cdf(
        _NORMAL.inv_cdf(mean_fraction) * 1.25 + 1.1 * regime + 0.35 * rng.standard_normal()
    )
    transmittance = float(np.clip(rng.normal(0.30, 0.10), 0.08, 0.6))
    # Smooth cloud field: AR(1) with a correlation time of 20-60 minutes, plus slower swell.
    tau_s = rng.uniform(1200.0, 3600.0)
    phi = np.exp(-CLOUD_GRID_S / tau_s)
    noise = rng.standard_normal(_GRID_POINTS)
    field = np.empty(_GRID_POINTS)
    field[0] = noise[0]
    scale = np.sqrt(1.0 - phi**2)
    for i in range(1, _GRID_POINTS):
        field[i] = phi * field[i - 1] + scale * noise[i]
    threshold = _NORMAL.inv_cdf(min(max(fraction, 1e-4), 1 - 1e-4))
    # Distance from the cloud edge in field units; soft edges over about one grid step.
    edge = (field - threshold) / 0.25
    clear_share = 1.0 / (1.0 + np.exp(-np.clip(edge, -30.0, 30.0)))
    haze = 1.0 - 0.04 * rng.random()
    enhancement = 0.12 * np.exp(-((field - threshold - 0.35) ** 2) / 0.08) * (fraction > 0.15)
    # Cloud optical depth varies too, more slowly than the gaps: AR(1) with 15-minute memory.
    texture = np.empty(_GRID_POINTS)
    texture[0] = rng.standard_normal()
    phi_t = np.exp(-CLOUD_GRID_S / 900.0)
    shocks = rng.standard_normal(_GRID_POINTS) * np.sqrt(1.0 - phi_t**2)
    for i in range(1, _GRID_POINTS):
        texture[i] = phi_t * texture[i - 1] + shocks[i]
    thin = transmittance * (1.0 + 0.15 * texture.clip(-2.5, 2.5))
    index = thin + (haze - thin) * clear_share + enhancement
    hours = np.arange(_GRID_POINTS) * CLOUD_GRID_S / 3600.0
    mean_temp = _monthly(MEAN_AIR_TEMP_C, day) + 2.5 * -regime + rng.normal(0.0, 1.2)
    swing = 3.0 + 5.0 * (1.0 - fraction)
    air_temp = mean_temp + swing / 2.0 * np.cos(2.0 * np.pi * (hours - 13.5) / 24.0)
    return DayWeather(
        day=day,
        cloud_fraction=fraction,
        clear_sky_index=np.clip(index, 0.03, 1.25),
        air_temp_c=air_temp,
    )


def site_weather(
    seed: int, epoch_s: FloatArray, lag_s: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Clear-sky index at each site and air temperature at the given times.

    Parameters
    ----------
    seed : int
        Fleet seed [-]
    epoch_s : array
        UTC times as seconds since 1970, (n_times,) [s]
    lag_s : array
        Delay of the cloud field at each site, (n_sites,) [s]

    Returns
    -------
    clear_sky_index, air_temp_c : arrays
        (n_times, n_sites) [-] and (n_times,) [°C]
    """
    first_day = int(np.floor((epoch_s.min() - lag_s.max() - 1) / 86400))
    last_day = int(np.floor((epoch_s.max() - lag_s.min() + 1) / 86400))
    grid_t: list[FloatArray] = []
    grid_k: list[FloatArray] = []
    grid_temp: list[FloatArray] = []
    for day_number in range(first_day, last_day + 1):
        day = date.fromordinal(date(1970, 1, 1).toordinal() + day_number)
        weather = day_weather(seed, day)
        times = day_number * 86400.0 + np.arange(_GRID_POINTS - 1, dtype=np.float64) * CLOUD_GRID_S
        grid_t.append(times)
        grid_k.append(weather.clear_sky_index[:-1])
        grid_temp.append(weather.air_temp_c[:-1])
    t = np.concatenate(grid_t)
    k = np.concatenate(grid_k)
    temp = np.concatenate(grid_temp)
    shifted = epoch_s[:, None] - lag_s[None, :]
    index = np.interp(shifted.ravel(), t, k).reshape(shifted.shape)
    return index, np.interp(epoch_s, t, temp)
