"""The fleet's production profile and a site's learned ratio to it: pure functions, no I/O.

When a period boundary falls inside a site's gap, or no counter covers a stretch at all,
:mod:`collector.settlement.yields` estimates from the fleet: the fleet's specific production
per bucket (a cumulative curve over all sites' measured energy, per kWp) and each site's
ratio to that fleet curve, learned over the intervals where the site was measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from collector.settlement.counter_segments import (
    DEFAULT_MAX_GAP_S,
    PreparedSite,
    Segment,
    to_epoch_s,
)

FloatArray = NDArray[np.float64]
#: Bucket of the fleet production profile [s].
DEFAULT_PROFILE_STEP_S = 3600.0
#: A site's ratio to the fleet is learned over reading intervals up to this long [s].
RATIO_MAX_INTERVAL_S = 26 * 3600.0
#: A site's ratio to the fleet is learned only over at least this fleet energy [Wh/kWp].
MIN_RATIO_BASIS_WH_PER_KWP = 100.0

# --------------------------------------------------------------------------- fleet profile


@dataclass(frozen=True)
class FleetProfile:
    """The fleet's specific production per bucket, as a cumulative curve.

    Parameters
    ----------
    start_s : float
        Start of the first bucket, UTC epoch seconds [s].
    step_s : float
        Bucket length [s].
    bucket_wh_per_kwp : ndarray
        Mean specific energy of the fleet per bucket [Wh/kWp].
    covered : ndarray of bool
        Buckets at least one site measured (the others are filled in).
    sum_wh_per_kwp, site_count : ndarray, optional
        Sum of the sites' specific energies and number of sites per bucket [Wh/kWp], [1],
        so one site can be compared with its peers only.
    """

    start_s: float
    step_s: float
    bucket_wh_per_kwp: FloatArray
    covered: NDArray[np.bool_]
    sum_wh_per_kwp: FloatArray | None = None
    site_count: FloatArray | None = None
    _grid: FloatArray = field(init=False, repr=False, compare=False)
    _cum: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.bucket_wh_per_kwp.size
        grid = self.start_s + self.step_s * np.arange(n + 1, dtype=np.float64)
        cum = np.concatenate(([0.0], np.cumsum(self.bucket_wh_per_kwp)))
        object.__setattr__(self, "_grid", grid)
        object.__setattr__(self, "_cum", cum)

    @property
    def grid_s(self) -> FloatArray:
        return self._grid

    def between(self, a_s: float, b_s: float) -> float:
        """Fleet specific energy produced in ``[a, b)`` [Wh/kWp]; 0 outside the profile."""
        return float(np.interp(b_s, self._grid, self._cum) - np.interp(a_s, self._grid, self._cum))


def _gap_mask(seg: Segment, grid: FloatArray, max_gap_s: float) -> NDArray[np.bool_]:
    """Per bucket of ``grid``: True when the segment covers it without a gap."""
    lo, hi = grid[:-1], grid[1:]
    ok = (lo >= seg.start_s) & (hi <= seg.end_s)
    dt = np.diff(seg.ts_s)
    gaps = np.flatnonzero(dt > max_gap_s)
    if gaps.size:
        g0, g1 = seg.ts_s[gaps], seg.ts_s[gaps + 1]
        # buckets overlapping (g0, g1): hi > g0 and lo < g1
        first = np.searchsorted(hi, g0, side="right")
        last = np.searchsorted(lo, g1, side="left")
        marks = np.zeros(lo.size + 1, dtype=np.int64)
        np.add.at(marks, first, 1)
        np.add.at(marks, last, -1)
        ok &= np.cumsum(marks[:-1]) == 0
    return ok


def site_bucket_wh(site: PreparedSite, grid: FloatArray, max_gap_s: float) -> FloatArray:
    """The site's energy per bucket of ``grid`` where a counter covers it fully, NaN elsewhere
    [Wh]."""
    out = np.full(grid.size - 1, np.nan)
    for segs in site.segments:
        for seg in segs:
            if seg.ts_s.size < 2:
                continue
            ok = _gap_mask(seg, grid, max_gap_s)
            if not ok.any():
                continue
            cum = np.interp(grid, seg.ts_s, seg.wh)
            energy = np.diff(cum)
            out[ok] = np.where(np.isnan(out[ok]), energy[ok], out[ok] + energy[ok])
    return out


def build_fleet_profile(
    sites: Iterable[PreparedSite],
    start: datetime,
    end: datetime,
    *,
    step_s: float = DEFAULT_PROFILE_STEP_S,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> FleetProfile:
    """The fleet's mean specific yield per bucket over ``[start, end)``.

    A bucket's value is the mean over the sites whose counter covers it without a gap of
    (site energy / site kWp). A bucket no site covers gets the mean of the covered buckets at
    the same time of day, or 0.
    """
    start_s = to_epoch_s(start)
    n = max(1, int(np.ceil((to_epoch_s(end) - start_s) / step_s)))
    grid = start_s + step_s * np.arange(n + 1, dtype=np.float64)
    total = np.zeros(n)
    count = np.zeros(n)
    for site in sites:
        energy = site_bucket_wh(site, grid, max_gap_s)
        ok = ~np.isnan(energy)
        total[ok] += energy[ok] / site.kwp
        count[ok] += 1
    covered = count > 0
    values = np.divide(total, count, out=np.zeros(n), where=covered)
    if not covered.all():
        slots_per_day = max(1, round(86400.0 / step_s))
        slot = np.arange(n) % slots_per_day
        for s in np.unique(slot[~covered]):
            same = (slot == s) & covered
            values[(slot == s) & ~covered] = values[same].mean() if same.any() else 0.0
    return FleetProfile(start_s, step_s, values, covered, total, count)


def learn_site_ratio(
    site: PreparedSite,
    profile: FleetProfile,
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    max_interval_s: float = RATIO_MAX_INTERVAL_S,
) -> float | None:
    """The site's specific yield relative to its peers', over the time both measured.

    Sums the site's counter differences over its reading intervals of at most
    ``max_interval_s`` that lie inside the profile, and the peers' specific energy over the
    same intervals (the site's own hourly contribution taken out of the fleet mean when the
    profile carries its sums; hours no peer measured count the fleet mean). Works with
    readings of any density. ``None`` when the basis is under
    :data:`MIN_RATIO_BASIS_WH_PER_KWP`.
    """
    peers = profile.bucket_wh_per_kwp
    if profile.sum_wh_per_kwp is not None and profile.site_count is not None:
        own_wh = site_bucket_wh(site, profile.grid_s, max_gap_s)
        own = ~np.isnan(own_wh)
        peers_count = profile.site_count - own
        peers_sum = profile.sum_wh_per_kwp - np.where(own, own_wh / site.kwp, 0.0)
        peers = np.where(
            peers_count > 0,
            np.divide(peers_sum, np.maximum(peers_count, 1.0)),
            profile.bucket_wh_per_kwp,
        )
    grid = profile.grid_s
    cum = np.concatenate(([0.0], np.cumsum(peers)))
    site_wh = fleet_wh_per_kwp = 0.0
    for segs in site.segments:
        for seg in segs:
            ts, wh = seg.ts_s, seg.wh
            if ts.size < 2:
                continue
            ok = (np.diff(ts) <= max_interval_s) & (ts[:-1] >= grid[0]) & (ts[1:] <= grid[-1])
            if not ok.any():
                continue
            fleet = np.interp(ts[1:], grid, cum) - np.interp(ts[:-1], grid, cum)
            site_wh += float(np.diff(wh)[ok].sum())
            fleet_wh_per_kwp += float(fleet[ok].sum())
    if fleet_wh_per_kwp < MIN_RATIO_BASIS_WH_PER_KWP:
        return None
    return site_wh / (site.kwp * fleet_wh_per_kwp)
