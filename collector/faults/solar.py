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
