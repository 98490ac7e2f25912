"""A gateway with a P1 cable and an inverter publishes both, end to end: a meter writing
telegrams into a socat pty pair at DSMR 5 speed (one a second, CRC each), a simulated SunSpec
inverter, the gateway service, real Mosquitto, the collector, InfluxDB."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.devtools.pty import PtyPair
from collector.devtools.services import Mosquitto
from collector.ingest.directory import DeviceRecord, StaticDirectory
from collector.ingest.pipeline import Collector, MqttConnection
from collector.ingest.validate import ReadingValidator
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.timeseries.influx import InfluxClient
from gateway_firmware.config import parse_config
from gateway_firmware.service import GatewayService
from tests.gateway_firmware.p1 import published_telegrams as published
from tests.gateway_firmware.p1.conftest import Meter, with_crc

GW = "gw-p1"
#: The published DSMR 5.0 telegram's export register 2.8.1, 2.444 kWh, as a template.
EXPORT_T1 = "1-0:2.8.1(000002.444*kWh)"


def telegram(i: int, *, equipment: str | None = None) -> bytes:
    """The published telegram with the export register moving 1 Wh a second (3.6 kW)."""
    text = published.TELEGRAM_V5.replace(EXPORT_T1, f"1-0:2.8.1({2.444 + i / 1000:010.3f}*kWh)")
    text = text.replace("1-0:2.7.0(00.000*kW)", "1-0:2.7.0(03.600*kW)")
    text = text.replace("1-0:1.7.0(00.244*kW)", "1-0:1.7.0(00.000*kW)")
    if equipment is not None:
        text = text.replace("4B384547303034303436333935353037", equipment)
    return with_crc(text).encode()


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def inverter() -> Iterator[SimulatedInverters]:
    with SimulatedInverters({1: layout_for("sunspec-int")}) as sim:
        sim.set_values(1, ac_power_w=3800.0, ac_energy_wh=2_000_000.0)
        yield sim


@pytest.fixture
def collector(mosquitto: Mosquitto, influx: InfluxClient) -> Iterator[Collector]:
    conn = MqttConnection(
        host="127.0.0.1", port=mosquitto.port, client_id=f"c-{uuid.uuid4().hex[:6]}"
    )
    directory = StaticDirectory.of([DeviceRecord(GW, "inv-1", 5000.0), DeviceRecord(GW, "zw-p1")])
    validator = ReadingValidator(directory=directory)
    with Collector(mqtt_connection=conn, influx=influx, validator=validator) as col:
        yield col


def test_inverter_and_p1_meter_reach_influxdb(
    tmp_path: Path,
    pty_pair: PtyPair,
    meter: Callable[..., Meter],
    inverter: SimulatedInverters,
    mosquitto: Mosquitto,
    collector: Collector,
    influx: InfluxClient,
) -> None:
    swap_at = 26  # the meter is exchanged after 26 telegrams
    new_id = "4530303434303037333832323436303139"

    def telegrams(i: int) -> bytes:
        return telegram(i) if i < swap_at else telegram(i - swap_at, equipment=new_id)

    meter(telegrams, period_s=1.0)
    config = parse_config(
        {
            "gateway_id": GW,
            "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "reconnect_min_s": 1,
                     "reconnect_max_s": 1, "client_id": f"gw-{uuid.uuid4().hex[:6]}"},
            "spool": {"path": str(tmp_path / "spool.sqlite3")},
            "devices": [{"device_id": "inv-1", "host": "127.0.0.1", "port": inverter.port,
                         "unit": 1, "interval_s": 2}],
            "p1": {"serial_port": pty_pair.gateway_end, "device_id": "zw-p1", "interval_s": 10},
        }
    )  # fmt: skip
    service = GatewayService(config)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()

    def meter_rows() -> list[dict[str, Any]]:
        return influx.query_records(f"SELECT * FROM grid_meter WHERE gateway = '{GW}'")

    try:
        # Four readings, and the first of the new meter (the swap after 26 telegrams closes the
        # old meter's interval early, so four rows can all be the old meter's).
        wait_for(
            lambda: len(rows := meter_rows()) >= 4 and len({r["meter_id_hash"] for r in rows}) == 2,
            90,
            "four meter readings in InfluxDB, the last of the new meter",
        )
        assert "zw-p1: ok, DSMR 5.0" in (service.publisher.last_poll or "")
    finally:
        service.request_stop()
        thread.join(15)
    rows = sorted(meter_rows(), key=lambda r: r["time"])
    inverters = influx.query_records(f"SELECT * FROM inverter WHERE gateway = '{GW}'")
    assert inverters and all(r["ac_energy_wh"] == 2_000_000.0 for r in inverters)
    full = [
        r
        for r in rows
        if r["interval_s"] == 10 and "partial_interval" not in (r.get("flags") or "")
    ]
    assert full, rows
    for r in full:  # ten telegrams of 3.6 kW export each
        assert r["samples"] in (9, 10, 11)
        assert r["export_power_w"] == 3600.0 and r["import_power_w"] == 0.0
        assert r["protocol"] == "DSMR 5.0"
    # counters are the telegrams' own: 2.444 kWh + 1 Wh per telegram, T1 + T2 (0)
    exports = [r["export_energy_wh"] for r in rows]
    assert all(2444.0 <= e <= 2444.0 + 60 for e in exports)
    hashes = {r["meter_id_hash"] for r in rows}
    assert len(hashes) == 2  # the swap is visible, the ids are not
    assert not any("4B38454730" in str(v) for r in rows for v in r.values())
    after_swap = [r for r in rows if r["meter_id_hash"] != rows[0]["meter_id_hash"]]
    assert "meter_changed" in (after_swap[0].get("flags") or "")
    assert after_swap[0]["export_energy_wh"] < max(exports)  # the new meter's own counter
