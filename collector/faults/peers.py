"""Underperformance against peers: each inverter's daily specific yield versus the fleet.

All roofs are in one district under the same sky, so the fleet's median specific yield
(kWh/kWp) is the day's weather. Each site has its own normal share of it: an east/west roof
or a shaded one yields less than the median on clear days and about as much on overcast
ones. That normal is learned per site as a function of the day's clearness (a straight line
fitted on the site's recent healthy days), so a cloudy day, an east/west roof or a shaded
roof does not alarm; a site whose ratio stays well below its own normal for some days does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from collector.faults.model import Detection, FaultKind, FleetDaily, FloatArray


@dataclass(frozen=True, kw_only=True)
class PeerParams:
    """Parameters of :func:`detect_underperformance`.

    Attributes
    ----------
    min_fleet_kwh_per_kwp
        Days darker than this fleet median are not judged (too little signal) [kWh/kWp].
    min_peers
        Devices with a valid day needed for a fleet median.
    learn_days
        How many past days the site's normal is learned from [days].
    min_learn_days
        Fewer healthy days than this: no judgement yet (a new site) [days].
    tolerance
        Alarm when the day's ratio is below ``1 - tolerance`` of the site's normal.
    severe_tolerance
        Below ``1 - severe_tolerance`` one day is enough.
    persist_days
        Days below the normal needed to raise (judged days; dark days do not count) [days].
    clear_tolerance
        Clear when the ratio is back above ``1 - clear_tolerance`` of the normal.
    """

    min_fleet_kwh_per_kwp: float = 0.4
    min_peers: int = 5
    learn_days: int = 45
    min_learn_days: int = 10
    tolerance: float = 0.2
    severe_tolerance: float = 0.45
    persist_days: int = 2
    clear_tolerance: float = 0.1


def fleet_median_kwh_per_kwp(specific: FloatArray, min_peers: int) -> FloatArray:
    """Median specific yield of the devices with a valid day, NaN with too few peers [kWh/kWp]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(specific, axis=0)
    peers = np.sum(np.isfinite(specific), axis=0)
    return np.asarray(np.where(peers >= min_peers, median, np.nan), dtype=np.float64)


def clearness(fleet_kwh_per_kwp: FloatArray, window_days: int = 31) -> FloatArray:
    """The day's fleet yield relative to the best days around it (a clear-sky proxy), 0..1.

    Parameters
    ----------
    fleet_kwh_per_kwp
        Fleet median specific yield per day [kWh/kWp].
    window_days
        Width of the centred window whose 95th percentile stands for a clear day [days].
    """
    n = len(fleet_kwh_per_kwp)
    out = np.full(n, np.nan)
    half = window_days // 2
    for i in range(n):
        window = fleet_kwh_per_kwp[max(0, i - half) : i + half + 1]
        window = window[np.isfinite(window)]
        if window.size and np.isfinite(fleet_kwh_per_kwp[i]):
            ref = np.percentile(window, 95)
            out[i] = min(1.0, fleet_kwh_per_kwp[i] / ref) if ref > 0 else np.nan
    return out


def _expected_ratio(ratios: FloatArray, clear: FloatArray, at_clear: float) -> float:
    """The site's normal ratio at a clearness, from a least-squares line (median if flat)."""
    if ratios.size >= 6 and np.ptp(clear) > 0.2:
        slope, intercept = np.polyfit(clear, ratios, 1)
        fitted = slope * clear + intercept
        resid = np.abs(ratios - fitted)
        keep = resid <= 3 * max(float(np.median(resid)), 0.01)
        if keep.sum() >= 6:
            slope, intercept = np.polyfit(clear[keep], ratios[keep], 1)
        return float(slope * at_clear + intercept)
    return float(np.median(ratios))


def detect_underperformance(daily: FleetDaily, params: PeerParams | None = None) -> Detection:
    """Sites whose daily specific yield stays well below their learned share of the fleet.

    Days are processed in order: a day is judged against the normal learned from the
    ``learn_days`` before it, using only days on which the site was not in alarm, so a slow
    decline (soiling, degradation) is measured against the site's healthy past instead of
    being learned as normal.

    Parameters
    ----------
    daily
        Daily energy per device.
    params
        Thresholds.

    Returns
    -------
    Detection
        Over days, shape (D, N); evidence ``ratio`` (device / fleet median),
        ``normal_ratio`` (learned), ``relative`` (ratio / normal) and
        ``fleet_kwh_per_kwp`` [kWh/kWp].
    """
    p = params or PeerParams()
    specific = daily.specific_yield_kwh_per_kwp
    fleet = fleet_median_kwh_per_kwp(specific, p.min_peers)
    clear = clearness(fleet)
    judged_day = np.isfinite(fleet) & (fleet >= p.min_fleet_kwh_per_kwp)
    ratio = np.where(judged_day[None, :], specific / fleet[None, :], np.nan)
    d, n = ratio.shape
    normal = np.full((d, n), np.nan)
    relative = np.full((d, n), np.nan)
    active = np.zeros((d, n), dtype=bool)
    below = np.zeros(d, dtype=np.int64)
    state = np.zeros(d, dtype=bool)
    healthy = np.zeros((d, n), dtype=bool)
    for j in range(n):
        lo = max(0, j - p.learn_days)
        for i in range(d):
            if not np.isfinite(ratio[i, j]):
                continue
            past = healthy[i, lo:j] & np.isfinite(ratio[i, lo:j])
            if past.sum() < p.min_learn_days:
                healthy[i, j] = True  # still learning: take the day as normal
                continue
            normal[i, j] = _expected_ratio(ratio[i, lo:j][past], clear[lo:j][past], clear[j])
            if normal[i, j] <= 0:
                continue
            relative[i, j] = ratio[i, j] / normal[i, j]
        r = relative[:, j]
        judged = np.isfinite(r)
        low = judged & (r < 1 - p.tolerance)
        severe = judged & (r < 1 - p.severe_tolerance)
        good = judged & (r >= 1 - p.clear_tolerance)
        below = np.where(low, below + 1, np.where(good, 0, below))
        state = np.where(state, ~good, (below >= p.persist_days) | severe)
        active[:, j] = state
        healthy[:, j] |= judged & ~state & ~low
    fleet_2d = np.broadcast_to(fleet[None, :], (d, n))
    return Detection(
        FaultKind.UNDERPERFORMANCE,
        active,
        {
            "ratio": ratio,
            "normal_ratio": normal,
            "relative": relative,
            "fleet_kwh_per_kwp": np.asarray(fleet_2d, dtype=np.float64),
        },
    )
