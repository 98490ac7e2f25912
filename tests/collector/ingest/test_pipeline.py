"""The collector against a real Mosquitto and a real InfluxDB."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.services import Mosquitto
from collector.ingest.pipeline import Collector, MqttConnection
from collector.ingest.process import process_message
from collector.timeseries.influx import InfluxClient
from tests.collector.ingest.conftest import DeadLetters
from zonnewijk_wire import (
    DcInput,
    InverterState,
    Reading,
    ReadingsBatch,
    encode_batch,
    readings_topic,
)

# Recent, so the age window accepts it; milliseconds to check the precision.
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=250000)


def _batch(gateway: str = "gw-001", seq: int = 1) -> ReadingsBatch:
    return ReadingsBatch(
        gateway_id=gateway,
        seq=seq,
        sent_at=T0,
        readings=(
            Reading(
                device_id="inv-001",
                ts=T0,
                ac_power_w=2345.5,
                ac_energy_wh=1234567.0,
                ac_voltage_v=231.2,
                grid_frequency_hz=50.01,
                cabinet_temp_c=41.5,
                dc=(DcInput(mppt=1, dc_voltage_v=380.0, dc_current_a=3.2, dc_power_w=1216.0),),
                state=InverterState.PRODUCING,
                vendor_state=4,
            ),
        ),
    )


def _publisher(broker: Mosquitto) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


@pytest.fixture
def collector(mosquitto: Mosquitto, influx: InfluxClient) -> Iterator[Collector]:
    with Collector(
        mqtt_connection=MqttConnection(port=mosquitto.port, client_id="test-collector"),
        influx=influx,
        batch_max_wait_s=0.05,
    ) as c:
        yield c


def test_reading_is_stored_with_exact_values(
    mosquitto: Mosquitto, influx: InfluxClient, collector: Collector
) -> None:
    pub = _publisher(mosquitto)
    pub.publish(readings_topic("gw-001"), encode_batch(_batch()), qos=1).wait_for_publish(5)
    assert collector.wait_idle(10)
    rows = influx.query_records("SELECT * FROM inverter")
    assert rows == [
        {
            "time": int(T0.timestamp() * 1000),
            "ac_energy_wh": 1234567.0,
            "ac_power_w": 2345.5,
            "ac_voltage_v": 231.2,
            "cabinet_temp_c": 41.5,
            "device": "inv-001",
            "gateway": "gw-001",
            "grid_frequency_hz": 50.01,
            "state": "producing",
            "vendor_state": 4,
        }
    ]
    dc = influx.query_records("SELECT * FROM dc")
    assert dc[0]["mppt"] == "1" and dc[0]["dc_power_w"] == 1216.0
    pub.loop_stop()


def test_replayed_reading_is_stored_once(
    mosquitto: Mosquitto, influx: InfluxClient, collector: Collector
) -> None:
    pub = _publisher(mosquitto)
    for seq in (1, 2, 2):  # a redelivery and a replay with a new sequence number
        pub.publish(
            readings_topic("gw-001"), encode_batch(_batch(seq=seq)), qos=1
        ).wait_for_publish(5)
    assert collector.wait_idle(10)
    rows = influx.query_records("SELECT count(ac_energy_wh) FROM inverter")
    assert rows[0]["count"] == 1
    assert collector.stats.messages == 3
    pub.loop_stop()


def test_malformed_payload_is_rejected_and_collector_goes_on(
    mosquitto: Mosquitto, influx: InfluxClient, collector: Collector, dead_letters: DeadLetters
) -> None:
    pub = _publisher(mosquitto)
    pub.publish(readings_topic("gw-001"), b"{not json", qos=1).wait_for_publish(5)
    pub.publish(readings_topic("gw-001"), encode_batch(_batch()), qos=1).wait_for_publish(5)
    assert collector.wait_idle(10)
    assert dead_letters.wait(5)
    assert dead_letters.received[0]["reason"] == "not_json"
    assert dead_letters.received[0]["original"] == "{not json"
    assert collector.stats.rejected_messages["not_json"] == 1
    assert influx.query_records("SELECT count(ac_power_w) FROM inverter")[0]["count"] == 1
    pub.loop_stop()


def test_batch_with_nothing_to_store_is_acknowledged(
    mosquitto: Mosquitto, influx: InfluxClient, collector: Collector
) -> None:
    pub = _publisher(mosquitto)
    for payload in (b"{not json", b"[]", b'{"v": 2}'):
        pub.publish(readings_topic("gw-001"), payload, qos=1).wait_for_publish(5)
    assert collector.wait_idle(10)  # nothing left unacknowledged
    assert collector.stats.in_flight == 0
    assert sum(collector.stats.rejected_messages.values()) == 3
    pub.publish(readings_topic("gw-001"), encode_batch(_batch()), qos=1).wait_for_publish(5)
    assert collector.wait_idle(10)
    assert collector.stats.readings_stored == 1
    pub.loop_stop()


def test_bad_reading_is_rejected_good_ones_in_same_batch_stored() -> None:
    good = json.loads(encode_batch(_batch()))
    bad = dict(good["readings"][0], ts="2026-06-21T10:05:00", ac_power_w="lots")
    good["readings"].append(bad)
    processed = process_message("zonnewijk/v1/gw-001/readings", json.dumps(good).encode())
    assert processed.readings == 1
    assert len(processed.points) == 2  # inverter + one dc input
    assert [r.reason for r in processed.rejections] == ["invalid_ts"]
    assert "ac_power_w" in processed.rejections[0].detail


def test_payload_published_under_another_gateway_is_rejected() -> None:
    processed = process_message("zonnewijk/v1/gw-002/readings", encode_batch(_batch("gw-001")))
    assert processed.points == []
    assert processed.rejections[0].reason == "gateway_mismatch"


def test_clean_stop_logs_no_error(
    mosquitto: Mosquitto, influx: InfluxClient, caplog: pytest.LogCaptureFixture
) -> None:
    # After traffic, paho's network thread runs one more round once disconnect() has closed
    # the socket and logs "Client is not connected" as an ERROR (9 stops in 10 before the fix).
    pub = _publisher(mosquitto)
    for round_ in range(4):
        collector = Collector(
            mqtt_connection=MqttConnection(port=mosquitto.port, client_id=f"stop-{round_}"),
            influx=influx,
            batch_max_wait_s=0.05,
        )
        with caplog.at_level(logging.DEBUG):
            collector.start()
            for _ in range(20):
                pub.publish(readings_topic("gw-001"), encode_batch(_batch()), qos=1)
            assert collector.wait_idle(10)
            collector.stop()
    pub.loop_stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
