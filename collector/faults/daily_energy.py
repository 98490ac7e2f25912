"""A device's energy per day for the peer comparison, honest about coarse counters.

The peer comparison (:mod:`collector.faults.peers`) needs each inverter's energy per day. The
lifetime counter's difference is exact to its resolution, and that is enough for inverters
that count in Wh or 10 Wh. Some count far coarser: Growatt's MIN and Sungrow's SG-RS in
0.1 kWh, Sungrow's older register 5004-5005 in whole kWh. On a winter day a 3 kWp roof makes
0.6 kWh: a whole-kWh counter then moves by 0 or 1 kWh, and the day looks like a total loss or
a record. For such a device the day's energy comes from its AC power instead: the mean power
of each 30-minute bucket times the bucket's length, summed over the day. The mean of whatever
readings fell in a bucket does not depend on the polling interval (60 s or 5 minutes alike); a
daylight bucket without any reading makes the day unknown rather than low.

Pure functions; the bench (:func:`collector.faults.evaluation.daily_from_series`) and the
server (:func:`collector.faults.influx_source.load_daily`) feed them the same buckets.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from collector.faults.model import FloatArray

#: Counter resolutions recognised from the values themselves, coarsest first [Wh].
KNOWN_RESOLUTIONS_WH: tuple[float, ...] = (1000.0, 100.0, 10.0)
#: A counter this coarse or coarser is not used for daily energy [Wh].
COARSE_COUNTER_WH = 100.0
#: Buckets of mean power the day's energy is summed from [s].
BUCKET_S = 1800
#: A bucket whose middle has the sun this high must hold a reading for the day to count [deg].
DAYLIGHT_ELEVATION_DEG = 10.0
#: Distinct counter values needed before a resolution is believed (a new counter may sit on
#: round numbers by chance).
MIN_DISTINCT_VALUES = 5


def counter_resolution_wh(counter_wh: FloatArray) -> FloatArray:
    """Each device's counter resolution, recognised from its values, shape (D,) [Wh].

    The coarsest of :data:`KNOWN_RESOLUTIONS_WH` that every reading is a multiple of, once
    the device shows at least :data:`MIN_DISTINCT_VALUES` distinct values; otherwise 1 Wh.

    Parameters
    ----------
    counter_wh
        Lifetime counter readings per device, shape (D, ...), NaN where missing [Wh].
    """
    values = counter_wh.reshape(counter_wh.shape[0], -1)
    out = np.ones(values.shape[0])
    for i, row in enumerate(values):
        finite = row[np.isfinite(row)]
        if np.unique(finite).size < MIN_DISTINCT_VALUES:
            continue
        for resolution in KNOWN_RESOLUTIONS_WH:
            steps = finite / resolution
            if np.all(np.abs(steps - np.round(steps)) < 1e-6):
                out[i] = resolution
                break
    return out


def energy_from_power_wh(
    mean_power_w: FloatArray, daylight: npt.NDArray[np.bool_], bucket_s: int = BUCKET_S
) -> FloatArray:
    """Energy per device and day from the mean AC power of each bucket, shape (D, N) [Wh].

    Parameters
    ----------
    mean_power_w
        Mean AC power per device, day and bucket of the day, shape (D, N, B), NaN for a
        bucket without readings [W]. Negative night consumption counts as 0.
    daylight
        Whether the sun stands high enough in each bucket that a reading is required, shape
        (N, B). A day with a daylight bucket without readings is unknown (NaN).
    bucket_s
        Length of a bucket [s].
    """
    produced = np.clip(np.nan_to_num(mean_power_w, nan=0.0), 0.0, None)
    energy = produced.sum(axis=2) * bucket_s / 3600.0
    covered = (np.isfinite(mean_power_w) | ~daylight[None, :, :]).all(axis=2)
    return np.asarray(np.where(covered, energy, np.nan), dtype=np.float64)


def daily_energy_wh(
    counter_day_wh: FloatArray,
    power_day_wh: FloatArray,
    resolution_wh: FloatArray,
    coarse_counter_wh: float = COARSE_COUNTER_WH,
) -> FloatArray:
    """The energy per device and day the peer comparison judges, shape (D, N) [Wh].

    The counter's difference for devices whose counter is finer than ``coarse_counter_wh``,
    the power-based energy for the others: one source per device, so its learned normal is
    learned from the same kind of number it is judged on.

    Parameters
    ----------
    counter_day_wh
        Closing counter minus the previous day's, shape (D, N), NaN when unknown [Wh].
    power_day_wh
        :func:`energy_from_power_wh`, shape (D, N) [Wh].
    resolution_wh
        :func:`counter_resolution_wh`, shape (D,) [Wh].
    coarse_counter_wh
        From this resolution on, the counter is not used [Wh].
    """
    coarse = resolution_wh[:, None] >= coarse_counter_wh
    return np.asarray(np.where(coarse, power_day_wh, counter_day_wh), dtype=np.float64)
