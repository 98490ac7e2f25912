"""Detector runs end to end: readings in a real InfluxDB, alerts in the store, once per slot."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from collector.devtools.services import free_port
from collector.faults.alerts import AlertService, AlertStatus
from collector.faults.influx_source import (
    DeviceSpec,
    devices_from_registry,
    load_daily,
    load_series,
)
from collector.faults.integrity import detect_implausible_power
from collector.faults.model import STATE_ORDER, FaultKind, event_names
from collector.faults.notify import ChannelPolicy, Notifier, WebhookChannel
from collector.faults.scheduling import FaultRunner, JobLock, build_scheduler
from collector.registry.fleet_file import load_fleet_file
from collector.store.alert_models import JobRunRow
from collector.store.db import session_factory
from collector.store.testing import temporary_database
from collector.timeseries.influx import InfluxClient, Point
from collector.timeseries.measurements import reading_points, rejected_point
from zonnewijk_wire import DcInput, InverterState, Reading

REPO = Path(__file__).resolve().parents[3]


def devices_of(fleet: Any) -> list[DeviceSpec]:
    return [
        DeviceSpec(
            device_id=f"inv{i:02d}",
            gateway_id=f"gw{i:02d}",
            kwp=float(fleet.kwp[i]),
            ac_rating_w=float(fleet.ac_rating_w[i]),
            mppt_count=2,
            tilt_deg=site.tilt_deg,
            azimuth_deg=site.azimuth_deg,
            installed_on=date(2024, 1, 1),
        )
        for i, site in enumerate(fleet.sites)
    ]


def write_fleet(
    influx: InfluxClient, fleet: Any, steps: range, skip: set[int] = frozenset()
) -> int:
    """Write the crafted fleet's readings (the collector's schema) for these time steps."""
    points: list[Point] = []
    for i in range(len(fleet.sites)):
        if i in skip:
            continue
        for j in steps:
            if fleet.state[i, j] < 0:
                continue
            ts = fleet.times[j].to_pydatetime()
            reading = Reading(
                device_id=f"inv{i:02d}",
                ts=ts,
                ac_power_w=float(fleet.ac_power_w[i, j]),
                ac_energy_wh=float(fleet.ac_energy_wh[i, j]),
                ac_voltage_v=230.0 + float(np.sin(j * 0.7 + i)),
                state=STATE_ORDER[int(fleet.state[i, j])],
                events=event_names(int(fleet.event_bits[i, j])),
                dc=tuple(
                    DcInput(mppt=m + 1, dc_power_w=float(fleet.dc_power_w[i, m, j]))
                    for m in range(2)
                ),
            )
            points.extend(reading_points(f"gw{i:02d}", reading))
            points.append(Point("gateway_seen", {"gateway": f"gw{i:02d}"}, {"readings": 1}, ts))
    return influx.write_points(points)


@pytest.fixture
def day(make_fleet: Any) -> Any:
    return make_fleet(start=date(2026, 6, 10), days=1)


@pytest.fixture
def sessions() -> Iterator[Any]:
    with temporary_database("sqlite") as engine:
        yield session_factory(engine)


def test_load_series_reads_back_what_the_collector_stored(influx: InfluxClient, day: Any) -> None:
    a, b = day.index(0, 9.0), day.index(0, 12.0)
    day.state[3, a + 10 :] = list(InverterState).index(InverterState.FAULT)
    day.event_bits[3, a + 10 :] = 1  # ground_fault
    write_fleet(influx, day, range(a, b))
    devices = devices_of(day)
    series = load_series(influx, devices, end=day.times[b].to_pydatetime(), window_s=3 * 3600)
    assert series.ac_power_w.shape == (14, 36)
    np.testing.assert_allclose(series.ac_power_w, day.ac_power_w[:, a:b], rtol=1e-9)
    np.testing.assert_allclose(series.ac_energy_wh, day.ac_energy_wh[:, a:b], rtol=1e-12)
    np.testing.assert_allclose(series.dc_power_w, day.dc_power_w[:, :, a:b], rtol=1e-9)
    assert (series.state == day.state[:, a:b]).all()
    assert series.event_bits[3, -1] == 1 and series.event_bits[2, -1] == 0
    assert series.gateway_seen.all() and series.expected is not None and series.expected.all()


def test_runner_opens_resolves_and_notifies_once_across_instances(
    influx: InfluxClient, day: Any, sessions: Any
) -> None:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        a, b = day.index(0, 8.0), day.index(0, 12.0)
        fault = list(InverterState).index(InverterState.FAULT)
        day.state[3, a + 24 :] = fault
        day.ac_power_w[3, a + 24 :] = 0.0
        day.recount()
        write_fleet(influx, day, range(a, b), skip={5})  # inverter 5 silent ...
        # ... behind a gateway that is online
        influx.write_points(
            [
                Point(
                    "gateway_status",
                    {"gateway": "gw05"},
                    {"state": "online"},
                    day.times[0].to_pydatetime(),
                )
            ]
        )
        devices = devices_of(day)
        url = f"http://127.0.0.1:{server.server_address[1]}/alerts"

        def runner(holder: str) -> FaultRunner:
            return FaultRunner(
                influx=influx,
                devices=lambda: devices,
                alerts=AlertService(sessions),
                notifier=Notifier(sessions, [(WebhookChannel(url=url), ChannelPolicy())]),
                lock=JobLock(sessions, holder=holder),
                data_delay_s=0,
            )

        now = day.times[b].to_pydatetime()
        first, second = runner("server-a"), runner("server-b")
        report = first.run_recent(now)
        assert report.ran
        assert second.run_recent(now).ran is False  # same slot: the other instance skips
        live = {(x.device_id, x.kind) for x in AlertService(sessions).list(status=AlertStatus.OPEN)}
        assert live == {("inv03", FaultKind.FAULT_STATE), ("inv05", FaultKind.DEVICE_OFFLINE)}
        assert sorted((r["event"], r["alert"]["device_id"]) for r in received) == [
            ("opened", "inv03"),
            ("opened", "inv05"),
        ]
        # the next slot, after the inverters came back: both resolve
        day.state[3, b:] = list(InverterState).index(InverterState.PRODUCING)
        day.ac_power_w[3, b:] = day.ac_power_w[2, b:]
        day.recount()
        write_fleet(influx, day, range(b, b + 12))
        later = day.times[b + 12].to_pydatetime()
        assert second.run_recent(later).ran
        assert AlertService(sessions).list(status=AlertStatus.OPEN) == []
        assert [r["event"] for r in received[2:]] == ["resolved", "resolved"]
    finally:
        server.shutdown()
        server.server_close()


def test_load_daily_takes_amsterdam_days_from_the_counters(
    influx: InfluxClient, make_fleet: Any
) -> None:
    fleet = make_fleet(start=date(2026, 5, 1), days=12)
    half_hour = range(0, len(fleet.times), 6)
    write_fleet(influx, fleet, half_hour, skip=set())
    devices = devices_of(fleet)
    daily = load_daily(influx, devices, last_day=date(2026, 5, 11), days=10)
    assert daily.days[0] == np.datetime64("2026-05-02") and len(daily.days) == 10
    # the crafted nights are dark: a UTC day's energy equals the Amsterdam day's
    per_day = fleet.daily().energy_wh[:, 1:11]
    np.testing.assert_allclose(daily.energy_wh, per_day, rtol=1e-6)
    assert daily.clear_sky_kwh_per_kwp is not None and daily.groups is not None
    assert daily.groups[12] == "east"


@pytest.mark.slow
def test_daily_run_finds_an_underperformer(
    influx: InfluxClient, make_fleet: Any, sessions: Any
) -> None:
    k = np.random.default_rng(5).choice([1.0, 0.6, 0.3], size=30)
    fleet = make_fleet(start=date(2026, 5, 1), days=30, clearness=k)
    cut = fleet.index(26, 0.0)
    fleet.ac_power_w[4, cut:] *= 0.6
    fleet.recount()
    write_fleet(influx, fleet, range(0, len(fleet.times), 6))
    runner = FaultRunner(
        influx=influx,
        devices=lambda: devices_of(fleet),
        alerts=AlertService(sessions),
        notifier=None,
        lock=JobLock(sessions),
    )
    report = runner.run_daily(date(2026, 5, 29), datetime(2026, 5, 29, 21, 0, tzinfo=UTC))
    assert report.ran
    (alert,) = AlertService(sessions).list(status=AlertStatus.OPEN)
    assert alert.device_id == "inv04" and alert.kind == FaultKind.UNDERPERFORMANCE
    assert alert.evidence["relative"] == pytest.approx(0.6, abs=0.08)
    assert runner.run_daily(date(2026, 5, 29)).ran is False
    # before sunset nothing runs; after it, the day's slot is taken once
    assert runner.maybe_run_daily(datetime(2026, 5, 30, 12, 0, tzinfo=UTC)) is None


def test_devices_from_the_example_fleet_file() -> None:
    devices = devices_from_registry(load_fleet_file(REPO / "config" / "fleet.small.yaml"))
    assert devices and all(d.kwp > 0 and d.ac_rating_w > 0 for d in devices)
    assert all(d.gateway_id for d in devices)


def test_scheduler_has_both_jobs(sessions: Any, influx: InfluxClient) -> None:
    runner = FaultRunner(
        influx=influx,
        devices=lambda: [],
        alerts=AlertService(sessions),
        notifier=None,
        lock=JobLock(sessions),
    )
    scheduler = build_scheduler(runner, blocking=False)
    assert sorted(job.id for job in scheduler.get_jobs()) == ["faults-daily", "faults-recent"]


def test_scheduler_runs_the_recent_check(sessions: Any, influx: InfluxClient) -> None:
    """APScheduler fires the check at once; the run is recorded in job_runs."""
    now = datetime.now(UTC).replace(microsecond=0)
    devices = [
        DeviceSpec(
            device_id=f"live{i}",
            gateway_id=f"gwlive{i}",
            kwp=4.0,
            ac_rating_w=3600.0,
            mppt_count=1,
            tilt_deg=35.0,
            azimuth_deg=180.0,
            installed_on=date(2024, 1, 1),
        )
        for i in range(2)
    ]
    points: list[Point] = []
    for minutes in range(0, 180, 5):
        ts = now - timedelta(minutes=minutes)
        for i in range(2):
            reading = Reading(
                device_id=f"live{i}",
                ts=ts,
                ac_power_w=0.0,
                ac_energy_wh=1000.0,
                state=InverterState.SLEEPING,
            )
            points.extend(reading_points(f"gwlive{i}", reading))
    influx.write_points(points)
    runner = FaultRunner(
        influx=influx,
        devices=lambda: devices,
        alerts=AlertService(sessions),
        notifier=None,
        lock=JobLock(sessions, holder="scheduled"),
    )
    scheduler = build_scheduler(runner, blocking=False)
    scheduler.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        rows: list[JobRunRow] = []
        while datetime.now(UTC) < deadline:
            with sessions() as session:
                rows = list(
                    session.scalars(select(JobRunRow).where(JobRunRow.job == "faults-recent"))
                )
            if rows and rows[0].outcome != "running":
                break
            threading.Event().wait(0.2)
    finally:
        scheduler.shutdown(wait=True)
    assert rows and rows[0].outcome == "done" and rows[0].holder == "scheduled"
    assert AlertService(sessions).list() == []  # sleeping but reporting: nothing wrong


def test_load_daily_judges_a_whole_kwh_counter_by_its_power(
    influx: InfluxClient, make_fleet: Any
) -> None:
    """A Sungrow-like counter in whole kWh moves 0 or 1 kWh on a winter day: the day's energy
    comes from the mean power per half hour instead (collector.faults.daily_energy)."""
    fleet = make_fleet(start=date(2026, 1, 5), days=12, clearness=np.full(12, 0.08))
    truth = fleet.daily().energy_wh[:, 1:11]
    fleet.ac_energy_wh[0] = np.floor(fleet.ac_energy_wh[0] / 1000.0) * 1000.0
    write_fleet(influx, fleet, range(len(fleet.times)))
    daily = load_daily(influx, devices_of(fleet), last_day=date(2026, 1, 15), days=10)
    closing = fleet.ac_energy_wh[0, [fleet.index(d, 24.0) - 1 for d in range(1, 12)]]
    counter_days = np.diff(closing)
    assert np.max(np.abs(counter_days - truth[0]) / truth[0]) > 0.3  # the counter alone misleads
    np.testing.assert_allclose(daily.energy_wh[0], truth[0], rtol=0.03)
    np.testing.assert_allclose(daily.energy_wh[1:], truth[1:], rtol=1e-6)  # fine counters as before


def test_a_refused_reading_reaches_the_implausible_value_detector(
    influx: InfluxClient, day: Any
) -> None:
    """The collector refuses a reading with an impossible value and stores the refusal;
    load_series hands it to detect_implausible_power as ``rejected``."""
    a, b = day.index(0, 9.0), day.index(0, 12.0)
    write_fleet(influx, day, range(a, b), skip={5})
    glitch = a + 20
    at = day.times[glitch].to_pydatetime()
    influx.write_points([rejected_point("gw05", "inv05", "out_of_range_ac_voltage_v", at)])
    series = load_series(influx, devices_of(day), end=day.times[b].to_pydatetime())
    assert series.rejected is not None
    assert series.rejected[5, glitch - a] and series.rejected.sum() == 1
    assert series.gateway_seen[5, glitch - a]
    active = detect_implausible_power(series).active
    assert active[5, glitch - a] and not active[:5].any() and not active[6:].any()
