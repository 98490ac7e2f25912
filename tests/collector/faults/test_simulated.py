"""The server path and the bench path agree: simulated readings stored in InfluxDB come back
as the arrays the bench feeds the detectors, and a simulated fault opens its alert."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from collector.faults.alerts import AlertService, AlertStatus
from collector.faults.evaluation import series_from_chunks
from collector.faults.influx_source import devices_from_registry, load_series
from collector.faults.model import FaultKind
from collector.faults.scheduling import FaultRunner, JobLock
from collector.simulator.engine import Simulation, window
from collector.simulator.faults import Fault, FaultSchedule
from collector.simulator.fleet import generate_fleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.simulator.readings import chunk_reading
from collector.store.db import session_factory
from collector.store.testing import temporary_database
from collector.timeseries.influx import InfluxClient, Point
from collector.timeseries.measurements import reading_points

START = date(2026, 6, 1)


@pytest.fixture(scope="module")
def simulated() -> tuple[Any, list[Any], Fault]:
    fleet = generate_fleet(10, seed=21)
    start, end = window(START, 1)
    site = fleet.sites[4]
    fault = Fault(
        site.site_id,
        site.device_id,
        site.gateway_id,
        "fault_state",
        datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
        datetime(2026, 6, 1, 15, 0, tzinfo=UTC),
        {"event": "ground_fault", "evt1_bit": 0},
    )
    sim = Simulation(fleet, start, end, 300, FaultSchedule((fault,)), batch_s=300)
    return fleet, list(sim.chunks()), fault


@pytest.fixture
def stored(influx: InfluxClient, simulated: tuple[Any, list[Any], Fault]) -> Iterator[InfluxClient]:
    fleet, chunks, _ = simulated
    points: list[Point] = []
    for chunk in chunks:
        for t in range(len(chunk.epoch_s)):
            for s, site in enumerate(fleet.sites):
                if not chunk.present[t, s]:
                    continue
                reading = chunk_reading(chunk, t, s, site.device_id)
                points.extend(reading_points(site.gateway_id, reading))
                points.append(
                    Point("gateway_seen", {"gateway": site.gateway_id}, {"readings": 1}, reading.ts)
                )
    influx.write_points(points)
    yield influx


def test_influx_path_gives_the_bench_arrays(
    stored: InfluxClient, simulated: tuple[Any, list[Any], Fault]
) -> None:
    fleet, chunks, _ = simulated
    bench = series_from_chunks(fleet, chunks, 300)
    devices = devices_from_registry(to_registry_fleet(fleet))
    end = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)
    server = load_series(stored, devices, end=end, window_s=8 * 3600)
    j0 = int((np.datetime64("2026-06-01T08:00") - bench.times[0]) / np.timedelta64(300, "s"))
    sl = slice(j0, j0 + 96)
    assert server.device_ids == bench.device_ids
    np.testing.assert_allclose(server.ac_power_w, bench.ac_power_w[:, sl], equal_nan=True)
    np.testing.assert_allclose(server.ac_energy_wh, bench.ac_energy_wh[:, sl], equal_nan=True)
    np.testing.assert_array_equal(server.state, bench.state[:, sl])
    np.testing.assert_array_equal(server.event_bits, bench.event_bits[:, sl])
    np.testing.assert_allclose(
        server.dc_power_w, bench.dc_power_w[:, : server.dc_power_w.shape[1], sl], equal_nan=True
    )
    assert bench.ac_voltage_v is not None
    np.testing.assert_allclose(server.ac_voltage_v, bench.ac_voltage_v[:, sl], equal_nan=True)


def test_a_simulated_fault_opens_and_resolves_its_alert(
    stored: InfluxClient, simulated: tuple[Any, list[Any], Fault]
) -> None:
    fleet, _, fault = simulated
    devices = devices_from_registry(to_registry_fleet(fleet))
    with temporary_database("sqlite") as engine:
        sessions = session_factory(engine)
        runner = FaultRunner(
            influx=stored,
            devices=lambda: devices,
            alerts=AlertService(sessions),
            notifier=None,
            lock=JobLock(sessions),
        )
        t = fault.start
        opened_at = None
        while t < fault.end + timedelta(hours=2):
            runner.run_recent(t)
            live = AlertService(sessions).list(status=AlertStatus.OPEN)
            if live and opened_at is None:
                opened_at = t
            t += timedelta(minutes=15)
        alerts = AlertService(sessions).list()
        assert [(a.device_id, a.kind) for a in alerts] == [(fault.device_id, FaultKind.FAULT_STATE)]
        assert opened_at is not None and opened_at - fault.start <= timedelta(minutes=30)
        assert alerts[0].status == AlertStatus.RESOLVED
        assert alerts[0].evidence["event_bits_at_start"] == 1.0  # ground fault
