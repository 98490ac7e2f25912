"""Scoring the detectors against the simulator's ground truth (used by ``bench/faults.py``).

:func:`series_from_chunks` turns the simulator's arrays into what the collector would have seen
*at the time*: a reading counts only from the moment its batch reached the server, so a
gateway outage looks like silence (its readings arrive later from the spool), and a gateway
whose inverter is off still sends its status heartbeat.

An alert (finding) is a true positive when it overlaps, on the same device, a ground-truth
fault (with a grace period after the fault's end, for alerts about its after-effects such as
the counter jump when frozen registers thaw); otherwise it is a false alert. A fault is
detected when an alert of a kind that describes it overlaps it; its time to detection runs
from the fault's start to the first such alert, also counted in daylight minutes (sun above
the horizon), since production detectors cannot see anything at night.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from collector.faults.daily_energy import (
    BUCKET_S,
    DAYLIGHT_ELEVATION_DEG,
    counter_resolution_wh,
    daily_energy_wh,
    energy_from_power_wh,
)
from collector.faults.model import (
    EVENT_BIT,
    FaultKind,
    Finding,
    FleetDaily,
    FleetSeries,
    orientation_group,
)
from collector.faults.solar import clear_sky_daily_kwh_per_kwp, sun_elevation_deg, sunset_utc
from collector.ingest.validate import ValidationLimits, max_ac_power_w
from collector.simulator.engine import Chunk
from collector.simulator.faults import FAULT_EVENTS, Fault
from collector.simulator.fleet import Fleet

#: Which alert kinds describe each simulated fault type.
EXPECTED_KINDS: dict[str, frozenset[FaultKind]] = {
    "offline": frozenset({FaultKind.DEVICE_OFFLINE, FaultKind.GATEWAY_OFFLINE}),
    "fault_state": frozenset({FaultKind.FAULT_STATE}),
    "dead_string": frozenset({FaultKind.STRING_IMBALANCE, FaultKind.UNDERPERFORMANCE}),
    "degradation": frozenset({FaultKind.UNDERPERFORMANCE}),
    "frozen": frozenset({FaultKind.FROZEN_VALUE}),
    "comms_glitch": frozenset({FaultKind.COUNTER_ANOMALY, FaultKind.IMPLAUSIBLE_VALUE}),
    "counter_reset": frozenset({FaultKind.COUNTER_ANOMALY}),
    "gateway_outage": frozenset({FaultKind.GATEWAY_OFFLINE}),
    "underperformance": frozenset({FaultKind.UNDERPERFORMANCE}),
}
#: The issue's goals: detected within this much daylight (offline, fault state) or wall-clock
#: time (dead string, underperformance) of the fault's start.
GOAL_DAYLIGHT_MIN: dict[str, float] = {"offline": 30.0, "fault_state": 30.0, "gateway_outage": 30.0}
GOAL_WALL_MIN: dict[str, float] = {"dead_string": 3 * 1440.0, "underperformance": 3 * 1440.0}
#: An alert up to this long after a fault's end still belongs to it.
GRACE = timedelta(hours=12)
#: Degradation below this loss is within the peer comparison's tolerance: not expected.
DETECTABLE_DEGRADATION_LOSS = 0.2


def series_from_chunks(
    fleet: Fleet, chunks: Sequence[Chunk], interval_s: int, arrival_slack_s: int = 60
) -> FleetSeries:
    """The readings as the server saw them in real time.

    Parameters
    ----------
    fleet
        The simulated fleet.
    chunks
        The simulation's chunks, in order.
    interval_s
        Reading interval; also the batch period of the simulation [s].
    arrival_slack_s
        A reading counts at its step when its batch arrived within one interval plus this [s].
    """
    epoch = np.concatenate([c.epoch_s for c in chunks])
    sent = np.concatenate([c.sent_at_s for c in chunks]).T
    arrived = sent <= epoch[None, :] + interval_s + arrival_slack_s
    arrived_readings = np.concatenate([c.present for c in chunks]).T & arrived
    # what the collector refuses is not stored: it reaches the detectors only as rejected
    rejected = arrived_readings & collector_refuses(fleet, chunks)
    present = arrived_readings & ~rejected
    power = np.where(present, np.concatenate([c.ac_power_w for c in chunks]).T, np.nan)
    energy = np.where(present, np.concatenate([c.ac_energy_wh for c in chunks]).T, np.nan)
    state = np.where(present, np.concatenate([c.state for c in chunks]).T.astype(np.int64), -1)
    event_index = np.concatenate([c.event for c in chunks]).T.astype(np.int64)
    bits = np.array([0, *[EVENT_BIT[name] for _, name in FAULT_EVENTS]], dtype=np.int64)
    event_bits = np.where(present, bits[event_index], 0)
    dc_ok = np.concatenate([c.dc_present for c in chunks]).T & present
    dc = np.concatenate([c.dc_power_w for c in chunks]).transpose(1, 2, 0)
    dc = np.where(dc_ok[:, None, :], dc, np.nan)
    volts = np.where(present, np.concatenate([c.ac_voltage_v for c in chunks]).T, np.nan)
    commissioned = np.array(
        [
            int(
                datetime(
                    s.commissioned.year, s.commissioned.month, s.commissioned.day, tzinfo=UTC
                ).timestamp()
            )
            for s in fleet.sites
        ]
    )
    times = epoch.astype("datetime64[s]")
    mid = (epoch + interval_s // 2).astype("datetime64[s]")
    return FleetSeries(
        times=times,
        step_s=interval_s,
        device_ids=tuple(s.device_id for s in fleet.sites),
        gateway_ids=tuple(s.gateway_id for s in fleet.sites),
        kwp=fleet.column("kwp"),
        ac_rating_w=fleet.column("ac_rating_w"),
        ac_power_w=power,
        ac_energy_wh=energy,
        state=state,
        event_bits=event_bits,
        dc_power_w=dc,
        gateway_seen=arrived,
        sun_elevation_deg=sun_elevation_deg(mid),
        expected=epoch[None, :] >= commissioned[:, None],
        ac_voltage_v=volts,
        rejected=rejected,
    )


def collector_refuses(fleet: Fleet, chunks: Sequence[Chunk]) -> np.ndarray:
    """Shape (D, T): readings the collector's validation refuses for an impossible value.

    The same limits as :func:`collector.ingest.validate.check_reading` (power above the
    rating or below the night floor, physical ranges of the other fields); a value the
    gateway left out (NaN) is not refused.
    """
    limits = ValidationLimits()
    rating = fleet.column("ac_rating_w")
    high = np.array([max_ac_power_w(float(r), limits) for r in rating])
    power = np.concatenate([c.ac_power_w for c in chunks]).T
    with np.errstate(invalid="ignore"):
        out = (power > high[:, None]) | (power < limits.min_ac_power_w)
        for name in ("ac_energy_wh", "ac_voltage_v", "grid_frequency_hz", "cabinet_temp_c"):
            low, top = limits.ranges[name]
            values = np.concatenate([getattr(c, name) for c in chunks]).T
            out |= (values < low) | (values > top)
        dc_ok = np.concatenate([c.dc_present for c in chunks]).T
        for name in ("dc_voltage_v", "dc_current_a", "dc_power_w"):
            low, top = limits.ranges[name]
            values = np.concatenate([getattr(c, name) for c in chunks]).transpose(1, 2, 0)
            out |= dc_ok & ((values < low) | (values > top)).any(axis=1)
    return np.asarray(out, dtype=np.bool_)


def daily_from_series(
    series: FleetSeries, fleet: Fleet | None = None
) -> tuple[FleetDaily, list[datetime]]:
    """Daily energy from the counters as the server holds them once everything arrived.

    Days are UTC days here (the district's nights span midnight UTC); a day's energy is the
    last counter of the day minus the last of the day before. A day whose counter steps back
    or jumps implausibly is unknown (NaN). Returns the daily data and each day's sunset + 30
    minutes, when the daily comparison would run.
    """
    steps = 86400 // series.step_s
    d, t = series.ac_energy_wh.shape
    n = t // steps
    energy = series.ac_energy_wh[:, : n * steps].reshape(d, n, steps)
    with np.errstate(all="ignore"):
        last = _last_valid(energy)
    # a day's closing counter must be read in the dark (after 21:00 UTC, after sunset all
    # year in Zwolle): a counter last read at noon would hand the afternoon to the next day
    closing = np.isfinite(energy[:, :, -3 * 3600 // series.step_s :]).any(axis=2)
    last = np.where(closing, last, np.nan)
    prev = np.full_like(last, np.nan)
    prev[:, 1:] = last[:, :-1]
    daily = last - prev
    limit = series.ac_rating_w[:, None] * 24.0
    daily = np.where((daily < 0) | (daily > limit), np.nan, daily)
    daily = daily_energy_wh(
        daily,
        _power_day_wh(series, n),
        counter_resolution_wh(series.ac_energy_wh),
    )
    days = series.times[: n * steps : steps].astype("datetime64[D]")
    run_at = [sunset_utc(day.astype(datetime)) + timedelta(minutes=30) for day in days]
    clear = None
    if fleet is not None:
        clear = clear_sky_daily_kwh_per_kwp(
            days, fleet.column("tilt_deg"), fleet.column("azimuth_deg")
        )
    groups = None
    if fleet is not None:
        groups = tuple(orientation_group(s.azimuth_deg, s.tilt_deg) for s in fleet.sites)
    out = FleetDaily(
        days=days,
        device_ids=series.device_ids,
        kwp=series.kwp,
        energy_wh=daily,
        clear_sky_kwh_per_kwp=clear,
        groups=groups,
    )
    return out, run_at


def _power_day_wh(series: FleetSeries, n_days: int) -> np.ndarray:
    """Energy per device and UTC day from mean power per bucket (:mod:`.daily_energy`)."""
    bucket_steps = max(1, BUCKET_S // series.step_s)
    steps = 86400 // series.step_s
    buckets = steps // bucket_steps
    d = series.ac_power_w.shape[0]
    power = series.ac_power_w[:, : n_days * steps].reshape(d, n_days, buckets, bucket_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bucket without readings: NaN
        mean_power = np.nanmean(power, axis=3)
    elevation = series.sun_elevation_deg[: n_days * steps].reshape(n_days, buckets, bucket_steps)
    daylight = elevation.mean(axis=2) >= DAYLIGHT_ELEVATION_DEG
    return energy_from_power_wh(mean_power, daylight, bucket_steps * series.step_s)


def _last_valid(values: np.ndarray) -> np.ndarray:
    valid = np.isfinite(values)
    idx = values.shape[2] - 1 - np.argmax(valid[:, :, ::-1], axis=2)
    out = np.take_along_axis(values, idx[:, :, None], axis=2)[:, :, 0]
    return np.where(valid.any(axis=2), out, np.nan)


@dataclass(frozen=True)
class InjectedFault:
    """A fault the bench adds on top of the simulator's (same fields as its ground truth)."""

    site_id: str
    device_id: str
    gateway_id: str
    type: str
    start: datetime
    end: datetime
    detail: dict[str, float] = field(default_factory=dict)


def inject_step_losses(
    series: FleetSeries,
    fleet: Fleet,
    rng: np.random.Generator,
    *,
    count: int,
    loss_range: tuple[float, float] = (0.3, 0.45),
    days_range: tuple[float, float] = (5.0, 30.0),
) -> tuple[FleetSeries, list[InjectedFault]]:
    """Cut ``count`` random inverters' output by 30-45 % from a random morning on.

    Stands for what the simulator does not inject as a step: a new shadow (a dormer, a grown
    tree), a failed optimiser, panels covered after building work. AC and DC power scale by
    ``1 - loss`` and the counter then advances by ``1 - loss`` of its increments, so counters
    stay consistent. Ground truth type ``underperformance``.

    Parameters
    ----------
    series
        What the server saw; a modified copy is returned.
    fleet
        The simulated fleet (site ids).
    rng
        Random source (from the seed).
    count
        How many losses to inject.
    loss_range
        Fraction of output lost, uniform in this range.
    days_range
        Duration, uniform in this range [days].
    """
    power = series.ac_power_w.copy()
    energy = series.ac_energy_wh.copy()
    dc = series.dc_power_w.copy()
    t = len(series.times)
    steps_per_day = 86400 // series.step_s
    injected: list[InjectedFault] = []
    if t < 2 * steps_per_day:
        raise ValueError("step losses need a run of at least two days")
    n_days = t // steps_per_day
    first = min(15, max(1, n_days // 2))  # leave the peer comparison days to learn
    # only roofs that are there: a site commissioned later has nothing to lose yet
    producing = np.flatnonzero(np.isfinite(energy[:, : first * steps_per_day]).any(axis=1))
    devices = rng.choice(producing, size=min(count, producing.size), replace=False)
    for d in devices:
        day = int(rng.integers(first, max(first + 1, n_days - 3)))
        i0 = day * steps_per_day + int(6 * 3600 // series.step_s)
        i1 = min(t, i0 + int(rng.uniform(*days_range) * steps_per_day))
        loss = float(rng.uniform(*loss_range))
        keep = 1.0 - loss
        power[d, i0:i1] *= keep
        dc[d, :, i0:i1] *= keep
        base = energy[d, i0 - 1] if np.isfinite(energy[d, i0 - 1]) else np.nanmax(energy[d, :i0])
        segment = energy[d, i0:]
        cut = np.where(np.arange(i0, t) < i1, keep, 1.0)
        increments = np.diff(np.concatenate([[base], segment]))
        filled_increments = np.nan_to_num(increments)  # a NaN reading does not break the chain
        new = base + np.cumsum(filled_increments * cut)
        # the inverter still counts in its own steps (a whole-kWh counter stays whole kWh)
        resolution = float(counter_resolution_wh(series.ac_energy_wh[d : d + 1])[0])
        new = np.floor(new / resolution) * resolution
        energy[d, i0:] = np.where(np.isfinite(segment), new, np.nan)
        site = fleet.sites[d]
        injected.append(
            InjectedFault(
                site.site_id,
                site.device_id,
                site.gateway_id,
                "underperformance",
                series.time_at(i0),
                series.time_at(i1 - 1),
                {"loss": round(loss, 3)},
            )
        )
    out = dataclasses.replace(series, ac_power_w=power, ac_energy_wh=energy, dc_power_w=dc)
    return out, injected


@dataclass
class FaultScore:
    """Outcome for one fault type."""

    fault_type: str
    faults: int = 0
    expected: int = 0
    detected: int = 0
    delays_min: list[float] = field(default_factory=list)
    daylight_delays_min: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.detected / self.expected if self.expected else float("nan")

    @property
    def median_delay_min(self) -> float:
        return float(np.median(self.delays_min)) if self.delays_min else float("nan")

    @property
    def within_goal(self) -> float:
        """Fraction of expected faults detected within the issue's time goal (NaN: no goal)."""
        if not self.expected:
            return float("nan")
        if self.fault_type in GOAL_DAYLIGHT_MIN:
            limit = GOAL_DAYLIGHT_MIN[self.fault_type]
            return sum(d <= limit for d in self.daylight_delays_min) / self.expected
        if self.fault_type in GOAL_WALL_MIN:
            limit = GOAL_WALL_MIN[self.fault_type]
            return sum(d <= limit for d in self.delays_min) / self.expected
        return float("nan")

    @property
    def median_daylight_delay_min(self) -> float:
        return (
            float(np.median(self.daylight_delays_min)) if self.daylight_delays_min else float("nan")
        )


@dataclass
class Score:
    """Outcome of one or more runs."""

    by_type: dict[str, FaultScore] = field(default_factory=dict)
    alerts: int = 0
    true_alerts: int = 0
    false_alerts: int = 0
    inverter_days: float = 0.0
    false_by_kind: dict[str, int] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else float("nan")

    @property
    def false_per_1000_inverter_days(self) -> float:
        return (
            1000.0 * self.false_alerts / self.inverter_days if self.inverter_days else float("nan")
        )

    @property
    def recall(self) -> float:
        expected = sum(s.expected for s in self.by_type.values())
        detected = sum(s.detected for s in self.by_type.values())
        return detected / expected if expected else float("nan")


def _last_active(finding: Finding) -> datetime:
    if finding.kind == FaultKind.UNDERPERFORMANCE:
        return finding.last + timedelta(days=1)
    return finding.last


def _degradation_detectable_from(fault: Fault | InjectedFault) -> datetime | None:
    """When a soiling ramp's loss first reaches the detectable level, or None if never."""
    loss = float(fault.detail.get("loss", 0.0))
    if loss < DETECTABLE_DEGRADATION_LOSS:
        return None
    ramp = 0.8 * (fault.end - fault.start)
    return fault.start + ramp * (DETECTABLE_DEGRADATION_LOSS / loss)


def expected_start(fault: Fault | InjectedFault) -> datetime | None:
    """From when a fault should be detectable (None: not expected to be detected)."""
    if fault.type == "degradation":
        return _degradation_detectable_from(fault)
    if fault.type == "comms_glitch" and fault.detail.get("kind") == "sentinel":
        return None  # the gateway flags and leaves the value out: nothing wrong to report
    return fault.start


def score(
    found: Iterable[tuple[Finding, datetime]],
    faults: Sequence[Fault | InjectedFault],
    *,
    sites: int,
    days: float,
    daylight: tuple[np.ndarray, np.ndarray],
    into: Score | None = None,
) -> Score:
    """Score findings (each with the time it would have been raised) against the ground truth.

    Parameters
    ----------
    found
        Pairs of (finding, raised_at): raised_at is when the scheduler would have opened the
        alert (the finding's first active step for recent detectors, the evening run for
        daily ones).
    faults
        The ground truth of the run.
    sites, days
        Size of the run, for false alerts per 1,000 inverter-days.
    daylight
        (epoch seconds of each step, sun elevation of each step [deg]) of the run.
    into
        Accumulate into this score (several seeds).
    """
    out = into or Score()
    out.inverter_days += sites * days
    epoch, elevation = daylight
    step_s = int(epoch[1] - epoch[0]) if len(epoch) > 1 else 300
    lit = np.concatenate([[0], np.cumsum(elevation > 0)])
    by_device: dict[str, list[Fault | InjectedFault]] = {}
    for f in faults:
        by_device.setdefault(f.device_id, []).append(f)
    items = list(found)
    for finding, _raised in items:
        out.alerts += 1
        end = (
            finding.last + timedelta(days=1)
            if finding.kind == FaultKind.UNDERPERFORMANCE
            else finding.last
        )
        match = any(
            f.start - GRACE <= end and finding.start <= f.end + GRACE
            for f in by_device.get(finding.device_id, [])
        )
        if match:
            out.true_alerts += 1
        else:
            out.false_alerts += 1
            out.false_by_kind[finding.kind.value] = out.false_by_kind.get(finding.kind.value, 0) + 1
            out.false.append(
                f"{finding.kind.value} {finding.device_id} {finding.start:%Y-%m-%d %H:%M}"
                f"..{finding.last:%Y-%m-%d %H:%M} {finding.evidence}"
            )
    for f in faults:
        s = out.by_type.setdefault(f.type, FaultScore(f.type))
        s.faults += 1
        start = expected_start(f)
        if start is None:
            continue
        s.expected += 1
        kinds = EXPECTED_KINDS[f.type]
        # an alert of a fitting kind raised during the fault (or already open at its start:
        # the open alert is updated with the new evidence)
        hits = [
            max(raised, f.start)
            for finding, raised in items
            if finding.device_id == f.device_id
            and finding.kind in kinds
            and raised <= f.end + GRACE
            and _last_active(finding) >= f.start
        ]
        if not hits:
            out.missed.append(
                f"{f.type} {f.device_id} {f.start:%Y-%m-%d %H:%M}..{f.end:%Y-%m-%d %H:%M} {f.detail}"
            )
            continue
        s.detected += 1
        first = min(hits)
        delay_s = max(0.0, (first - start).total_seconds())
        s.delays_min.append(delay_s / 60.0)
        i0 = int(np.clip((start.timestamp() - epoch[0]) // step_s, 0, len(epoch)))
        i1 = int(np.clip((first.timestamp() - epoch[0]) // step_s, 0, len(epoch)))
        s.daylight_delays_min.append(max(0, int(lit[i1] - lit[i0])) * step_s / 60.0)
    return out
