"""Grid-meter readings (the ``meter`` message kind): checks, points, and the whole collector."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.services import Mosquitto
from collector.ingest.directory import DeviceRecord, StaticDirectory
from collector.ingest.pipeline import Collector, MqttConnection
from collector.ingest.process import process_message
from collector.ingest.validate import ReadingValidator
from collector.timeseries.influx import InfluxClient
from tests.collector.ingest.conftest import DeadLetters
from zonnewijk_wire import (
    GasReading,
    MeterBatch,
    MeterFlag,
    MeterReading,
    MeterSource,
    PhaseValues,
    encode_batch,
    meter_topic,
)

T0 = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)


def _reading(minutes: int = 0, **values: object) -> MeterReading:
    fields: dict[str, object] = {
        "device_id": "zw012-p1",
        "ts": T0 + timedelta(minutes=minutes),
        "source": MeterSource.P1,
        "interval_s": 300,
        "samples": 300,
        "import_energy_wh": 1_234_000.0 + 100 * minutes,
        "export_energy_wh": 567_000.0 + 10 * minutes,
        "import_energy_t1_wh": 600_000.0,
        "import_energy_t2_wh": 634_000.0 + 100 * minutes,
        "tariff": 2,
        "import_power_w": 412.5,
        "export_power_w": 0.0,
        "net_power_min_w": -120.0,
        "net_power_max_w": 2310.0,
        "phases": (PhaseValues(phase="L1", import_power_w=412.5, voltage_v=231.0),),
        "meter_id_hash": "3f2a9c0d11aa22bb",
        "protocol": "DSMR 5.0",
    }
    fields.update(values)
    return MeterReading.model_validate(fields)


def _batch(*readings: MeterReading, gateway: str = "zw012", seq: int = 1) -> bytes:
    return encode_batch(MeterBatch(gateway_id=gateway, seq=seq, sent_at=T0, readings=readings))


def test_meter_message_becomes_meter_phase_and_gas_points() -> None:
    gas = GasReading(ts=T0 - timedelta(minutes=3), gas_m3=4321.125)
    result = process_message(meter_topic("zw012"), _batch(_reading(gas=gas)))
    assert result.rejections == []
    assert result.readings == 1
    by_measurement = {p.measurement: p for p in result.points}
    meter = by_measurement["grid_meter"]
    assert meter.tags == {"gateway": "zw012", "device": "zw012-p1", "source": "p1"}
    assert meter.fields["import_energy_wh"] == 1_234_000.0
    assert meter.fields["interval_s"] == 300
    assert meter.fields["protocol"] == "DSMR 5.0"
    assert by_measurement["grid_phase"].tags["phase"] == "L1"
    assert by_measurement["gas_meter"].fields == {"gas_m3": 4321.125}
    assert by_measurement["gas_meter"].time == gas.ts
    assert len(result.lines) == 3


def test_meter_counter_backwards_is_refused_unless_the_meter_changed() -> None:
    validator = ReadingValidator()
    first = process_message(meter_topic("zw012"), _batch(_reading(0)), validator)
    assert first.rejections == []
    dropped = _reading(5, import_energy_wh=1_000.0)
    back = process_message(meter_topic("zw012"), _batch(dropped, seq=2), validator)
    assert [r.reason for r in back.rejections] == ["counter_backwards"]
    assert "import_energy_wh fell from" in back.rejections[0].detail
    swapped = _reading(10, import_energy_wh=1_000.0, flags=(MeterFlag.METER_CHANGED,))
    new_meter = process_message(meter_topic("zw012"), _batch(swapped, seq=3), validator)
    assert new_meter.rejections == []


def test_unregistered_meter_is_refused_and_the_registered_one_stored() -> None:
    directory = StaticDirectory.of([DeviceRecord("zw012", "zw012-p1")])
    validator = ReadingValidator(directory=directory)
    stranger = _reading(0, device_id="zw012-p1-neighbour")
    result = process_message(meter_topic("zw012"), _batch(_reading(0), stranger), validator)
    assert result.readings == 1
    assert [(r.reason, r.reading_index) for r in result.rejections] == [("unknown_device", 1)]
    assert "consent" in result.rejections[0].detail


def test_implausible_power_and_malformed_reading_are_refused_with_reasons() -> None:
    payload = json.loads(_batch(_reading(0), _reading(5, import_power_w=5e7)))
    payload["readings"].append({"device_id": "zw012-p1", "ts": "yesterday", "source": "p1"})
    result = process_message(meter_topic("zw012"), json.dumps(payload).encode())
    reasons = sorted((r.reading_index, r.reason) for r in result.rejections)
    assert reasons == [(1, "out_of_range_import_power_w"), (2, "invalid_ts")]
    assert result.readings == 1


@pytest.fixture
def collector(mosquitto: Mosquitto, influx: InfluxClient) -> Iterator[Collector]:
    with Collector(
        mqtt_connection=MqttConnection(port=mosquitto.port, client_id="test-collector"),
        influx=influx,
        batch_max_wait_s=0.05,
    ) as c:
        yield c


def test_collector_stores_meter_readings_and_dead_letters_bad_ones(
    mosquitto: Mosquitto, influx: InfluxClient, collector: Collector, dead_letters: DeadLetters
) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        good = [_reading(m) for m in (0, 5, 10)]
        bad = _reading(15, import_energy_wh=10.0)  # counter backwards
        pub.publish(meter_topic("zw012"), _batch(*good, bad), qos=1).wait_for_publish(5)
        assert collector.wait_idle(10)
        assert dead_letters.wait(5)
    finally:
        pub.loop_stop()
    rows = influx.query_records('SELECT "import_energy_wh", "source" FROM "grid_meter"')
    assert [r["import_energy_wh"] for r in rows] == [1_234_000.0, 1_234_500.0, 1_235_000.0]
    assert {r["source"] for r in rows} == {"p1"}
    phases = influx.query_records('SELECT count("voltage_v") FROM "grid_phase"')
    assert phases[0]["count"] == 3
    assert dead_letters.received[0]["reason"] == "counter_backwards"
    assert dead_letters.received[0]["reading_index"] == 3
    assert collector.stats.rejected_readings["counter_backwards"] == 1
