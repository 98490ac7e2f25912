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

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from collector.settlement.counter_segments import (
    DEFAULT_MAX_GAP_S,
    PreparedSite,
    Segment,
    from_epoch_s,
    to_epoch_s,
)
from collector.settlement.fleet_profile import FleetProfile, learn_site_ratio

FloatArray = NDArray[np.float64]


def wh_to_kwh(energy_wh: float) -> Decimal:
    """Energy in Wh (float) as an exact decimal kWh, to the mWh.

    Parameters
    ----------
    energy_wh : float
        Energy [Wh].
    """
    return Decimal(f"{energy_wh:.3f}") / Decimal(1000)


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
