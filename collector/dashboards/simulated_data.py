"""A database filled the way production fills it, from the fleet simulator.

:func:`fill_simulated` runs ``zonnewijk db init``'s schema (collector.timeseries.schema), simulates the
fleet with its own faults (collector/simulator/, at ten times the usual fault rates, plus one
inverter in fault state since the morning of the last day), stores the readings through the
collector's point mapping (collector.timeseries.measurements), derives what the collector stores about each
gateway (``gateway_seen``, ``gateway_status`` through collector.ingest.pipeline's decoding) from when the
simulated gateways sent each reading, backfills the rollups and writes ``daily_yield``.
Used by the pictures, the dashboard benchmark and the panel-query test on simulated data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from collector.timeseries.influx import InfluxClient, Point

#: The instant the pictures show: a summer noon.
DEMO_NOW = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SimulatedFleet:
    """What :func:`fill_simulated` wrote: the simulator's fleet and its registry view."""

    fleet: Any
    registry: Any
    start: datetime
    now: datetime


def fill_simulated(
    influx: InfluxClient,
    *,
    sites: int = 12,
    days: int = 35,
    seed: int = 3,
    now: datetime = DEMO_NOW,
    interval_s: int = 300,
    progress: bool = False,
) -> SimulatedFleet:
    """Fill a database the way production fills it: schema (``zonnewijk db init``), readings of
    the simulated fleet with its faults (through the collector's point mapping), the
    collector's gateway points, rollups and ``daily_yield``."""
    from collector.dashboards.daily_self_consumption import (
        write_days as write_self_consumption_days,
    )
    from collector.dashboards.daily_yield import local_days, today_local, write_daily_yields
    from collector.dashboards.meter_sample import MeterSampler
    from collector.simulator.engine import Simulation
    from collector.simulator.fleet import generate_fleet
    from collector.simulator.fleet_export import to_registry_fleet
    from collector.simulator.readings import chunk_reading
    from collector.timeseries.measurements import reading_points
    from collector.timeseries.schema import backfill_rollups, init_database

    fleet = generate_fleet(n_sites=sites, seed=seed)
    start = (now - timedelta(days=days)).replace(hour=0, minute=0)
    init_database(influx)
    faults = _demo_faults(fleet, start, now)
    sent: dict[str, list[tuple[int, int]]] = {site.gateway_id: [] for site in fleet.sites}
    meters = MeterSampler(sent, seed=seed)
    simulation = Simulation(fleet, start, now + timedelta(minutes=5), interval_s, faults)
    written = 0
    for chunk in simulation.chunks():
        points: list[Point] = []
        for t in range(len(chunk.epoch_s)):
            for s, site in enumerate(fleet.sites):
                if chunk.present[t, s]:
                    reading = chunk_reading(chunk, t, s, site.device_id)
                    points.extend(reading_points(site.gateway_id, reading))
                    points.extend(
                        meters.points(
                            site.gateway_id, reading.ts, reading.ac_power_w or 0.0, interval_s
                        )
                    )
                    sent[site.gateway_id].append(
                        (int(chunk.epoch_s[t]), int(chunk.sent_at_s[t, s]))
                    )
            if len(points) >= 50_000:  # bounded memory for long runs
                written += influx.write_points(points)
                points = []
        written += influx.write_points(points)
        if progress:
            print(f"  {written} points written, up to {_day(chunk.epoch_s[-1])}", flush=True)
    influx.write_points(_gateway_points(sent, start, now))
    backfill_rollups(influx, start, now + timedelta(minutes=5))
    registry = to_registry_fleet(fleet)
    today = today_local(now)
    write_daily_yields(influx, registry, local_days(today - timedelta(days=days - 1), today))
    write_self_consumption_days(
        influx, registry, local_days(today - timedelta(days=days - 1), today)
    )
    return SimulatedFleet(fleet, registry, start, now)


def _day(epoch_s: Any) -> str:
    return f"{datetime.fromtimestamp(int(epoch_s), tz=UTC):%Y-%m-%d}"


def _gateway_points(
    sent: Mapping[str, Sequence[tuple[int, int]]], start: datetime, now: datetime
) -> list[Point]:
    """What the collector stores about gateways, derived from when the simulator's gateways
    sent each reading: ``gateway_seen`` per batch, and a status with the spool depth (readings
    measured but not yet sent) every 15 minutes, through the collector's own decoding."""
    from collector.ingest.process import process_message
    from collector.timeseries.measurements import GATEWAY_SEEN_MEASUREMENT
    from zonnewijk_wire import GatewayStatus, encode, status_topic

    out: list[Point] = []
    for gateway, pairs in sent.items():
        batches: dict[int, list[int]] = {}
        for epoch, sent_at in pairs:
            batches.setdefault(sent_at, []).append(epoch)
        for sent_at, epochs in sorted(batches.items()):
            if sent_at > now.timestamp():
                continue
            out.append(
                Point(
                    GATEWAY_SEEN_MEASUREMENT,
                    {"gateway": gateway},
                    {"readings": len(epochs), "newest_reading_ms": max(epochs) * 1000},
                    datetime.fromtimestamp(sent_at, tz=UTC),
                )
            )
        # Waiting at t: measured by t minus sent by t (every reading is sent after it is measured).
        measured = np.sort(np.array([e for e, _s in pairs], dtype=np.int64))
        delivered = np.sort(np.array([s for _e, s in pairs], dtype=np.int64))
        moment = start
        while moment <= now:
            t = int(moment.timestamp())
            depth = int(
                np.searchsorted(measured, t, side="right")
                - np.searchsorted(delivered, t, side="right")
            )
            status = GatewayStatus(
                gateway_id=gateway, state="online", ts=moment, spool_depth=depth, spool_dropped=0
            )
            out.extend(process_message(status_topic(gateway), encode(status), now=moment).points)
            moment += timedelta(minutes=15)
    return out


def _demo_faults(fleet: Any, start: datetime, now: datetime) -> Any:
    """The simulator's own faults (at ten times the usual rates, so a month shows some), plus
    one inverter in fault state since the morning of the pictured day."""
    from collector.simulator.faults import (
        DEFAULT_RATES_PER_SITE_YEAR,
        Fault,
        FaultSchedule,
        generate_faults,
    )

    rates = {kind: rate * 10 for kind, rate in DEFAULT_RATES_PER_SITE_YEAR.items()}
    drawn = generate_faults(fleet, start, now, rates, interval_s=300)
    site = fleet.sites[-1]
    fault = Fault(
        site.site_id,
        site.device_id,
        site.gateway_id,
        "fault_state",
        now.replace(hour=8, minute=5),
        now + timedelta(hours=6),
        {"event": "ground_fault", "evt1_bit": 0},
    )
    return FaultSchedule((*drawn.faults, fault))
