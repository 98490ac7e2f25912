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
from collector.faults.solar import noon_elevation_deg


@dataclass(frozen=True, kw_only=True)
class PeerParams:
    """Parameters of :func:`detect_underperformance`.

    Attributes
    ----------
    min_fleet_kwh_per_kwp
        Days darker than this fleet median are not judged (too little signal) [kWh/kWp].
    min_peers
        Devices with a valid day needed for a fleet median, and for a group's shared part.
    learn_days
        How many past days the site's normal is learned from [days].
    min_learn_days
        Fewer healthy days than this: no judgement yet (a new site) [days].
    learn_gap_days
        Leave out the most recent days when learning, so a slow decline (soiling) stands out
        against an older normal instead of being learned along [days].
    tolerance
        Alarm when the day's ratio is below ``1 - tolerance`` of the site's normal.
    severe_tolerance
        Below ``1 - severe_tolerance`` one day is enough.
    persist_days
        Days below the normal needed to raise (judged days; dark days do not count) [days].
    clear_tolerance
        Clear when the ratio is back above ``1 - clear_tolerance`` of the normal.
    """

    min_fleet_kwh_per_kwp: float = 0.1
    min_peers: int = 5
    learn_days: int = 45
    min_learn_days: int = 10
    learn_gap_days: int = 0
    tolerance: float = 0.25
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


def _expected_ratio(ratios: FloatArray, features: FloatArray, at: FloatArray) -> float:
    """The site's normal ratio at feature values ``at``: robust least squares on past days.

    ``features`` has one row per past day (without the constant); columns that barely vary
    are dropped, and with too few days the median ratio is the normal. The result stays
    within the range of the past ratios.
    """
    usable = [c for c in range(features.shape[1]) if np.ptp(features[:, c]) > 1e-3]
    if ratios.size < 4 * (len(usable) + 1) or not usable:
        return float(np.median(ratios))
    design = np.column_stack([np.ones(ratios.size), features[:, usable]])
    point = np.concatenate([[1.0], at[usable]])
    coef, *_ = np.linalg.lstsq(design, ratios, rcond=None)
    resid = np.abs(ratios - design @ coef)
    keep = resid <= 3 * max(float(np.median(resid)), 0.01)
    if keep.sum() >= 4 * (len(usable) + 1):
        coef, *_ = np.linalg.lstsq(design[keep], ratios[keep], rcond=None)
    # never expect more (or less) than the site's own recent days gave: a line fitted on a
    # few weeks must not be extrapolated far
    return float(np.clip(point @ coef, np.min(ratios), np.max(ratios)))


def explanatory(daily: FleetDaily, fleet_kwh_per_kwp: FloatArray) -> FloatArray:
    """What a site's ratio to the fleet is regressed on, shape (D, N).

    With the roofs' clear-sky yields: ``(g - 1) * k``, where ``g`` is the roof's clear-sky
    yield relative to the fleet's median roof that day and ``k`` the day's clearness (fleet
    yield / median clear-sky yield): a roof's geometry matters in proportion to the direct
    sun. Without: the clearness proxy of :func:`clearness` for every site.
    """
    d, n = daily.energy_wh.shape
    cs = daily.clear_sky_kwh_per_kwp
    if cs is None:
        return np.asarray(np.broadcast_to(clearness(fleet_kwh_per_kwp)[None, :], (d, n)))
    median_cs = np.median(cs, axis=0)
    with np.errstate(all="ignore"):
        g = cs / median_cs[None, :]
        k = np.clip(fleet_kwh_per_kwp / median_cs, 0.0, 1.5)
    return np.asarray((g - 1.0) * k[None, :], dtype=np.float64)


def _remove_group_share(relative: FloatArray, groups: tuple[str, ...], min_peers: int) -> None:
    """Divide each device's relative yield by its group's median of the day, in place."""
    labels = np.asarray(groups)
    for label in set(groups):
        members = (labels == label) & np.isfinite(relative)
        if members.sum() >= min_peers:
            shared = float(np.median(relative[members]))
            if shared > 0:
                relative[members] /= shared


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
    x = explanatory(daily, fleet)
    # the noon sun's height carries what changes with the season beyond geometry: shade from
    # a neighbour's roof or a tree grows as the sun sinks towards winter
    elevation = noon_elevation_deg(daily.days) / 10.0
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
        for i in range(d):
            if not np.isfinite(ratio[i, j]):
                continue
            # learn from the days before the gap; a young site learns from all it has
            hi = j - p.learn_gap_days
            lo = max(0, hi - p.learn_days)
            past = healthy[i, lo:hi] & np.isfinite(ratio[i, lo:hi]) if hi > 0 else np.zeros(0, bool)
            if past.sum() < p.min_learn_days:
                hi, lo = j, max(0, j - p.learn_days)
                past = healthy[i, lo:hi] & np.isfinite(ratio[i, lo:hi])
            if past.sum() < p.min_learn_days:
                healthy[i, j] = True  # still learning: take the day as normal
                continue
            features = np.column_stack([x[i, lo:hi], elevation[lo:hi]])[past]
            normal[i, j] = _expected_ratio(
                ratio[i, lo:hi][past], features, np.array([x[i, j], elevation[j]])
            )
            if normal[i, j] <= 0:
                continue
            relative[i, j] = ratio[i, j] / normal[i, j]
        if daily.groups is not None:
            _remove_group_share(relative[:, j], daily.groups, p.min_peers)
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
