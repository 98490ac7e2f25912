"""Where the sun is over the district: daylight masks and today's sunset, from pvlib."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import pvlib

#: Dieze-Oost, Zwolle.
ZWOLLE_LAT_DEG = 52.52
ZWOLLE_LON_DEG = 6.10
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def sun_elevation_deg(
    times: npt.NDArray[np.datetime64],
    lat_deg: float = ZWOLLE_LAT_DEG,
    lon_deg: float = ZWOLLE_LON_DEG,
) -> npt.NDArray[np.float64]:
    """Apparent solar elevation at each time.

    Parameters
    ----------
    times
        UTC instants, ``datetime64`` [s].
    lat_deg
        Latitude [deg].
    lon_deg
        Longitude [deg].

    Returns
    -------
    numpy.ndarray
        Apparent elevation (refraction corrected), same shape as ``times`` [deg].
    """
    index = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[s]")).tz_localize("UTC")
    pos = pvlib.solarposition.get_solarposition(index, lat_deg, lon_deg, method="nrel_numpy")
    return np.asarray(pos["apparent_elevation"].to_numpy(), dtype=np.float64)


def sunset_utc(
    day: date, lat_deg: float = ZWOLLE_LAT_DEG, lon_deg: float = ZWOLLE_LON_DEG
) -> datetime:
    """Sunset of a Europe/Amsterdam calendar day, as a UTC datetime.

    Parameters
    ----------
    day
        Local calendar day (Europe/Amsterdam).
    lat_deg
        Latitude [deg].
    lon_deg
        Longitude [deg].
    """
    local_noon = datetime.combine(day, time(12), tzinfo=AMSTERDAM)
    index = pd.DatetimeIndex([local_noon.astimezone(UTC)])
    result = pvlib.solarposition.sun_rise_set_transit_spa(index, lat_deg, lon_deg)
    sunset = result["sunset"].iloc[0]
    if pd.isna(sunset):  # not at these latitudes, but keep the type honest
        return local_noon.astimezone(UTC) + timedelta(hours=6)
    seconds = int(pd.Timestamp(sunset).floor("s").timestamp())
    return datetime.fromtimestamp(seconds, UTC)


def clear_sky_daily_kwh_per_kwp(
    days: npt.NDArray[np.datetime64],
    tilt_deg: npt.NDArray[np.float64],
    azimuth_deg: npt.NDArray[np.float64],
    lat_deg: float = ZWOLLE_LAT_DEG,
    lon_deg: float = ZWOLLE_LON_DEG,
) -> npt.NDArray[np.float64]:
    """Each roof's clear-sky plane-of-array insolation per day: what its geometry allows.

    A simplified Solis clear sky (no data files needed) transposed to each roof with the
    isotropic sky model, summed over the UTC day at 15-minute resolution. The peer
    comparison uses it as the geometric part of a roof's normal share of the fleet.

    Parameters
    ----------
    days
        Calendar days, ``datetime64[D]``, shape (N,).
    tilt_deg
        Panel tilt per roof, shape (D,) [deg].
    azimuth_deg
        Panel azimuth per roof (0 north, 90 east, 180 south), shape (D,) [deg].
    lat_deg, lon_deg
        Location [deg].

    Returns
    -------
    numpy.ndarray
        Shape (D, N): insolation in the plane of each roof [kWh/m2], numerically equal to the
        specific yield of a lossless array [kWh/kWp].
    """
    step_min = 15
    per_day = 24 * 60 // step_min
    start = np.asarray(days, dtype="datetime64[D]").astype("datetime64[s]")
    offsets = (np.arange(per_day) * step_min * 60 + step_min * 30).astype("timedelta64[s]")
    stamps = (start[:, None] + offsets[None, :]).ravel()
    index = pd.DatetimeIndex(stamps).tz_localize("UTC")
    location = pvlib.location.Location(lat_deg, lon_deg)
    solpos = location.get_solarposition(index)
    sky = location.get_clearsky(index, model="simplified_solis", solar_position=solpos)
    zenith = solpos["apparent_zenith"].to_numpy()
    sun_az = solpos["azimuth"].to_numpy()
    dni, ghi, dhi = (sky[c].to_numpy() for c in ("dni", "ghi", "dhi"))
    out = np.empty((len(tilt_deg), len(days)))
    for i, (tilt, az) in enumerate(zip(tilt_deg, azimuth_deg, strict=True)):
        poa = pvlib.irradiance.get_total_irradiance(
            float(tilt), float(az), zenith, sun_az, dni, ghi, dhi, model="isotropic"
        )["poa_global"]
        poa_w_m2 = np.nan_to_num(np.asarray(poa, dtype=np.float64)).reshape(len(days), per_day)
        out[i] = poa_w_m2.sum(axis=1) * step_min / 60.0 / 1000.0
    return out


def noon_elevation_deg(
    days: npt.NDArray[np.datetime64],
    lat_deg: float = ZWOLLE_LAT_DEG,
    lon_deg: float = ZWOLLE_LON_DEG,
) -> npt.NDArray[np.float64]:
    """The sun's highest elevation on each day (at about 11:36 UTC in Zwolle).

    Parameters
    ----------
    days
        Calendar days, ``datetime64[D]``.
    lat_deg, lon_deg
        Location [deg].

    Returns
    -------
    numpy.ndarray
        Elevation at solar noon, same shape as ``days`` [deg].
    """
    noon_offset_s = int((12.0 - lon_deg / 15.0) * 3600)
    midnight_s = np.asarray(days, dtype="datetime64[D]").astype("datetime64[s]").astype(np.int64)
    stamps = (midnight_s + noon_offset_s).astype("datetime64[s]")
    return sun_elevation_deg(stamps, lat_deg, lon_deg)


def clear_sky_poa_w_m2(
    times: npt.NDArray[np.datetime64],
    tilt_deg: float,
    azimuth_deg: float,
    lat_deg: float = ZWOLLE_LAT_DEG,
    lon_deg: float = ZWOLLE_LON_DEG,
) -> npt.NDArray[np.float64]:
    """Clear-sky plane-of-array irradiance of one roof at each time.

    The simplified Solis clear sky transposed with the isotropic sky model, as
    :func:`clear_sky_daily_kwh_per_kwp`; 0 with the sun down.

    Parameters
    ----------
    times
        UTC instants (the middle of each step), ``datetime64`` [s].
    tilt_deg, azimuth_deg
        Panel tilt and azimuth (0 north, 90 east, 180 south) [deg].
    lat_deg, lon_deg
        Location [deg].

    Returns
    -------
    numpy.ndarray
        Same shape as ``times`` [W/m2].
    """
    index = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[s]")).tz_localize("UTC")
    location = pvlib.location.Location(lat_deg, lon_deg)
    solpos = location.get_solarposition(index)
    sky = location.get_clearsky(index, model="simplified_solis", solar_position=solpos)
    poa = pvlib.irradiance.get_total_irradiance(
        float(tilt_deg),
        float(azimuth_deg),
        solpos["apparent_zenith"].to_numpy(),
        solpos["azimuth"].to_numpy(),
        sky["dni"].to_numpy(),
        sky["ghi"].to_numpy(),
        sky["dhi"].to_numpy(),
        model="isotropic",
    )["poa_global"]
    return np.nan_to_num(np.asarray(poa, dtype=np.float64))
