"""A few days of plausible readings for the devices of a fleet file, for tests and pictures.

Not the fleet simulator (collector/simulator/, pvlib physics): a compact stand-in so the
dashboard tests need nothing but a fleet file and an InfluxDB. Readings go through the
collector's own mapping (:func:`collector.timeseries.measurements.reading_points`), so the points have exactly
the schema the collector writes. Deterministic for a seed. It includes what the panels must
show: night (sleeping, power 0, counter held), a fault episode with event bits, a gap, and
flagged readings (sentinel, counter jump, replayed from a spool), and a smart meter (P1) in
every home for the self-consumption panels.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.dashboards.meter_sample import MeterSampler
from collector.ingest.process import process_message
from collector.registry.fleet_file import Device, Fleet
from collector.timeseries.influx import InfluxClient, Point
from collector.timeseries.measurements import GATEWAY_SEEN_MEASUREMENT, reading_points
from zonnewijk_wire import (
    DcInput,
    GatewayStatus,
    InverterState,
    Reading,
    ReadingFlag,
    encode,
    status_topic,
)


@dataclass(frozen=True)
class SampleOptions:
    """What to generate."""

    end: datetime
    days: float = 3.0
    interval_s: int = 300
    seed: int = 7
    #: Device in fault (state fault, ground-fault event) from 90 minutes before the end.
    fault_device: str | None = None
    #: Device whose readings of two hours, ending three hours before the end, were replayed.
    gap_device: str | None = None


def _sun_fraction(moment: datetime, azimuth_deg: float) -> float:
    """Clear-sky shape 0-1 for Zwolle: day length and height follow the season."""
    doy = moment.timetuple().tm_yday
    season = math.sin(2 * math.pi * (doy - 80) / 365)
    day_hours = 12.2 + 4.4 * season
    noon_utc = 11.6 + (azimuth_deg - 180) / 45  # east roofs peak earlier
    hour = moment.hour + moment.minute / 60 + moment.second / 3600
    x = (hour - (noon_utc - day_hours / 2)) / day_hours
    if not 0 < x < 1:
        return 0.0
    height = 0.55 + 0.45 * season
    return float(height * math.sin(math.pi * x) ** 1.4)


def _readings(
    fleet: Fleet, device: Device, options: SampleOptions, rng: random.Random
) -> Iterator[Reading]:
    site = fleet.site(device.site_id)
    start = options.end - timedelta(days=options.days)
    steps = int(options.days * 86400 // options.interval_s)
    counter_wh = 1_000_000.0 + rng.uniform(0, 2_000_000)
    clouds: dict[int, float] = {}
    # The fault episode covers the end of the window, so "now" shows an inverter in fault.
    fault_from = options.end - timedelta(minutes=90)
    gap_from = options.end - timedelta(hours=5)
    mppts = max(1, min(device.mppt_count or 1, 3))
    for i in range(steps + 1):
        ts = (start + timedelta(seconds=i * options.interval_s)).replace(microsecond=0)
        replayed = device.device_id == options.gap_device and gap_from <= ts < gap_from + timedelta(
            hours=2
        )
        day_key = ts.toordinal()
        cloud = clouds.setdefault(day_key, rng.uniform(0.35, 1.0))
        sun = _sun_fraction(ts, float(site.azimuth_deg)) * cloud * rng.uniform(0.9, 1.0)
        in_fault = (
            device.device_id == options.fault_device
            and fault_from <= ts < fault_from + timedelta(hours=2)
        )
        power_w = min(float(device.kwp) * 1000 * 0.85 * sun, float(device.ac_rating_w))
        if in_fault:
            power_w = 0.0
        state = (
            InverterState.FAULT
            if in_fault
            else InverterState.PRODUCING
            if power_w > 5
            else InverterState.SLEEPING
        )
        counter_wh += power_w * options.interval_s / 3600
        flags: list[ReadingFlag] = []
        if replayed:
            flags.append(ReadingFlag.REPLAYED)
        temp_c: float | None = 12 + 30 * sun + rng.uniform(-1, 1)
        if rng.random() < 0.01:
            flags.append(ReadingFlag.SENTINEL)
            temp_c = None
        if rng.random() < 0.003:
            flags.append(ReadingFlag.COUNTER_JUMP)
        # Every flag at least once, early in the window, so each reason has a series.
        for k, flag in enumerate(ReadingFlag):
            if i == 5 + 11 * k and flag not in flags:
                flags.append(flag)
        dc_power = power_w / 0.965 if power_w else 0.0
        dc = tuple(
            DcInput(
                mppt=m + 1,
                dc_voltage_v=round((340 + 30 * sun) if dc_power else 12.0, 1),
                dc_current_a=round(dc_power / mppts / (340 + 30 * sun), 3),
                dc_power_w=round(dc_power / mppts, 1),
            )
            for m in range(mppts)
        )
        yield Reading(
            device_id=device.device_id,
            ts=ts,
            ac_power_w=round(power_w, 1),
            ac_energy_wh=round(counter_wh, 1),
            ac_voltage_v=round(230 + rng.uniform(-3, 5), 1),
            grid_frequency_hz=round(50 + rng.uniform(-0.05, 0.05), 3),
            cabinet_temp_c=None if temp_c is None else round(temp_c, 1),
            dc=dc,
            state=state,
            vendor_state=7 if in_fault else 4 if state is InverterState.PRODUCING else 2,
            events=("ground_fault",) if in_fault else (),
            vendor_events=1 if in_fault else 0,
            flags=tuple(flags),
        )


def sample_points(fleet: Fleet, options: SampleOptions) -> Iterator[Point]:
    """Points of every device in service at the end of the window."""
    rng = random.Random(options.seed)
    day = options.end.astimezone(UTC).date()
    for device in fleet.devices:
        if device.removed_on is not None and device.removed_on < day:
            continue
        for reading in _readings(fleet, device, options, rng):
            yield from reading_points(fleet.gateway_of(device), reading)


def gateway_points(fleet: Fleet, options: SampleOptions) -> Iterator[Point]:
    """What the collector stores about each gateway: ``gateway_seen`` per hourly batch and the
    gateway's status messages every 15 minutes (spool depth rising while its link is down).

    Status points come from the collector's own decoding (:func:`collector.ingest.process.process_message`).
    """
    day = options.end.astimezone(UTC).date()
    start = options.end - timedelta(days=options.days)
    gap_gateway = None
    if options.gap_device is not None:
        gap_gateway = fleet.gateway_of(fleet.device(options.gap_device))
    gap_from = options.end - timedelta(hours=5)
    gap_to = gap_from + timedelta(hours=2)
    per_hour = 3600 // options.interval_s
    gateways: dict[str, int] = {}
    for device in fleet.devices:
        if device.removed_on is None or device.removed_on >= day:
            gw = fleet.gateway_of(device)
            gateways[gw] = gateways.get(gw, 0) + 1
    for gw, devices in sorted(gateways.items()):
        moment = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        while moment <= options.end:
            in_gap = gw == gap_gateway and gap_from < moment <= gap_to
            if not in_gap:
                backlog = 2 if (gw == gap_gateway and moment == gap_to + timedelta(hours=1)) else 0
                yield Point(
                    GATEWAY_SEEN_MEASUREMENT,
                    {"gateway": gw},
                    {
                        "readings": devices * per_hour * (1 + backlog),
                        "newest_reading_ms": int(moment.timestamp() * 1000),
                    },
                    moment + timedelta(seconds=30),
                )
            for quarter in range(4):
                ts = moment - timedelta(minutes=15 * quarter)
                depth = 0
                if gw == gap_gateway and gap_from < ts <= gap_to:
                    depth = int((ts - gap_from).total_seconds() // options.interval_s) * devices
                status = GatewayStatus(
                    gateway_id=gw,
                    state="online",
                    ts=ts,
                    firmware_version="0.1.0",
                    spool_depth=depth,
                    spool_dropped=0,
                    last_poll="ok",
                )
                yield from process_message(status_topic(gw), encode(status), now=ts).points
            moment += timedelta(hours=1)


def meter_sample_points(fleet: Fleet, options: SampleOptions) -> Iterator[Point]:
    """A P1 meter in every home, its counters moving with the household's load less the
    roof's power of :func:`sample_points` (the same readings: same seed)."""
    rng = random.Random(options.seed)
    day = options.end.astimezone(UTC).date()
    production_w: dict[str, dict[datetime, float]] = {}
    for device in fleet.devices:
        if device.removed_on is not None and device.removed_on < day:
            continue
        per_ts = production_w.setdefault(fleet.gateway_of(device), {})
        for reading in _readings(fleet, device, options, rng):
            per_ts[reading.ts] = per_ts.get(reading.ts, 0.0) + (reading.ac_power_w or 0.0)
    sampler = MeterSampler(production_w, seed=options.seed)
    for gateway_id, per_ts in sorted(production_w.items()):
        for ts, power_w in sorted(per_ts.items()):
            yield from sampler.points(gateway_id, ts, power_w, options.interval_s)


def write_sample(influx: InfluxClient, fleet: Fleet, options: SampleOptions) -> int:
    """Write the sample to InfluxDB; returns the number of points."""
    written = influx.write_points(sample_points(fleet, options))
    written += influx.write_points(meter_sample_points(fleet, options))
    return written + influx.write_points(gateway_points(fleet, options))
