"""Detectors that judge a device from its own series, for data from files (``faults check``).

The server's detectors lean on the fleet (the neighbours' median) and on what a live gateway
adds (heartbeats, the AC voltage, the registry's ratings). A file of one inverter's history
has none of that, so these look at the series alone: gaps, values repeated exactly (at any
sun height: a logger that keeps its last value overnight repeats it in the dark too), isolated
spikes and dips, a flat top at the AC rating (clipping), production while the sun is down,
and, without peers, underperformance against the site's clear-sky output with a ratio learned
from the device's own best hours. Pure functions over :class:`FleetSeries`.

Every threshold is a fraction of the device's AC rating or a duration, so one set of defaults
serves any sampling interval from one minute to an hour. The defaults were set from the
physics and the simulator before the labelled data of ``tests/data/`` were looked at
(``docs/faults.md``, *Files*).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.faults.model import Detection, FaultKind, FleetSeries, FloatArray


@dataclass(frozen=True, kw_only=True)
class SeriesCheckParams:
    """Thresholds of the series checks.

    Attributes
    ----------
    gap_after_s
        Readings missing this long inside the file are a gap [s].
    stale_after_s
        The same non-zero power repeated exactly this long is a stale value [s].
    stale_min_steps
        ... and at least this many readings in a row, whatever the interval.
    stale_min_fraction
        A repeated value below this fraction of the rating is not judged (zero at night,
        standby consumption).
    spike_fraction
        A reading that stands out from both neighbours by this fraction of the rating, while
        the neighbours agree with each other, is an outlier.
    clip_margin
        Power within this fraction of the rating is at the clipping level.
    clip_min_steps
        Readings in a row at the clipping level for a clipping episode.
    night_elevation_deg
        Below this solar elevation no panel produces: civil twilight, with room for an
        interval labelled at its end [deg].
    night_min_fraction
        Production at night above this fraction of the rating is reported.
    """

    gap_after_s: int = 30 * 60
    stale_after_s: int = 60 * 60
    stale_min_steps: int = 3
    stale_min_fraction: float = 0.01
    spike_fraction: float = 0.25
    clip_margin: float = 0.01
    clip_min_steps: int = 3
    night_elevation_deg: float = -6.0
    night_min_fraction: float = 0.02


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, end inclusive) of each run of True in a 1-d mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    diff = np.diff(padded)
    return list(zip(np.flatnonzero(diff == 1), np.flatnonzero(diff == -1) - 1, strict=True))


def _steps(seconds: int, step_s: int) -> int:
    return max(1, -(-seconds // step_s))


def detect_gaps(series: FleetSeries, params: SeriesCheckParams | None = None) -> Detection:
    """Stretches inside the file without any reading of the device.

    A logger that sleeps at night (fewer than a fifth of its night steps hold a reading)
    has gaps only where a run of missing readings reaches into daylight.

    Returns
    -------
    Detection
        Kind ``gap``; evidence ``missing_s`` (the gap's length, at every step of it) [s].
    """
    p = params or SeriesCheckParams()
    present = series.present
    night = series.sun_elevation_deg < 0
    need = _steps(p.gap_after_s, series.step_s)
    active = np.zeros_like(present)
    missing_s = np.full(present.shape, np.nan)
    for i, row in enumerate(present):
        seen = np.flatnonzero(row)
        if seen.size == 0:
            continue
        sleeps_at_night = bool(night.any()) and row[night].mean() < 0.2
        inside = np.zeros_like(row)
        inside[seen[0] : seen[-1] + 1] = True
        for a, b in _runs(~row & inside):
            if b - a + 1 < need or (sleeps_at_night and night[a : b + 1].all()):
                continue
            active[i, a : b + 1] = True
            missing_s[i, a : b + 1] = (b - a + 1) * series.step_s
    return Detection(FaultKind.GAP, active, {"missing_s": missing_s})


def detect_stale(series: FleetSeries, params: SeriesCheckParams | None = None) -> Detection:
    """Power repeated exactly, reading after reading, at any sun height.

    A live inverter's power moves by at least a watt from one reading to the next (the sun,
    the grid); a stuck register or a logger repeating its last value does not. Clipping at
    the rating is legitimately flat and is left to :func:`detect_clipping`.

    Returns
    -------
    Detection
        Kind ``frozen_value``; evidence ``ac_power_w`` (the repeated value) [W] and
        ``repeated_s`` (how long) [s].
    """
    p = params or SeriesCheckParams()
    power = series.ac_power_w
    need = max(p.stale_min_steps, _steps(p.stale_after_s, series.step_s))
    rating = series.ac_rating_w[:, None]
    active = np.zeros(power.shape, dtype=np.bool_)
    repeated_s = np.full(power.shape, np.nan)
    same = np.zeros(power.shape, dtype=np.bool_)
    same[:, 1:] = np.isfinite(power[:, 1:]) & (power[:, 1:] == power[:, :-1])
    judged = (np.abs(power) >= p.stale_min_fraction * rating) & (
        power < (1.0 - p.clip_margin) * rating
    )
    for i in range(power.shape[0]):
        for a, b in _runs(same[i] & judged[i]):
            first = a - 1  # the first reading of the repeated value
            if b - first + 1 < need:
                continue
            active[i, first : b + 1] = True
            repeated_s[i, first : b + 1] = (b - first + 1) * series.step_s
    return Detection(
        FaultKind.FROZEN_VALUE, active, {"ac_power_w": power, "repeated_s": repeated_s}
    )


def detect_spikes(series: FleetSeries, params: SeriesCheckParams | None = None) -> Detection:
    """Single readings far above or below both neighbours while the neighbours agree.

    A cloud moves the power for minutes and in steps; a transmission or scaling error moves
    one reading. The neighbours are the nearest readings before and after (missing steps
    skipped), so the test holds at any interval.

    Returns
    -------
    Detection
        Kind ``outlier``; evidence ``ac_power_w`` and ``neighbours_w`` (their mean) [W].
    """
    p = params or SeriesCheckParams()
    power = series.ac_power_w
    active = np.zeros(power.shape, dtype=np.bool_)
    neighbours = np.full(power.shape, np.nan)
    for i, row in enumerate(power):
        idx = np.flatnonzero(np.isfinite(row))
        if idx.size < 3:
            continue
        v = row[idx]
        prev, cur, nxt = v[:-2], v[1:-1], v[2:]
        limit = p.spike_fraction * series.ac_rating_w[i]
        up = np.minimum(cur - prev, cur - nxt)
        down = np.minimum(prev - cur, nxt - cur)
        jump = np.maximum(up, down)
        hit = (jump > limit) & (np.abs(prev - nxt) < 0.5 * jump)
        where = idx[1:-1][hit]
        active[i, where] = True
        neighbours[i, where] = ((prev + nxt) / 2.0)[hit]
    return Detection(FaultKind.OUTLIER, active, {"ac_power_w": power, "neighbours_w": neighbours})


def detect_clipping(series: FleetSeries, params: SeriesCheckParams | None = None) -> Detection:
    """Power held at the AC rating: the inverter limits what the panels could give.

    Not a fault; reported so that a flat top is not mistaken for a stale value, and because
    much of it means the array is oversized for its inverter.

    Returns
    -------
    Detection
        Kind ``clipping``; evidence ``ac_power_w`` and ``ac_rating_w`` [W].
    """
    p = params or SeriesCheckParams()
    power = series.ac_power_w
    rating = series.ac_rating_w[:, None]
    at_top = (
        np.isfinite(power) & (power >= (1.0 - p.clip_margin) * rating) & (power <= rating * 1.05)
    )
    active = np.zeros(power.shape, dtype=np.bool_)
    for i in range(power.shape[0]):
        for a, b in _runs(at_top[i]):
            if b - a + 1 >= p.clip_min_steps:
                active[i, a : b + 1] = True
    return Detection(
        FaultKind.CLIPPING,
        active,
        {"ac_power_w": power, "ac_rating_w": np.broadcast_to(rating, power.shape).astype(float)},
    )


def detect_night_production(
    series: FleetSeries, params: SeriesCheckParams | None = None
) -> Detection:
    """Power reported while the sun is well below the horizon.

    Usually the file's clock (a local time read as UTC, an interval labelled at its start
    read as its end), sometimes a meter counting the wrong way; no panel produces then.

    Returns
    -------
    Detection
        Kind ``night_production``; evidence ``ac_power_w`` [W] and ``sun_elevation_deg``.
    """
    p = params or SeriesCheckParams()
    power = series.ac_power_w
    night = (series.sun_elevation_deg < p.night_elevation_deg)[None, :]
    active = (
        night & np.isfinite(power) & (power > p.night_min_fraction * series.ac_rating_w[:, None])
    )
    elevation = np.broadcast_to(series.sun_elevation_deg[None, :], power.shape).astype(float)
    return Detection(
        FaultKind.NIGHT_PRODUCTION,
        np.asarray(active, dtype=np.bool_),
        {"ac_power_w": power, "sun_elevation_deg": elevation},
    )


@dataclass(frozen=True, kw_only=True)
class ClearSkyParams:
    """Parameters of :func:`detect_underperformance_clear_sky`.

    Attributes
    ----------
    min_poa_w_m2
        Only steps whose clear-sky plane-of-array irradiance is at least this judge [W/m2].
    best_quantile
        A day's index is this quantile of its steps' measured / clear-sky ratio: the day's
        clearest moments (clouds only lower the ratio, faults lower every moment).
    learn_days, min_learn_days
        The device's normal index is the median index of up to ``learn_days`` earlier days
        not in alarm, once there are ``min_learn_days`` [days].
    window_days
        A device is underperforming when its best day index of this many days in a row stays
        below the normal (one sunny moment in the window clears it) [days].
    tolerance
        ... below ``1 - tolerance`` of the normal.
    """

    min_poa_w_m2: float = 200.0
    best_quantile: float = 0.9
    learn_days: int = 30
    min_learn_days: int = 7
    window_days: int = 5
    tolerance: float = 0.3


def detect_underperformance_clear_sky(
    times: npt.NDArray[np.datetime64],
    ac_power_w: FloatArray,
    poa_w_m2: FloatArray,
    rating_w: FloatArray,
    params: ClearSkyParams | None = None,
) -> tuple[npt.NDArray[np.datetime64], Detection]:
    """A device alone: its output against the clear-sky output of its own roof, per day.

    The roof's expected output is its clear-sky plane-of-array irradiance (pvlib, the
    site's geometry: :func:`collector.faults.solar.clear_sky_poa_w_m2`) / 1000 W/m2 x its
    rating; the learned ratio absorbs the real kWp, losses, soiling and shade that were
    there all along, so only a change stands out.

    Parameters
    ----------
    times
        Step starts, UTC, shape (T,).
    ac_power_w
        Shape (D, T), NaN where missing [W].
    poa_w_m2
        Clear-sky plane-of-array irradiance of each device's roof, shape (D, T) [W/m2].
    rating_w
        Shape (D,): the power at 1000 W/m2 (kWp x 1000, or the AC rating) [W].
    params
        Thresholds.

    Returns
    -------
    (days, Detection)
        The UTC days (N,) and kind ``underperformance`` over (D, N); evidence ``day_index``
        (the day's best measured / clear-sky ratio), ``window_best`` (best of the window)
        and ``normal_index`` (learned).
    """
    p = params or ClearSkyParams()
    day_of = np.asarray(times, dtype="datetime64[D]")
    days = np.unique(day_of)
    d, n = ac_power_w.shape[0], len(days)
    index = np.full((d, n), np.nan)
    position = np.searchsorted(days, day_of)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected_w = poa_w_m2 / 1000.0 * rating_w[:, None]
        ratio = np.where(poa_w_m2 >= p.min_poa_w_m2, ac_power_w / expected_w, np.nan)
        for j in range(n):
            block = ratio[:, position == j]
            enough = np.sum(np.isfinite(block), axis=1) >= 3
            index[:, j] = np.where(enough, np.nanquantile(block, p.best_quantile, axis=1), np.nan)
    active = np.zeros((d, n), dtype=np.bool_)
    normal = np.full((d, n), np.nan)
    best = np.full((d, n), np.nan)
    for i in range(d):
        healthy: list[float] = []
        for j in range(n):
            window = index[i, max(0, j - p.window_days + 1) : j + 1]
            if np.isfinite(window).any():
                best[i, j] = np.nanmax(window)
            if len(healthy) >= p.min_learn_days and np.isfinite(best[i, j]):
                normal[i, j] = float(np.median(healthy[-p.learn_days :]))
                full = np.isfinite(window).sum() >= min(p.window_days, j + 1)
                active[i, j] = bool(full and best[i, j] < (1 - p.tolerance) * normal[i, j])
            if np.isfinite(index[i, j]) and not active[i, j]:
                healthy.append(float(index[i, j]))
    return days, Detection(
        FaultKind.UNDERPERFORMANCE,
        active,
        {"day_index": index, "window_best": best, "normal_index": normal},
    )


__all__ = [
    "ClearSkyParams",
    "SeriesCheckParams",
    "detect_clipping",
    "detect_gaps",
    "detect_night_production",
    "detect_spikes",
    "detect_stale",
    "detect_underperformance_clear_sky",
]
