"""The gateway service end to end: simulated inverters -> gateway -> Mosquitto -> collector ->
InfluxDB, plus systemd notification and the ``spool`` command."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.devtools.services import Mosquitto, free_port
from collector.ingest.pipeline import Collector, MqttConnection
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.timeseries.influx import InfluxClient
from gateway_firmware.clock import FakeClock
from gateway_firmware.config import GatewayConfig, parse_config
from gateway_firmware.service import GatewayService, SystemdNotifier, main
from gateway_firmware.spool import Spool
from zonnewijk_wire import Reading


def gateway_config(
    tmp_path: Path, broker_port: int, devices: list[dict[str, Any]], **extra: Any
) -> GatewayConfig:
    data: dict[str, Any] = {
        "gateway_id": "gw-svc",
        "mqtt": {
            "host": "127.0.0.1",
            "port": broker_port,
            "client_id": f"gw-svc-{uuid.uuid4().hex[:6]}",
            "reconnect_min_s": 1,
            "reconnect_max_s": 1,
        },
        "spool": {"path": str(tmp_path / "spool.sqlite3")},
        "devices": devices,
        **extra,
    }
    return parse_config(data)


@pytest.fixture
def inverters() -> Iterator[SimulatedInverters]:
    with SimulatedInverters({1: layout_for("sunspec-int"), 2: layout_for("sunspec-float")}) as sim:
        sim.set_values(1, ac_power_w=2345.0, ac_energy_wh=1_234_000.0, ac_voltage_v=231.0)
        sim.set_values(2, ac_power_w=1500.5, ac_energy_wh=987_650.0, grid_frequency_hz=49.98)
        yield sim


@pytest.fixture
def collector(mosquitto: Mosquitto, influx: InfluxClient) -> Iterator[Collector]:
    conn = MqttConnection(
        host="127.0.0.1", port=mosquitto.port, client_id=f"col-{uuid.uuid4().hex[:6]}"
    )
    with Collector(mqtt_connection=conn, influx=influx) as col:
        yield col


def run_in_thread(service: GatewayService) -> threading.Thread:
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    return thread


def wait_for(predicate: Any, timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def stored(influx: InfluxClient) -> list[dict[str, Any]]:
    return influx.query_records('SELECT * FROM "inverter" WHERE "gateway" = \'gw-svc\'')


def test_two_inverters_on_one_bus_reach_influxdb_with_exact_values(
    tmp_path: Path,
    inverters: SimulatedInverters,
    mosquitto: Mosquitto,
    collector: Collector,
    influx: InfluxClient,
) -> None:
    devices = [
        {"device_id": "inv-a", "host": "127.0.0.1", "port": inverters.port, "unit": 1,
         "interval_s": 1},
        {"device_id": "inv-b", "host": "127.0.0.1", "port": inverters.port, "unit": 2,
         "interval_s": 1},
    ]  # fmt: skip
    service = GatewayService(gateway_config(tmp_path, mosquitto.port, devices))
    thread = run_in_thread(service)
    try:
        wait_for(lambda: len({r["device"] for r in stored(influx)}) == 2, what="both devices")
        started = datetime.now(UTC)
        inverters.set_values(1, ac_power_w=2400.0, ac_energy_wh=1_234_100.0)
        # the gateway reads power and energy in separate requests, so one poll may see the
        # new counter with the old power (as on a real inverter): wait for a whole new reading
        wait_for(
            lambda: any(
                r["ac_energy_wh"] == 1_234_100.0 and r["ac_power_w"] == 2400.0
                for r in stored(influx)
            ),
            what="the changed counter and power",
        )
    finally:
        service.request_stop()
        thread.join(15)
    assert not thread.is_alive()
    rows = stored(influx)
    a = [r for r in rows if r["device"] == "inv-a"]
    b = [r for r in rows if r["device"] == "inv-b"]
    assert {r["ac_energy_wh"] for r in a} <= {1_234_000.0, 1_234_100.0}
    latest_a = max(a, key=lambda r: r["time"])
    assert latest_a["ac_power_w"] == 2400.0
    assert latest_a["ac_voltage_v"] == 231.0
    assert latest_a["state"] == "producing"
    assert latest_a["cabinet_temp_c"] == 25.0
    assert all(r["ac_energy_wh"] == 987_650.0 and r["ac_power_w"] == 1500.5 for r in b)
    assert all(r["grid_frequency_hz"] == pytest.approx(49.98, abs=1e-4) for r in b)
    changed = min(r["time"] for r in a if r["ac_energy_wh"] == 1_234_100.0)
    # timestamps are the poll times in UTC (ms), not the collector's arrival time
    changed_at = datetime.fromtimestamp(changed / 1000, tz=UTC)
    # (the upper bounds are the wait's own limit: on a loaded machine a poll may come late,
    # which is not what this test is about; speed is measured in bench/gateway.py)
    assert started - timedelta(seconds=1) <= changed_at <= started + timedelta(seconds=15)
    # every reading stored once: one point per poll time, never two polls within the interval
    times = sorted(r["time"] for r in a)
    assert len(times) == len(set(times))
    assert all(t2 - t1 >= 800 for t1, t2 in itertools.pairwise(times))
    with Spool(tmp_path / "spool.sqlite3") as spool:
        assert spool.depth() == 0  # everything acknowledged
    assert service.publisher.stats.readings_acked == service.readings_polled


def test_unreachable_device_is_reported_and_the_others_keep_flowing(
    tmp_path: Path, inverters: SimulatedInverters, mosquitto: Mosquitto
) -> None:
    dead_port = free_port()
    devices = [
        {"device_id": "inv-ok", "host": "127.0.0.1", "port": inverters.port, "unit": 1,
         "interval_s": 1},
        {"device_id": "inv-gone", "host": "127.0.0.1", "port": dead_port, "unit": 1,
         "interval_s": 1, "timeout_s": 0.5},
    ]  # fmt: skip
    service = GatewayService(gateway_config(tmp_path, mosquitto.port, devices, status_interval_s=1))
    thread = run_in_thread(service)
    try:
        wait_for(lambda: service.readings_polled >= 3, what="three readings")
        last_poll = service.publisher.last_poll or ""
    finally:
        service.request_stop()
        thread.join(15)
    assert "inv-ok: ok" in last_poll
    assert "inv-gone: error" in last_poll
    assert service._schedules[1].failures >= 2
    assert service._schedules[1].polls == service._schedules[1].failures


def test_systemd_notifications(tmp_path: Path, mosquitto: Mosquitto) -> None:
    sock_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    listener.settimeout(5)
    notifier = SystemdNotifier(
        {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"}  # 0.4 s -> every 0.2 s
    )
    assert notifier.watchdog_interval_s == pytest.approx(0.2)

    class Quiet:
        device_id = "inv-x"
        last_result = "not polled yet"

        def poll(self) -> Reading:
            raise ConnectionError("no inverter in this test")

        def device_info(self) -> Any:
            raise ConnectionError("no inverter in this test")

    config = gateway_config(tmp_path, mosquitto.port, [{"device_id": "inv-x", "host": "127.0.0.1"}])
    service = GatewayService(config, devices=[Quiet()], notifier=notifier)
    thread = run_in_thread(service)
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 5
        while messages.count("WATCHDOG=1") < 3 and time.monotonic() < deadline:
            messages.append(listener.recv(256).decode())
    finally:
        service.request_stop()
        thread.join(10)
    while True:
        try:
            listener.settimeout(0.5)
            messages.append(listener.recv(256).decode())
        except TimeoutError:
            break
    listener.close()
    assert messages[0] == "READY=1"
    assert messages.count("WATCHDOG=1") >= 3
    assert messages[-1] == "STOPPING=1"
    status = [m for m in messages if m.startswith("STATUS=")]
    assert status and "readings waiting" in status[0]
    assert not SystemdNotifier({}).notify("READY=1")  # not under systemd: silently nothing
    abstract = SystemdNotifier({"NOTIFY_SOCKET": "@zw-test", "WATCHDOG_USEC": "1000000",
                                "WATCHDOG_PID": "1"})  # fmt: skip
    assert abstract.enabled and abstract.watchdog_interval_s is None  # another process's


def test_spool_command_shows_and_exports_backlog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "gateway.yaml"
    spool_path = tmp_path / "spool.sqlite3"
    config_path.write_text(
        "gateway_id: gw-1\nmqtt: {host: 127.0.0.1}\n"
        f"spool: {{path: {spool_path}}}\n"
        "devices: [{device_id: inv-1, host: 127.0.0.1}]\n"
    )
    t0 = datetime(2026, 3, 29, 0, 59, 50, tzinfo=UTC)
    readings = [
        Reading(device_id="inv-1", ts=t0 + timedelta(seconds=10 * i), ac_energy_wh=100.0 + i)
        for i in range(5)
    ]
    assert main(["spool", "--config", str(config_path)]) == 0  # fresh install: no spool yet
    assert "valid; spool" in capsys.readouterr().out
    with Spool(spool_path) as spool:
        ids = spool.append(readings)
        spool.delete(ids[:1])
    export = tmp_path / "backlog.jsonl"
    assert main(["spool", "--config", str(config_path), "--json", "--export", str(export)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["depth"] == 4
    assert summary["oldest"] == "2026-03-29T01:00:00.000Z"
    assert summary["newest"] == "2026-03-29T01:00:30.000Z"
    assert summary["dropped_total"] == 0
    assert summary["held_for_clock"] == 0
    lines = export.read_text().splitlines()
    assert [Reading.model_validate_json(line) for line in lines] == readings[1:]
    assert main(["spool", "--config", str(config_path)]) == 0
    assert "depth          4" in capsys.readouterr().out
    # a mistake in the file names the field and exits 2
    config_path.write_text("gateway_id: gw-1\nmqtt: {host: 127.0.0.1, port: 0}\ndevices: []\n")
    assert main(["spool", "--config", str(config_path)]) == 2
    err = capsys.readouterr().err
    assert "mqtt.port" in err and "devices" in err


def test_an_unknown_clock_sync_setting_stops_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(
        "gateway_id: gw-1\nmqtt: {host: 127.0.0.1}\n"
        f"spool: {{path: {tmp_path / 'spool.sqlite3'}}}\n"
        "devices: [{device_id: inv-1, host: 127.0.0.1}]\n"
    )
    monkeypatch.setenv("ZONNEWIJK_GATEWAY_CLOCK_SYNC", "ntpd")
    assert main(["run", "--config", str(config_path), "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "ZONNEWIJK_GATEWAY_CLOCK_SYNC='ntpd'" in err and "file:<path>" in err


class _OffsetClock(FakeClock):
    """A fake clock that runs: the machine's time plus a wall offset the test sets (1970 at
    the start), and a sync flag the test flips."""

    def __init__(self) -> None:
        super().__init__(synced=False, boot_id="boot-service-test")
        self.offset_ns = -time.time_ns()  # the epoch, now

    def wall_ns(self) -> int:
        return time.time_ns() + self.offset_ns

    def mono_ns(self) -> int:
        return time.monotonic_ns()


def test_an_injected_unsynchronised_clock_holds_readings_until_it_syncs(
    tmp_path: Path,
    inverters: SimulatedInverters,
    mosquitto: Mosquitto,
    collector: Collector,
    influx: InfluxClient,
) -> None:
    devices = [
        {"device_id": "inv-a", "host": "127.0.0.1", "port": inverters.port, "unit": 1,
         "interval_s": 1},
    ]  # fmt: skip
    clock = _OffsetClock()
    service = GatewayService(
        gateway_config(tmp_path, mosquitto.port, devices, health_port=0),
        gateway_clock=clock,
    )
    thread = run_in_thread(service)
    try:
        wait_for(lambda: service.timekeeper.held_waiting >= 3, what="three held readings")
        assert stored(influx) == []  # nothing was published with the 1970 clock
        assert service.publisher.status_extra["clock_synced"] is False
        health = service.health
        assert health is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{health.port}/health", timeout=5) as r:
            problems = json.load(r)["problems"]
        assert any(p.startswith("clock not synchronised") for p in problems), problems
        synced_at = datetime.now(UTC)
        clock.offset_ns, clock.synced = 0, True  # NTP steps the clock and says so
        wait_for(lambda: service.timekeeper.held_waiting == 0, what="the release")
        held = service.timekeeper.stats.restamped
        wait_for(lambda: len(stored(influx)) >= held + 2, what="re-stamped and new readings")
    finally:
        service.request_stop()
        thread.join(15)
    rows = stored(influx)
    restamped = [r for r in rows if "time_restamped" in (r.get("flags") or "")]
    assert len(restamped) == held >= 3
    for r in restamped:  # polled in the seconds before the sync, stamped with their true time
        at = datetime.fromtimestamp(r["time"] / 1000, tz=UTC)
        assert synced_at - timedelta(seconds=30) < at <= synced_at
    times = sorted(r["time"] for r in rows)
    assert len(times) == len(set(times)) and min(times) > 1e12
    assert service.publisher.status_extra["clock_synced"] is True
    assert service.publisher.status_extra["clock_source"] == "fake"
