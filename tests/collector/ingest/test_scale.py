"""Fleet-scale behaviour against real Mosquitto and InfluxDB: shared subscriptions, back-pressure
while InfluxDB is down, gateway status and last-seen, /metrics and /health."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.services import Influxd, Mosquitto, free_port
from collector.ingest.metrics import MetricsServer
from collector.ingest.pipeline import Collector, MqttConnection
from collector.timeseries.influx import InfluxClient
from collector.timeseries.measurements import REJECTED_MEASUREMENT
from zonnewijk_wire import (
    GatewayStatus,
    Reading,
    ReadingsBatch,
    encode,
    encode_batch,
    readings_topic,
    status_topic,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def batch(gateway: str, seq: int, readings: int = 1, device: str = "inv-1") -> bytes:
    start = NOW - timedelta(hours=2)
    return encode_batch(
        ReadingsBatch(
            gateway_id=gateway,
            seq=seq,
            sent_at=NOW,
            readings=tuple(
                Reading(
                    device_id=device,
                    ts=start + timedelta(seconds=10 * (seq * readings + i)),
                    ac_power_w=1000.0 + i,
                    ac_energy_wh=float(seq * readings + i),
                )
                for i in range(readings)
            ),
        )
    )


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes]]) -> None:
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(10)


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def stored(influx: InfluxClient) -> int:
    rows = influx.query_records('SELECT count("ac_power_w") FROM "inverter"')
    return int(rows[0]["count"]) if rows else 0


@pytest.fixture
def own_influxd() -> Iterator[Influxd]:
    """A private InfluxDB this test may stop and start."""
    with Influxd.create() as server:
        yield server


def test_two_collectors_share_the_load_and_store_each_reading_once(
    mosquitto: Mosquitto, influx: InfluxClient
) -> None:
    def make(n: int) -> Collector:
        return Collector(
            mqtt_connection=MqttConnection(
                port=mosquitto.port, client_id=f"share-{n}", share_group="collectors"
            ),
            influx=influx,
            batch_max_wait_s=0.02,
        )

    with make(1) as c1, make(2) as c2:
        pub = publisher(mosquitto.port)
        messages = [
            (readings_topic(f"gw-{g}"), batch(f"gw-{g}", seq, readings=5))
            for g in range(4)
            for seq in range(50)
        ]
        publish_all(pub, messages)
        assert wait_for(lambda: stored(influx) == 4 * 50 * 5)
        assert c1.wait_idle(10) and c2.wait_idle(10)
        pub.loop_stop()
    assert c1.stats.messages > 0 and c2.stats.messages > 0  # both did work
    assert c1.stats.messages + c2.stats.messages == len(messages)  # each message once
    rows = influx.query_records('SELECT count("ac_power_w") FROM "inverter" GROUP BY "gateway"')
    assert sorted((r["gateway"], r["count"]) for r in rows) == [(f"gw-{g}", 250) for g in range(4)]


@pytest.mark.slow
def test_influx_down_holds_at_receive_maximum_and_resumes_without_restart(
    mosquitto: Mosquitto, own_influxd: Influxd
) -> None:
    influx = InfluxClient(own_influxd.url, "zw_backpressure", retries=0, timeout_s=2)
    collector = Collector(
        mqtt_connection=MqttConnection(
            port=mosquitto.port, client_id="bp-collector", receive_maximum=20
        ),
        influx=influx,
        batch_max_wait_s=0.02,
        batch_max_points=10,
    )
    with collector:
        own_influxd.terminate()
        pub = publisher(mosquitto.port)
        publish_all(pub, [(readings_topic("gw-1"), batch("gw-1", seq)) for seq in range(300)])
        time.sleep(3)
        assert collector.stats.messages == 0
        assert collector.stats.in_flight == 20  # exactly the receive maximum, no more
        assert not collector.health()[0]
        assert collector.stats.write_errors > 0
        own_influxd.start()
        assert wait_for(lambda: collector.stats.messages == 300, 40)
        assert collector.wait_idle(10)
        pub.loop_stop()
    # Mosquitto 2.0.11 overshoots the receive maximum once acks flow; the collector's own
    # bound holds instead: its queue (20), one delivery paho waits to queue, and three batches
    # (being prepared, prepared, being written) of batch_max_points (10) one-point messages.
    assert collector.stats.in_flight_max <= 20 + 1 + 3 * 10
    assert stored(influx) == 300
    assert collector.health()[1]["influx_up"]


def test_status_and_last_seen_are_stored_for_the_fault_detector(
    mosquitto: Mosquitto, influx: InfluxClient
) -> None:
    with Collector(
        mqtt_connection=MqttConnection(port=mosquitto.port, client_id="status-collector"),
        influx=influx,
        batch_max_wait_s=0.02,
    ) as collector:
        pub = publisher(mosquitto.port)
        status = GatewayStatus(
            gateway_id="gw-7",
            state="online",
            ts=NOW,
            spool_depth=12,
            firmware_version="1.2.3",
            config_version=3,
            package_version="1.2.3-1",
            channel="canary",
        )
        publish_all(
            pub,
            [
                (status_topic("gw-7"), encode(status)),
                (readings_topic("gw-7"), batch("gw-7", 1, readings=3)),
                (status_topic("gw-7"), b'{"v":1,"gateway_id":"gw-8","state":"online"}'),
            ],
        )
        assert wait_for(
            lambda: collector.stats.status_messages == 2 and collector.stats.messages == 1
        )
        pub.loop_stop()
    rows = influx.query_records('SELECT * FROM "gateway_status"')
    assert rows == [
        {
            "time": int(NOW.timestamp() * 1000),
            "gateway": "gw-7",
            "state": "online",
            "spool_depth": 12,
            "firmware_version": "1.2.3",
            "config_version": 3,
            "package_version": "1.2.3-1",
            "channel": "canary",
        }
    ]
    assert collector.stats.rejected_messages["gateway_mismatch"] == 1
    seen = influx.query_records('SELECT * FROM "gateway_seen"')
    assert len(seen) == 1 and seen[0]["gateway"] == "gw-7" and seen[0]["readings"] == 3
    newest = NOW - timedelta(hours=2) + timedelta(seconds=10 * 5)
    assert seen[0]["newest_reading_ms"] == int(newest.timestamp() * 1000)
    assert "gw-7" in collector.stats.last_seen


def test_metrics_and_health_endpoints(mosquitto: Mosquitto, influx: InfluxClient) -> None:
    with Collector(
        mqtt_connection=MqttConnection(port=mosquitto.port, client_id="metrics-collector"),
        influx=influx,
        batch_max_wait_s=0.02,
    ) as collector:
        server = MetricsServer(
            collector.metrics, collector.health, host="127.0.0.1", port=free_port()
        )
        server.start()
        try:
            pub = publisher(mosquitto.port)
            bad = json.loads(batch("gw-1", 2, readings=2))
            bad["readings"][1]["ac_voltage_v"] = 999.0
            publish_all(
                pub,
                [
                    (readings_topic("gw-1"), batch("gw-1", 1, readings=4)),
                    (readings_topic("gw-1"), json.dumps(bad).encode()),
                    (readings_topic("gw-1"), b"garbage"),
                ],
            )
            assert wait_for(lambda: collector.stats.messages == 3)
            base = f"http://127.0.0.1:{server.port}"
            text = requests.get(base + "/metrics", timeout=5).text
            health = requests.get(base + "/health", timeout=5)
            pub.loop_stop()
        finally:
            server.stop()
    assert "zonnewijk_collector_messages_total 3.0" in text
    assert "zonnewijk_collector_readings_stored_total 5.0" in text
    assert (
        'zonnewijk_collector_rejects_total{kind="reading",reason="out_of_range_ac_voltage_v"} 1.0'
        in text
    )
    assert 'zonnewijk_collector_rejects_total{kind="message",reason="not_json"} 1.0' in text
    assert "zonnewijk_collector_write_seconds_count" in text
    assert "zonnewijk_collector_batch_points_bucket" in text
    assert "zonnewijk_collector_queue_depth 0.0" in text
    assert 'zonnewijk_collector_gateway_last_message_timestamp_seconds{gateway="gw-1"}' in text
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["readings_stored"] == 5
    # the refused reading is not stored, but its refusal is, for the fault detectors
    refused = influx.query_records(
        f'SELECT "count", "reason", "device" FROM "{REJECTED_MEASUREMENT}"', epoch="ms"
    )
    assert [(r["reason"], r["device"], r["count"]) for r in refused] == [
        ("out_of_range_ac_voltage_v", bad["readings"][1]["device_id"], 1)
    ]
