"""A lifetime energy counter cut into segments: pure functions, no I/O.

A counter is split into segments wherever it restarts: at resets the registry knows
(:attr:`Installation.known_resets`) and at backward steps larger than ``reset_threshold_wh``
that nobody announced (reported as ``unknown_reset``). A replaced inverter is another
:class:`Installation` with its own counter. Single-reading outliers (a spike up, a dip to zero
at dusk) are dropped and reported; small backward jitter is flattened. Readings further apart
than ``max_gap_s`` are a gap. :mod:`collector.settlement.yields` turns segments into the
energy of a period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
#: Readings further apart than this are a gap [s].
DEFAULT_MAX_GAP_S = 3600.0
#: A backward step larger than this is a counter reset; smaller ones are jitter [Wh].
DEFAULT_RESET_THRESHOLD_WH = 1000.0


def to_epoch_s(instant: datetime) -> float:
    """An aware instant as UTC epoch seconds; naive datetimes are refused."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant.isoformat()} has no time zone; give UTC instants")
    return instant.timestamp()


def from_epoch_s(seconds: float) -> datetime:
    """UTC epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


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
    imported : tuple
        Spans ``(first_s, last_s)`` of an imported counter (interval energy from a vendor
        export, ``zonnewijk import readings``): a counter of its own, so a new segment begins
        at a span's first reading and after its last [s].
    """

    device_id: str
    ts_s: FloatArray
    wh: FloatArray
    imported: tuple[tuple[float, float], ...] = ()

    @classmethod
    def from_pairs(
        cls,
        device_id: str,
        pairs: Iterable[tuple[datetime, float]],
        *,
        imported: Sequence[tuple[float, float]] = (),
    ) -> CounterReadings:
        """Build from ``(ts_utc, ac_energy_wh)`` pairs in any order; a repeated time keeps the
        last value given."""
        by_ts: dict[float, float] = {}
        for ts, value in pairs:
            by_ts[to_epoch_s(ts)] = float(value)
        return cls.from_arrays(device_id, list(by_ts), list(by_ts.values()), imported=imported)

    @classmethod
    def from_arrays(
        cls,
        device_id: str,
        ts_s: Sequence[float] | FloatArray,
        wh: Sequence[float] | FloatArray,
        *,
        imported: Sequence[tuple[float, float]] = (),
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
        spans = tuple(sorted((float(a), float(b)) for a, b in imported))
        return cls(device_id, t, e, spans)

    def pairs(self) -> list[tuple[datetime, float]]:
        return [(from_epoch_s(t), float(e)) for t, e in zip(self.ts_s, self.wh, strict=True)]

    def restarts_s(self) -> list[float]:
        """Where a new counter begins because of an imported span: at its first reading and
        just after its last, unless another span continues it there [s]."""
        starts = {a for a, _ in self.imported}
        ends = {b for _, b in self.imported}
        out = {a for a in starts if a not in ends}
        out |= {b + IMPORTED_EDGE_S for b in ends if b not in starts}
        return sorted(out)


#: A new counter begins this long after an imported span's last reading [s].
IMPORTED_EDGE_S = 0.001


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
    kind: str  # spike | dip | unknown_reset | invalid | imported
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
class PreparedSite:
    """A site's counters cut into segments, ready for any number of period queries."""

    site_id: str
    kwp: float
    installations: tuple[Installation, ...]
    segments: tuple[tuple[Segment, ...], ...]  # per installation
    anomalies: tuple[Anomaly, ...]


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
    known = [to_epoch_s(r) for r in installation.known_resets] + readings.restarts_s()
    for first_s, last_s in readings.imported:
        if last_s >= lo and first_s <= hi:
            anomalies.append(
                Anomaly(
                    device,
                    "imported",
                    from_epoch_s(first_s),
                    f"readings up to {from_epoch_s(last_s).isoformat()} are an imported counter "
                    "(interval energy from a file), not the inverter's own",
                )
            )
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
