"""Yield per period from lifetime energy counters: pure functions, no I/O.

A site's energy comes from the lifetime counter (``ac_energy_wh``) of the inverter that
measures it. The yield of ``[start, end)`` is the counter at ``end`` minus the counter at
``start``, each interpolated between the readings around it.

- **Segments.** A counter is split into segments wherever it restarts: at resets the registry
  knows (:attr:`Installation.known_resets`) and at backward steps larger than
  ``reset_threshold_wh`` that nobody announced (reported as ``unknown_reset``). A replaced
  inverter is another :class:`Installation` with its own counter. Single-reading outliers
  (a spike up, a dip to zero at dusk) are dropped and reported; small backward jitter is
  flattened.
- **Gaps.** Readings further apart than ``max_gap_s`` are a gap. The counter difference over a
  gap is exact; when a period boundary falls inside a gap, the difference is split over the
  periods in proportion to the fleet's production profile over the gap, and the share on
  the period's side counts as *estimated*. Short intervals are interpolated linearly in time
  and count as measured.
- **Missing stretches.** Where a site's inverter was installed but no counter covers a
  stretch (before the first reading, after the last, across an unknown reset), its energy
  is estimated as the fleet's specific yield over the stretch × the site's kWp × the site's
  learned ratio to the fleet.

Every :class:`YieldResult` carries measured Wh, estimated Wh, completeness
(measured / total energy) and the estimates it used, so a statement can be explained.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Readings further apart than this are a gap [s].
DEFAULT_MAX_GAP_S = 3600.0
#: A backward step larger than this is a counter reset; smaller ones are jitter [Wh].
DEFAULT_RESET_THRESHOLD_WH = 1000.0
#: Bucket of the fleet production profile [s].
DEFAULT_PROFILE_STEP_S = 3600.0
#: A site's ratio to the fleet is learned over reading intervals up to this long [s].
RATIO_MAX_INTERVAL_S = 26 * 3600.0
#: A site's ratio to the fleet is learned only over at least this fleet energy [Wh/kWp].
MIN_RATIO_BASIS_WH_PER_KWP = 100.0


def to_epoch_s(instant: datetime) -> float:
    """An aware instant as UTC epoch seconds; naive datetimes are refused."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant.isoformat()} has no time zone; give UTC instants")
    return instant.timestamp()


def from_epoch_s(seconds: float) -> datetime:
    """UTC epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def wh_to_kwh(energy_wh: float) -> Decimal:
    """Energy in Wh (float) as an exact decimal kWh, to the mWh.

    Parameters
    ----------
    energy_wh : float
        Energy [Wh].
    """
    return Decimal(f"{energy_wh:.3f}") / Decimal(1000)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class CounterReadings:
    """One device's lifetime-counter readings, ascending in time.

    Parameters
    ----------
    ts_s : ndarray
        Reading times, UTC epoch seconds [s].
    wh : ndarray
        Counter values [Wh].
    """

    device_id: str
    ts_s: FloatArray
    wh: FloatArray

    @classmethod
    def from_pairs(cls, device_id: str, pairs: Iterable[tuple[datetime, float]]) -> CounterReadings:
        """Build from ``(ts_utc, ac_energy_wh)`` pairs in any order; a repeated time keeps the
        last value given."""
        by_ts: dict[float, float] = {}
        for ts, value in pairs:
            by_ts[to_epoch_s(ts)] = float(value)
        return cls.from_arrays(device_id, list(by_ts), list(by_ts.values()))

    @classmethod
    def from_arrays(
        cls, device_id: str, ts_s: Sequence[float] | FloatArray, wh: Sequence[float] | FloatArray
    ) -> CounterReadings:
        t = np.asarray(ts_s, dtype=np.float64)
        e = np.asarray(wh, dtype=np.float64)
        if t.shape != e.shape or t.ndim != 1:
            raise ValueError(f"{device_id}: times and values differ in length")
        order = np.argsort(t, kind="stable")
        t, e = t[order], e[order]
        if t.size > 1:
            keep = np.append(t[1:] != t[:-1], True)  # repeated time: keep the last
            t, e = t[keep], e[keep]
        return cls(device_id, t, e)

    def pairs(self) -> list[tuple[datetime, float]]:
        return [(from_epoch_s(t), float(e)) for t, e in zip(self.ts_s, self.wh, strict=True)]


@dataclass(frozen=True)
class Installation:
    """An inverter measuring a site from ``start`` until ``end`` (``None``: still there).

    ``known_resets`` are instants at which the registry knows this device's counter restarted
    (a firmware reset, a repaired unit keeping its id); readings from then on are a new
    counter segment. ``kwp`` is the peak power of the panels on this inverter [kWp] (default:
    the whole site's), used to estimate stretches it did not measure.
    """

    device_id: str
    start: datetime
    end: datetime | None = None
    known_resets: tuple[datetime, ...] = ()
    kwp: float | None = None


@dataclass(frozen=True)
class Anomaly:
    """Something odd in a device's readings, reported with the settlement."""

    device_id: str
    kind: str  # spike | dip | unknown_reset | invalid
    ts: datetime
    detail: str

    def to_json(self) -> dict[str, str]:
        return {
            "device_id": self.device_id,
            "kind": self.kind,
            "ts": self.ts.isoformat(),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Segment:
    """A stretch of one counter without restarts: non-decreasing values."""

    device_id: str
    ts_s: FloatArray
    wh: FloatArray

    @property
    def start_s(self) -> float:
        return float(self.ts_s[0])

    @property
    def end_s(self) -> float:
        return float(self.ts_s[-1])


@dataclass(frozen=True)
class Estimate:
    """Energy that was not measured directly in a period, and how it was obtained.

    ``kind`` is ``gap_split`` (a gap's exact counter difference, split at the period boundary
    by the fleet profile) or ``missing_stretch`` (no counter; fleet specific yield × kWp ×
    ratio).
    """

    kind: str
    device_id: str | None
    start: datetime
    end: datetime
    wh: float
    basis: str

    def to_json(self) -> dict[str, str | float | None]:
        return {
            "kind": self.kind,
            "device_id": self.device_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "wh": round(self.wh, 3),
            "basis": self.basis,
        }


@dataclass(frozen=True)
class PreparedSite:
    """A site's counters cut into segments, ready for any number of period queries."""

    site_id: str
    kwp: float
    installations: tuple[Installation, ...]
    segments: tuple[tuple[Segment, ...], ...]  # per installation
    anomalies: tuple[Anomaly, ...]


@dataclass(frozen=True)
class YieldResult:
    """A site's yield over ``[start, end)``.

    Parameters
    ----------
    measured_wh : float
        Energy from counter differences [Wh].
    estimated_wh : float
        Energy estimated (gap splits, missing stretches) [Wh].
    """

    start: datetime
    end: datetime
    measured_wh: float
    estimated_wh: float
    estimates: tuple[Estimate, ...] = field(default=())
    missing_s: float = 0.0

    @property
    def total_wh(self) -> float:
        return self.measured_wh + self.estimated_wh

    @property
    def completeness(self) -> float:
        """Share of the energy that was measured [1]; 1 when nothing was produced and nothing
        was missing."""
        total = self.total_wh
        if total > 0:
            return max(0.0, min(1.0, self.measured_wh / total))
        return 0.0 if self.missing_s > 0 else 1.0


# --------------------------------------------------------------------------- segments


def _split_points(ts: FloatArray, resets_s: Sequence[float]) -> list[int]:
    return sorted({int(np.searchsorted(ts, r, side="left")) for r in resets_s} - {0, ts.size})


def _drop_outliers(
    device_id: str, ts: FloatArray, wh: FloatArray, threshold_wh: float, anomalies: list[Anomaly]
) -> tuple[FloatArray, FloatArray]:
    """Drop single readings that jump away and come back (a spike or a dip)."""
    if ts.size < 3:
        return ts, wh
    prev, cur, nxt = wh[:-2], wh[1:-1], wh[2:]
    spike = (cur > nxt + threshold_wh) & (prev <= nxt + threshold_wh)
    dip = (cur < prev - threshold_wh) & (nxt >= prev - threshold_wh)
    bad = np.zeros(ts.size, dtype=bool)
    bad[1:-1] = spike | dip
    for i in np.flatnonzero(bad):
        kind = "spike" if wh[i] > wh[i + 1] else "dip"
        anomalies.append(
            Anomaly(
                device_id,
                kind,
                from_epoch_s(float(ts[i])),
                f"reading {wh[i]:.0f} Wh between {wh[i - 1]:.0f} and {wh[i + 1]:.0f} Wh dropped",
            )
        )
    return ts[~bad], wh[~bad]


def counter_segments(
    readings: CounterReadings,
    installation: Installation,
    *,
    reset_threshold_wh: float = DEFAULT_RESET_THRESHOLD_WH,
) -> tuple[list[Segment], list[Anomaly]]:
    """Cut one installation's readings into restart-free segments and report anomalies.

    Parameters
    ----------
    readings : CounterReadings
        The device's readings (any time span; only those within the installation are used).
    installation : Installation
        When the device measured the site, and its known resets.
    reset_threshold_wh : float
        Backward steps larger than this are a counter restart [Wh].
    """
    device = installation.device_id
    lo = to_epoch_s(installation.start)
    hi = np.inf if installation.end is None else to_epoch_s(installation.end)
    ts, wh = readings.ts_s, readings.wh
    inside = (ts >= lo) & (ts <= hi)
    ts, wh = ts[inside], wh[inside]
    anomalies: list[Anomaly] = []
    valid = np.isfinite(wh) & (wh >= 0)
    if not valid.all():
        first_bad = float(ts[~valid][0])
        anomalies.append(
            Anomaly(
                device,
                "invalid",
                from_epoch_s(first_bad),
                f"{int((~valid).sum())} readings not finite or negative, ignored",
            )
        )
        ts, wh = ts[valid], wh[valid]
    known = [to_epoch_s(r) for r in installation.known_resets]
    pieces: list[tuple[FloatArray, FloatArray]] = []
    start = 0
    for cut in [*_split_points(ts, known), ts.size]:
        pieces.append((ts[start:cut], wh[start:cut]))
        start = cut
    segments: list[Segment] = []
    for p_ts, p_wh in pieces:
        p_ts, p_wh = _drop_outliers(device, p_ts, p_wh, reset_threshold_wh, anomalies)
        if p_ts.size == 0:
            continue
        steps = np.diff(p_wh)
        cuts = (np.flatnonzero(steps < -reset_threshold_wh) + 1).tolist()
        begin = 0
        for cut in [*cuts, p_ts.size]:
            if cut < p_ts.size:
                anomalies.append(
                    Anomaly(
                        device,
                        "unknown_reset",
                        from_epoch_s(float(p_ts[cut])),
                        f"counter fell from {p_wh[cut - 1]:.0f} to {p_wh[cut]:.0f} Wh "
                        "and the registry knows no reset: the energy in between is estimated",
                    )
                )
            s_ts, s_wh = p_ts[begin:cut], np.maximum.accumulate(p_wh[begin:cut])
            segments.append(Segment(device, s_ts, s_wh))
            begin = cut
    return segments, anomalies


def prepare_site(
    site_id: str,
    kwp: float,
    installations: Sequence[Installation],
    readings: Mapping[str, CounterReadings],
    *,
    reset_threshold_wh: float = DEFAULT_RESET_THRESHOLD_WH,
) -> PreparedSite:
    """Cut every installation's counter of a site into segments.

    Parameters
    ----------
    kwp : float
        The site's peak power [kWp].
    readings : Mapping
        Readings by device id; a device with none has no segments.
    """
    if kwp <= 0:
        raise ValueError(f"site {site_id}: kWp must be positive, got {kwp}")
    all_segments: list[tuple[Segment, ...]] = []
    anomalies: list[Anomaly] = []
    for inst in installations:
        device_readings = readings.get(inst.device_id)
        if device_readings is None:
            all_segments.append(())
            continue
        segs, found = counter_segments(device_readings, inst, reset_threshold_wh=reset_threshold_wh)
        all_segments.append(tuple(segs))
        anomalies.extend(found)
    return PreparedSite(site_id, kwp, tuple(installations), tuple(all_segments), tuple(anomalies))


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


# --------------------------------------------------------------------------- period yield


def _counter_at(seg: Segment, t: float, profile: FleetProfile | None, max_gap_s: float) -> float:
    ts, wh = seg.ts_s, seg.wh
    i = int(np.searchsorted(ts, t, side="right")) - 1
    if i < 0:
        return float(wh[0])
    if i >= ts.size - 1:
        return float(wh[-1])
    t0, t1 = float(ts[i]), float(ts[i + 1])
    e0, e1 = float(wh[i]), float(wh[i + 1])
    if t == t0:
        return e0
    weight = (t - t0) / (t1 - t0)
    if profile is not None and t1 - t0 > max_gap_s:
        over_gap = profile.between(t0, t1)
        if over_gap > 0:
            weight = profile.between(t0, t) / over_gap
    return e0 + (e1 - e0) * weight


def _gap_around(seg: Segment, t: float, max_gap_s: float) -> tuple[float, float] | None:
    """The gap interval strictly containing ``t``, if any."""
    ts = seg.ts_s
    i = int(np.searchsorted(ts, t, side="right")) - 1
    if i < 0 or i >= ts.size - 1 or t == ts[i]:
        return None
    t0, t1 = float(ts[i]), float(ts[i + 1])
    return (t0, t1) if t1 - t0 > max_gap_s else None


def _segment_energy(
    seg: Segment,
    a: float,
    b: float,
    profile: FleetProfile | None,
    max_gap_s: float,
    estimates: list[Estimate],
) -> tuple[float, float]:
    """(measured, estimated) energy of one segment inside ``[a, b)`` [Wh]."""
    lo, hi = max(a, seg.start_s), min(b, seg.end_s)
    if hi <= lo:
        return 0.0, 0.0
    c_lo = _counter_at(seg, lo, profile, max_gap_s)
    c_hi = _counter_at(seg, hi, profile, max_gap_s)
    total = c_hi - c_lo
    estimated = 0.0
    gap_lo = _gap_around(seg, lo, max_gap_s)
    gap_hi = _gap_around(seg, hi, max_gap_s)
    basis = "gap's counter difference split by the fleet's production profile"
    if gap_lo is not None:
        upto = min(gap_lo[1], hi)
        share = _counter_at(seg, upto, profile, max_gap_s) - c_lo
        estimated += share
        estimates.append(
            Estimate(
                "gap_split",
                seg.device_id,
                from_epoch_s(lo),
                from_epoch_s(upto),
                share,
                f"{basis} (gap {from_epoch_s(gap_lo[0]).isoformat()} to "
                f"{from_epoch_s(gap_lo[1]).isoformat()})",
            )
        )
    if gap_hi is not None and gap_hi != gap_lo:
        share = c_hi - _counter_at(seg, gap_hi[0], profile, max_gap_s)
        estimated += share
        estimates.append(
            Estimate(
                "gap_split",
                seg.device_id,
                from_epoch_s(gap_hi[0]),
                from_epoch_s(hi),
                share,
                f"{basis} (gap {from_epoch_s(gap_hi[0]).isoformat()} to "
                f"{from_epoch_s(gap_hi[1]).isoformat()})",
            )
        )
    return total - estimated, estimated


def _uncovered(lo: float, hi: float, spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    holes: list[tuple[float, float]] = []
    cursor = lo
    for s0, s1 in sorted(spans):
        if s1 <= cursor:
            continue
        if s0 > cursor:
            holes.append((cursor, min(s0, hi)))
        cursor = max(cursor, s1)
        if cursor >= hi:
            break
    if cursor < hi:
        holes.append((cursor, hi))
    return [(h0, h1) for h0, h1 in holes if h1 > h0]


def site_yield(
    site: PreparedSite,
    start: datetime,
    end: datetime,
    profile: FleetProfile | None,
    *,
    site_ratio: float | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> YieldResult:
    """A site's measured and estimated energy over ``[start, end)``.

    Parameters
    ----------
    profile : FleetProfile, optional
        The fleet's production profile, for gap splits and missing stretches; without it gaps
        are split linearly in time and missing stretches count 0.
    site_ratio : float, optional
        The site's specific yield relative to the fleet [1]; learned from ``profile`` when not
        given, 1 when it cannot be learned.
    max_gap_s : float
        Readings further apart than this are a gap [s].
    """
    a, b = to_epoch_s(start), to_epoch_s(end)
    if b < a:
        raise ValueError(f"period end {end.isoformat()} is before its start {start.isoformat()}")
    measured = estimated = missing_s = 0.0
    estimates: list[Estimate] = []
    ratio_used: float | None = site_ratio
    for inst, segs in zip(site.installations, site.segments, strict=True):
        lo = max(a, to_epoch_s(inst.start))
        hi = b if inst.end is None else min(b, to_epoch_s(inst.end))
        if hi <= lo:
            continue
        for seg in segs:
            m, e = _segment_energy(seg, lo, hi, profile, max_gap_s, estimates)
            measured += m
            estimated += e
        for h0, h1 in _uncovered(lo, hi, [(s.start_s, s.end_s) for s in segs]):
            missing_s += h1 - h0
            if profile is None:
                continue
            if ratio_used is None:
                learned = learn_site_ratio(site, profile, max_gap_s=max_gap_s)
                ratio_used = 1.0 if learned is None else learned
            specific = profile.between(h0, h1)
            kwp = site.kwp if inst.kwp is None else inst.kwp
            energy = specific * kwp * ratio_used
            estimated += energy
            estimates.append(
                Estimate(
                    "missing_stretch",
                    inst.device_id,
                    from_epoch_s(h0),
                    from_epoch_s(h1),
                    energy,
                    f"fleet {specific / 1000:.4f} kWh/kWp × {kwp:g} kWp × "
                    f"site ratio {ratio_used:.4f}",
                )
            )
    return YieldResult(start, end, measured, estimated, tuple(estimates), missing_s)


@dataclass(frozen=True)
class CounterUse:
    """The readings around an instant that a counter value there was interpolated from.

    Parameters
    ----------
    before_wh, after_wh : float
        Counter readings around ``at`` [Wh].
    counter_wh : float
        The counter value used at ``at`` [Wh].
    """

    device_id: str
    at: datetime
    before_ts: datetime
    before_wh: float
    after_ts: datetime
    after_wh: float
    counter_wh: float


def counters_at(
    site: PreparedSite,
    at: datetime,
    profile: FleetProfile | None,
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> list[CounterUse]:
    """For each counter segment covering ``at``: the readings around it and the value used."""
    t = to_epoch_s(at)
    out: list[CounterUse] = []
    for segs in site.segments:
        for seg in segs:
            if not seg.start_s <= t <= seg.end_s:
                continue
            ts = seg.ts_s
            i = min(max(int(np.searchsorted(ts, t, side="right")) - 1, 0), ts.size - 1)
            j = min(i + 1, ts.size - 1) if ts[i] < t else i
            out.append(
                CounterUse(
                    seg.device_id,
                    at,
                    from_epoch_s(float(ts[i])),
                    float(seg.wh[i]),
                    from_epoch_s(float(ts[j])),
                    float(seg.wh[j]),
                    _counter_at(seg, t, profile, max_gap_s),
                )
            )
    return out
