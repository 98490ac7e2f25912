"""``zonnewijk faults check``: the detectors on readings from files, with no server at all.

The files are read by the import's formats (:mod:`collector.importing.rows`: generic CSV,
spool, FusionSolar, Sunny Portal; interval energy as its mean power), put on a regular grid
(:func:`series_from_rows`: the interval the file was sampled at, 1 minute to 1 hour, the last
reading of a step wins) and judged by

- the server's detectors that need no fleet: fault state, string imbalance, frozen values and
  counter stalls, counter anomalies, implausible power (:mod:`collector.faults.pipeline`);
- the series checks (:mod:`collector.faults.series_checks`): gaps, stale values at any sun
  height, outliers, clipping, night production;
- underperformance: with at least ``min_peers`` devices the server's peer comparison
  (:func:`collector.faults.peers.detect_underperformance`, daily energy from the files); with
  fewer, each device against the clear-sky output of its roof with a learned ratio
  (:func:`collector.faults.series_checks.detect_underperformance_clear_sky`).

A device's rating and kWp come from ``--fleet``, else ``--site-kwp`` / ``--ac-rating-w``, else
from the data (:func:`estimated_rating_w`).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from collector.faults.daily_energy import DAYLIGHT_ELEVATION_DEG
from collector.faults.episodes import findings
from collector.faults.fault_state import detect_fault_state
from collector.faults.integrity import (
    CounterParams,
    ImplausibleParams,
    detect_counter_anomalies,
    detect_frozen,
    detect_implausible_power,
)
from collector.faults.model import (
    MISSING_STATE,
    STATE_CODE,
    Detection,
    FaultKind,
    Finding,
    FleetDaily,
    FleetSeries,
    event_mask,
    orientation_group,
)
from collector.faults.peers import PeerParams, detect_underperformance
from collector.faults.series_checks import (
    ClearSkyParams,
    SeriesCheckParams,
    detect_clipping,
    detect_gaps,
    detect_night_production,
    detect_spikes,
    detect_stale,
    detect_underperformance_clear_sky,
)
from collector.faults.solar import (
    ZWOLLE_LAT_DEG,
    ZWOLLE_LON_DEG,
    clear_sky_daily_kwh_per_kwp,
    clear_sky_poa_w_m2,
    sun_elevation_deg,
)
from collector.faults.strings import detect_string_imbalance
from collector.importing.rows import ReadingSource, RowInterval, RowProblem, RowReading
from zonnewijk_wire import InverterState

#: Sampling intervals a file may have [s].
MIN_STEP_S = 60
MAX_STEP_S = 3600


@dataclass(frozen=True)
class Site:
    """Where the devices are and how their panels face (one roof for every device)."""

    lat_deg: float = ZWOLLE_LAT_DEG
    lon_deg: float = ZWOLLE_LON_DEG
    tilt_deg: float = 35.0
    azimuth_deg: float = 180.0


@dataclass(frozen=True)
class DeviceInfo:
    """What is known about a device beyond its readings (from --fleet or the options)."""

    kwp: float | None = None
    ac_rating_w: float | None = None
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    gateway_id: str | None = None


@dataclass
class _DeviceRows:
    ts_s: list[int] = field(default_factory=list)
    power: list[float] = field(default_factory=list)
    energy: list[float] = field(default_factory=list)
    volts: list[float] = field(default_factory=list)
    state: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    dc: list[dict[int, float]] = field(default_factory=list)
    gateway: str | None = None


@dataclass
class FileReadings:
    """Everything the files held, per device, and what could not be read."""

    devices: dict[str, _DeviceRows] = field(default_factory=dict)
    rows: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    #: The first unreadable rows: (file, line, reason, detail).
    examples: list[tuple[str, int, str, str]] = field(default_factory=list)


def _num(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan


def read_sources(sources: Iterable[ReadingSource]) -> FileReadings:
    """Collect the rows of every file per device (intervals as their mean power)."""
    out = FileReadings()
    for source in sources:
        for row in source.rows():
            out.rows += 1
            if isinstance(row, RowProblem):
                out.problems[row.reason] += 1
                if len(out.examples) < 20:
                    out.examples.append((source.label, row.line, row.reason, row.detail))
                continue
            rows = out.devices.setdefault(row.device_id, _DeviceRows())
            rows.gateway = rows.gateway or row.gateway_id
            if isinstance(row, RowInterval):
                rows.ts_s.append(int(row.start.timestamp()))
                rows.power.append(row.mean_power_w)
                rows.energy.append(math.nan)
                rows.volts.append(_num((row.extra or {}).get("ac_voltage_v")))
                rows.state.append(STATE_CODE[InverterState.UNKNOWN])
                rows.events.append(0)
                rows.dc.append(_dc((row.extra or {}).get("dc")))
                continue
            assert isinstance(row, RowReading)
            wire = row.wire
            rows.ts_s.append(int(row.ts.timestamp()))
            rows.power.append(_num(wire.get("ac_power_w")))
            rows.energy.append(_num(wire.get("ac_energy_wh")))
            rows.volts.append(_num(wire.get("ac_voltage_v")))
            rows.state.append(_state(wire.get("state")))
            events = wire.get("events")
            rows.events.append(
                event_mask([str(e) for e in events]) if isinstance(events, list) else 0
            )
            rows.dc.append(_dc(wire.get("dc")))
    return out


def _state(value: object) -> int:
    try:
        return STATE_CODE[InverterState(str(value))] if value else STATE_CODE[InverterState.UNKNOWN]
    except ValueError:
        return STATE_CODE[InverterState.UNKNOWN]


def _dc(value: object) -> dict[int, float]:
    out: dict[int, float] = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("mppt"), int):
                power = _num(item.get("dc_power_w"))
                if not math.isfinite(power):
                    power = _num(item.get("dc_voltage_v")) * _num(item.get("dc_current_a"))
                out[int(item["mppt"])] = power
    return out


def sampling_step_s(readings: FileReadings) -> int:
    """The files' sampling interval: the smallest device median spacing, in whole minutes,
    1 minute to 1 hour [s]."""
    medians = []
    for rows in readings.devices.values():
        ts = np.unique(np.asarray(rows.ts_s, dtype=np.int64))
        if ts.size >= 2:
            medians.append(float(np.median(np.diff(ts))))
    if not medians:
        raise ValueError("too few readings to tell the sampling interval (two per device at least)")
    step = round(min(medians) / 60.0) * 60
    return int(min(MAX_STEP_S, max(MIN_STEP_S, step)))


def estimated_rating_w(power_w: np.ndarray) -> float:
    """A rating from the readings alone: the 99th percentile of producing power x 1.1.

    High enough that a sunny noon is not "above the rating", robust to a few spikes (they
    are what the outlier checks are for); a clipping inverter's plateau is its 99th
    percentile, so its rating comes out 10 % high and the clipping check needs ``--fleet`` or
    ``--ac-rating-w``.
    """
    finite = power_w[np.isfinite(power_w) & (power_w > 0)]
    if finite.size == 0:
        return 1000.0
    return float(np.percentile(finite, 99) * 1.1)


def series_from_rows(
    readings: FileReadings,
    site: Site,
    info: Mapping[str, DeviceInfo] | None = None,
    step_s: int | None = None,
    default: DeviceInfo | None = None,
) -> FleetSeries:
    """The files' readings on a regular grid from the first step to the last."""
    fallback = default or DeviceInfo()
    info = info or {}
    if not readings.devices:
        raise ValueError("no readings in the files")
    step = step_s or sampling_step_s(readings)
    ids = tuple(sorted(readings.devices))
    first = min(min(readings.devices[d].ts_s) for d in ids) // step * step
    last = max(max(readings.devices[d].ts_s) for d in ids) // step * step
    t = (last - first) // step + 1
    d_count = len(ids)
    power = np.full((d_count, t), np.nan)
    energy = np.full((d_count, t), np.nan)
    volts = np.full((d_count, t), np.nan)
    state = np.full((d_count, t), MISSING_STATE, dtype=np.int64)
    events = np.zeros((d_count, t), dtype=np.int64)
    mppts = max((max(dc) for d in ids for dc in readings.devices[d].dc if dc), default=1)
    dc = np.full((d_count, mppts, t), np.nan)
    for i, device in enumerate(ids):
        rows = readings.devices[device]
        ts = np.asarray(rows.ts_s, dtype=np.int64)
        order = np.argsort(ts, kind="stable")  # file order within a step: the last one wins
        j = (ts[order] - first) // step
        power[i, j] = np.asarray(rows.power)[order]
        energy[i, j] = np.asarray(rows.energy)[order]
        volts[i, j] = np.asarray(rows.volts)[order]
        state[i, j] = np.asarray(rows.state, dtype=np.int64)[order]
        events[i, j] = np.asarray(rows.events, dtype=np.int64)[order]
        for k, pos in zip(order, j, strict=True):
            for mppt, value in rows.dc[k].items():
                if 1 <= mppt <= mppts:
                    dc[i, mppt - 1, pos] = value
    ratings = []
    kwps = []
    for i, device in enumerate(ids):
        known = info.get(device, fallback)
        rating = known.ac_rating_w
        if rating is None:
            rating = known.kwp * 1000.0 if known.kwp else estimated_rating_w(power[i])
        ratings.append(rating)
        kwps.append(known.kwp if known.kwp else rating / 1000.0)
    times = (first + np.arange(t, dtype=np.int64) * step).astype("datetime64[s]")
    mid = (first + step // 2 + np.arange(t, dtype=np.int64) * step).astype("datetime64[s]")
    present = state != MISSING_STATE
    gateways = tuple(
        info.get(d, fallback).gateway_id or readings.devices[d].gateway or "file" for d in ids
    )
    return FleetSeries(
        times=times,
        step_s=step,
        device_ids=ids,
        gateway_ids=gateways,
        kwp=np.array(kwps),
        ac_rating_w=np.array(ratings),
        ac_power_w=power,
        ac_energy_wh=energy,
        state=state,
        event_bits=events,
        dc_power_w=dc,
        gateway_seen=present,
        sun_elevation_deg=sun_elevation_deg(mid, site.lat_deg, site.lon_deg),
        ac_voltage_v=volts if np.isfinite(volts).any() else None,
    )


@dataclass(frozen=True)
class CheckConfig:
    """Everything ``faults check`` can be told."""

    site: Site = field(default_factory=Site)
    series: SeriesCheckParams = field(default_factory=SeriesCheckParams)
    clear_sky: ClearSkyParams = field(default_factory=ClearSkyParams)
    peers: PeerParams = field(default_factory=PeerParams)
    #: Anomalies in a file are episodes, not alerts to keep open: no hold time.
    counter: CounterParams = field(default_factory=lambda: CounterParams(hold_s=1))
    implausible: ImplausibleParams = field(default_factory=lambda: ImplausibleParams(hold_s=1))
    #: What is known of a device the ``info`` mapping does not name (``--site-kwp``, ...).
    default_device: DeviceInfo = field(default_factory=lambda: DeviceInfo())


@dataclass(frozen=True)
class CheckResult:
    """The findings, and what the check was run on."""

    findings: list[Finding]
    step_s: int
    devices: tuple[str, ...]
    start: datetime
    end: datetime
    rows: int
    problems: Counter[str]
    examples: list[tuple[str, int, str, str]]
    underperformance_by: str
    ratings_w: dict[str, float]


def _step_findings(detection: Detection, series: FleetSeries) -> list[Finding]:
    return findings(detection, series.times, series.device_ids, series.gateway_ids)


def daily_from_power(
    series: FleetSeries, site: Site, info: Mapping[str, DeviceInfo], default: DeviceInfo
) -> FleetDaily:
    """Daily energy per device (UTC days) from the lifetime counter where every day has a
    closing reading, else from the mean power; a day with a daylight hour without readings is
    unknown."""
    steps_per_day = 86400 // series.step_s
    start_s = int(series.times[0].astype(np.int64))
    pad_front = (start_s % 86400) // series.step_s
    d, t = series.ac_power_w.shape
    n = -(-(pad_front + t) // steps_per_day)
    grid = np.full((d, n * steps_per_day), np.nan)
    grid[:, pad_front : pad_front + t] = series.ac_power_w
    elevation = np.full(n * steps_per_day, -90.0)
    elevation[pad_front : pad_front + t] = series.sun_elevation_deg
    by_day = grid.reshape(d, n, steps_per_day)
    hours = max(1, 3600 // series.step_s)
    daylight = (elevation >= DAYLIGHT_ELEVATION_DEG).reshape(n, steps_per_day)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        produced = np.clip(np.nan_to_num(by_day, nan=0.0), 0.0, None)
        # a day's energy from its mean daylight power, if no daylight hour lacks readings
        covered = np.isfinite(by_day) | ~daylight[None, :, :]
        blocks = covered[:, :, : steps_per_day // hours * hours].reshape(d, n, -1, hours)
        whole = np.all(np.any(blocks, axis=3), axis=2)
        known = np.isfinite(by_day) & daylight[None, :, :]
        share = known.sum(axis=2) / np.maximum(1, daylight.sum(axis=1))[None, :]
        energy = produced.sum(axis=2) * series.step_s / 3600.0 / np.maximum(share, 1e-9)
    energy = np.where(whole & (share > 0.5), energy, np.nan)
    day0 = np.datetime64(start_s - start_s % 86400, "s").astype("datetime64[D]")
    days = day0 + np.arange(n)
    tilt = np.array([info.get(x, default).tilt_deg or site.tilt_deg for x in series.device_ids])
    az = np.array([info.get(x, default).azimuth_deg or site.azimuth_deg for x in series.device_ids])
    return FleetDaily(
        days=days,
        device_ids=series.device_ids,
        kwp=series.kwp,
        energy_wh=energy,
        clear_sky_kwh_per_kwp=clear_sky_daily_kwh_per_kwp(
            days, tilt, az, site.lat_deg, site.lon_deg
        ),
        groups=tuple(orientation_group(a, b) for a, b in zip(az, tilt, strict=True)),
    )


def check_series(
    series: FleetSeries,
    config: CheckConfig | None = None,
    info: Mapping[str, DeviceInfo] | None = None,
) -> tuple[list[Finding], str]:
    """Every detector that applies to the series; returns the findings and how
    underperformance was judged (``peers``, ``clear_sky``)."""
    c = config or CheckConfig()
    info = info or {}
    out: list[Finding] = []
    detections = [
        detect_fault_state(series),
        detect_string_imbalance(series),
        detect_frozen(series),
        detect_stale(series, c.series),
        detect_counter_anomalies(series, c.counter),
        detect_implausible_power(series, c.implausible),
        detect_spikes(series, c.series),
        detect_clipping(series, c.series),
        detect_night_production(series, c.series),
        detect_gaps(series, c.series),
    ]
    frozen_server, frozen_files = detections[2], detections[3]
    detections[2:4] = [
        Detection(
            FaultKind.FROZEN_VALUE,
            frozen_server.active | frozen_files.active,
            {
                "ac_power_w": series.ac_power_w,
                **{k: v for k, v in frozen_files.evidence.items() if k != "ac_power_w"},
            },
        )
    ]
    for detection in detections:
        out.extend(_step_findings(detection, series))
    if len(series.device_ids) >= c.peers.min_peers:
        daily = daily_from_power(series, c.site, info, c.default_device)
        detection = detect_underperformance(daily, c.peers)
        out.extend(findings(detection, daily.days, daily.device_ids, series.gateway_ids))
        how = "peers"
    else:
        middles = series.times + np.timedelta64(series.step_s // 2, "s")
        poa = np.vstack(
            [
                clear_sky_poa_w_m2(
                    middles,
                    info.get(dev, c.default_device).tilt_deg or c.site.tilt_deg,
                    info.get(dev, c.default_device).azimuth_deg or c.site.azimuth_deg,
                    c.site.lat_deg,
                    c.site.lon_deg,
                )
                for dev in series.device_ids
            ]
        )
        days, detection = detect_underperformance_clear_sky(
            series.times, series.ac_power_w, poa, series.kwp * 1000.0, c.clear_sky
        )
        out.extend(findings(detection, days, series.device_ids, series.gateway_ids))
        how = "clear_sky"
    out.sort(key=lambda f: (f.device_id, f.start, f.kind.value))
    return out, how


def check_files(
    sources: Sequence[ReadingSource],
    config: CheckConfig | None = None,
    info: Mapping[str, DeviceInfo] | None = None,
    step_s: int | None = None,
) -> CheckResult:
    """Read the files and run :func:`check_series`."""
    c = config or CheckConfig()
    readings = read_sources(sources)
    series = series_from_rows(readings, c.site, info, step_s, c.default_device)
    found, how = check_series(series, c, info)
    end = series.time_at(len(series.times) - 1) + timedelta(seconds=series.step_s)
    return CheckResult(
        findings=found,
        step_s=series.step_s,
        devices=series.device_ids,
        start=series.time_at(0),
        end=end,
        rows=readings.rows,
        problems=readings.problems,
        examples=readings.examples,
        underperformance_by=how,
        ratings_w={d: float(r) for d, r in zip(series.device_ids, series.ac_rating_w, strict=True)},
    )


def finding_end(finding: Finding, step_s: int) -> datetime:
    """The end of a finding's last step (a day for the daily kinds)."""
    if finding.kind is FaultKind.UNDERPERFORMANCE:
        return finding.last + timedelta(days=1)
    return finding.last + timedelta(seconds=step_s)


def result_json(result: CheckResult) -> dict[str, object]:
    """``--format json``: the findings (kind, device, start, end, evidence) and the run."""
    return {
        "devices": list(result.devices),
        "step_s": result.step_s,
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "rows": result.rows,
        "unreadable_rows": dict(sorted(result.problems.items())),
        "unreadable_examples": [
            {"file": f, "line": line, "reason": r, "detail": d} for f, line, r, d in result.examples
        ],
        "underperformance_by": result.underperformance_by,
        "ac_rating_w": result.ratings_w,
        "findings": [
            {
                "kind": f.kind.value,
                "device": f.device_id,
                "start": f.start.astimezone(UTC).isoformat(),
                "end": finding_end(f, result.step_s).astimezone(UTC).isoformat(),
                "evidence": f.evidence,
            }
            for f in result.findings
        ],
    }


def _evidence_text(evidence: Mapping[str, float | int | str]) -> str:
    shown = [f"{k}={v}" for k, v in evidence.items() if not k.endswith("_at_start")]
    return ", ".join(shown)


def result_table(result: CheckResult) -> str:
    """The findings as a text table, with a line on what was checked."""
    lines = [
        f"{len(result.devices)} device(s), {result.rows:,} rows, every {result.step_s // 60} min "
        f"from {result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC; "
        f"underperformance against {result.underperformance_by.replace('_', '-')}",
    ]
    if result.problems:
        lines.append(
            "unreadable rows: "
            + ", ".join(f"{reason} {n}" for reason, n in sorted(result.problems.items()))
        )
        lines.extend(f"  {f} line {line}: {r}: {d}" for f, line, r, d in result.examples[:5])
    counts: dict[str, int] = defaultdict(int)
    for f in result.findings:
        counts[f.kind.value] += 1
    lines.append(
        f"{len(result.findings)} finding(s)"
        + (": " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) if counts else "")
    )
    if result.findings:
        rows = [("kind", "device", "start (UTC)", "end (UTC)", "evidence")]
        rows += [
            (
                f.kind.value,
                f.device_id,
                f"{f.start:%Y-%m-%d %H:%M}",
                f"{finding_end(f, result.step_s):%Y-%m-%d %H:%M}",
                _evidence_text(f.evidence),
            )
            for f in result.findings
        ]
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        for r in rows:
            lines.append("  ".join(r[k].ljust(widths[k]) for k in range(4)) + "  " + r[4])
    return "\n".join(lines)
