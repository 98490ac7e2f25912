"""Backfill through the real broker and collector into InfluxDB; live Modbus inverters."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from collector.devtools.services import Mosquitto
from collector.ingest.pipeline import Collector, MqttConnection
from collector.simulator.engine import Chunk, Simulation
from collector.simulator.fleet import Fleet, Site, generate_fleet
from collector.simulator.live import LiveDevice, LiveFleet
from collector.simulator.publish import PublishError, publish_history
from collector.simulator.readings import chunk_reading
from collector.timeseries.influx import InfluxClient
from gateway_firmware.devices.reader import DeviceReader
from gateway_firmware.modbus.transport import ModbusBus
from zonnewijk_wire import InverterState, Reading

START = datetime(2026, 6, 10, tzinfo=UTC)


def test_publish_history_fills_influxdb_through_the_collector(
    mosquitto: Mosquitto, influx: InfluxClient
) -> None:
    fleet = generate_fleet(3, seed=5)
    # The collector refuses readings older than its window (90 days): backfill recent days.
    today = datetime.now(UTC).date()
    start = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=3)
    end = start + timedelta(days=2)
    progress: list[float] = []
    with Collector(
        mqtt_connection=MqttConnection(port=mosquitto.port, client_id="sim-test-collector"),
        influx=influx,
        batch_max_wait_s=0.05,
    ) as collector:
        totals = publish_history(
            fleet, start, end, 600, "127.0.0.1", mosquitto.port, lambda f, r, m: progress.append(f)
        )
        assert collector.wait_idle(30)
    assert totals.readings == 3 * 2 * 144
    assert totals.messages == 3 * 2 * 24
    assert progress[-1] == 1.0
    rows = influx.query_records(
        "SELECT count(ac_energy_wh) AS n, max(ac_energy_wh) - min(ac_energy_wh) AS produced "
        "FROM inverter GROUP BY device"
    )
    by_device = {row["device"]: row for row in rows}
    assert set(by_device) == {s.device_id for s in fleet.sites}
    # The stored counters advanced by the simulated energy.
    sim = Simulation(fleet, start, end, 600)
    energy = sum(chunk.energy_wh[1:].sum(axis=0) for chunk in sim.chunks())
    for site, produced in zip(fleet.sites, energy, strict=True):
        row = by_device[site.device_id]
        assert row["n"] == 288
        assert row["produced"] == pytest.approx(produced, abs=100.0)


def test_publish_to_a_missing_broker_says_so() -> None:
    from collector.devtools.services import free_port

    port = free_port()
    with pytest.raises(PublishError, match=f"127.0.0.1:{port}"):
        publish_history(
            generate_fleet(1, 1), START, START + timedelta(hours=1), 600, "127.0.0.1", port
        )


def _fleet_with(families: tuple[str, ...]) -> Fleet:
    for seed in range(1, 200):
        fleet = generate_fleet(len(families), seed)
        if tuple(s.family for s in fleet.sites) == families:
            return fleet
    raise AssertionError("no seed gives these families")


def _poll(site: Site, device: LiveDevice) -> Reading:
    """One gateway poll of a live device."""
    bus = ModbusBus.tcp(device.host, device.port)
    try:
        return DeviceReader(
            bus,
            unit=device.unit_id,
            device_id=device.device_id,
            gateway_id=device.gateway_id,
            profile=device.gateway_profile,
            rated_ac_power_w=site.ac_rating_w,
        ).poll()
    finally:
        bus.close()


def _model_chunk(fleet: Fleet) -> Chunk:
    """The first chunk of the live model, from a simulation of its own (same seed, same values;
    a simulation is iterated once, and the live fleet's is the driver's)."""
    return next(LiveFleet(fleet, start=START, step_s=300).sim.chunks())


def test_live_devices_serve_the_model_values() -> None:
    fleet = _fleet_with(("sunspec-int", "huawei"))
    chunk = _model_chunk(fleet)
    noon = int(np.flatnonzero(chunk.epoch_s == (START + timedelta(hours=11)).timestamp())[0])
    with LiveFleet(fleet, start=START, step_s=300) as live:
        live.apply(chunk, noon)
        for site, device in zip(fleet.sites, live.devices, strict=True):
            got = _poll(site, device)
            want = chunk_reading(chunk, noon, site.index, site.device_id)
            assert want.state in (InverterState.PRODUCING, InverterState.THROTTLED)
            assert got.state == want.state
            assert got.ac_power_w == pytest.approx(want.ac_power_w, abs=1.0)
            assert got.ac_energy_wh == pytest.approx(want.ac_energy_wh, abs=10.0)


def test_live_devices_serve_the_first_step_before_run() -> None:
    # A gateway may poll before the driver's first step: it must read the model (a counter
    # continuing the history), never the servers' zero defaults.
    fleet = _fleet_with(("sunspec-int", "huawei"))
    first = _model_chunk(fleet)
    with LiveFleet(fleet, start=START, step_s=300) as live:
        for site, device in zip(fleet.sites, live.devices, strict=True):
            want = chunk_reading(first, 0, site.index, site.device_id)
            assert want.ac_energy_wh and want.ac_energy_wh > 1000.0
            assert _poll(site, device).ac_energy_wh == pytest.approx(want.ac_energy_wh, abs=10.0)


def test_live_run_advances_in_accelerated_time() -> None:
    fleet = generate_fleet(2, seed=3)
    seen: list[datetime] = []
    live = LiveFleet(fleet, start=START, step_s=60, time_scale=600.0)
    with live:
        live.run(duration_s=1.0, stop=threading.Event(), on_step=seen.append)
    assert len(seen) >= 5
    assert seen[0] == START
    assert all(b - a == timedelta(seconds=60) for a, b in itertools.pairwise(seen))


def test_cli_publish_sends_one_message_per_gateway_hour(
    mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from collector.cli import main
    from zonnewijk_wire import DEVICE_INFO_FILTER, READINGS_FILTER, decode_batch

    received: list[tuple[str, bytes, bool]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sim-cli-sub")
    sub.on_message = lambda c, u, m: received.append((m.topic, m.payload, m.retain))
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe([(READINGS_FILTER, 1), (DEVICE_INFO_FILTER, 1)])
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        code = main(
            [
                "simulate", "--publish", "--mqtt-port", str(mosquitto.port), "--sites", "2",
                "--days", "1", "--start", "2026-06-01", "--interval", "900", "--no-faults",
            ]
        )  # fmt: skip
        assert code == 0
        deadline = threading.Event()
        for _ in range(100):
            if len(received) >= 2 + 48:
                break
            deadline.wait(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    readings = [(t, p) for t, p, _ in received if t.endswith("/readings")]
    infos = [t for t, _, _ in received if t.endswith("/info")]
    assert len(infos) == 2
    assert len(readings) == 2 * 24
    for topic, payload in readings:
        batch = decode_batch(payload, topic_gateway_id=topic.split("/")[2])
        assert len(batch.readings) == 4 and batch.rejected == ()
    assert "published 48 batches (192 readings)" in capsys.readouterr().out
