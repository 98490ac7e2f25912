"""Done-when of issue 5: with a gateway backlog in flight, kill -9 the collector mid-batch,
restart the broker, stop InfluxDB for 30 s and start it again; afterwards InfluxDB holds exactly
the readings sent, compared reading by reading, none twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.services import Influxd, Mosquitto
from collector.timeseries.influx import InfluxClient
from collector.timeseries.schema import init_database
from zonnewijk_wire import Reading, ReadingsBatch, encode_batch, readings_topic

GATEWAYS = 4
DEVICES = 2
MESSAGES_PER_GATEWAY = 60
READINGS_PER_MESSAGE = 50  # 25 per device
OUTAGE_S = 30.0
DB = "zonnewijk_chaos"

Key = tuple[str, str, int, float, float]  # gateway, device, time [ms], power [W], energy [Wh]


def backlog() -> tuple[list[tuple[str, bytes]], set[Key]]:
    """The messages the gateways send, and the readings they carry."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    messages: list[tuple[str, bytes]] = []
    expected: set[Key] = set()
    for seq in range(MESSAGES_PER_GATEWAY):
        for g in range(GATEWAYS):
            gateway = f"gw-{g}"
            readings = []
            for i in range(READINGS_PER_MESSAGE):
                device = f"inv-{g}-{i % DEVICES}"
                step = seq * (READINGS_PER_MESSAGE // DEVICES) + i // DEVICES
                ts = start + timedelta(seconds=10 * step)
                power = 1000.0 + (step % 500) + g
                energy = 5_000_000.0 + 3.0 * step
                readings.append(
                    Reading(device_id=device, ts=ts, ac_power_w=power, ac_energy_wh=energy)
                )
                expected.add((gateway, device, int(ts.timestamp() * 1000), power, energy))
            batch = ReadingsBatch(
                gateway_id=gateway, seq=seq, sent_at=datetime.now(UTC), readings=tuple(readings)
            )
            messages.append((readings_topic(gateway), encode_batch(batch)))
    return messages, expected


class Gateway(threading.Thread):
    """Publishes the backlog at QoS 1, re-sending whatever the broker did not acknowledge."""

    def __init__(self, port: int, messages: list[tuple[str, bytes]], pace_s: float) -> None:
        super().__init__(daemon=True)
        self.messages = messages
        self.pace_s = pace_s
        self.sent = 0
        self.resent = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="chaos-gateway")
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def run(self) -> None:
        for topic, payload in self.messages:
            while True:
                info = self.client.publish(topic, payload, qos=1)
                try:
                    info.wait_for_publish(timeout=3)
                    if info.is_published():
                        break
                except (RuntimeError, ValueError):  # not connected right now
                    pass
                self.resent += 1  # at least once: a duplicate is harmless, a loss is not
                time.sleep(0.2)
            self.sent += 1
            time.sleep(self.pace_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_collector(mqtt_port: int, influx_url: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "collector.cli",
        "-v",
        "collect",
        "--mqtt-port",
        str(mqtt_port),
        "--influx-url",
        influx_url,
        "--influx-db",
        DB,
        "--client-id",
        "chaos-collector",
        "--share-group",
        "",  # one collector: a plain subscription, which the broker restores on restart
        "--batch-max-points",
        "500",
        "--batch-max-wait",
        "0.05",
        "--receive-maximum",
        "50",
        "--log-format",
        "json",
        "--heartbeat-s",
        "5",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZONNEWIJK_")}
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)


def stored(client: InfluxClient) -> int:
    try:
        rows = client.query_records('SELECT count("ac_power_w") FROM "inverter"')
    except Exception:
        return -1
    return int(rows[0]["count"]) if rows else 0


def wait_until(predicate: object, timeout_s: float) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


@pytest.fixture
def services() -> Iterator[tuple[Mosquitto, Influxd]]:
    with Mosquitto.create() as broker, Influxd.create() as influxd:
        yield broker, influxd


@pytest.mark.slow
def test_chaos_exactly_the_readings_sent(
    services: tuple[Mosquitto, Influxd], tmp_path: Path
) -> None:
    broker, influxd = services
    influx = InfluxClient(influxd.url, DB, retries=0, timeout_s=5)
    assert init_database(InfluxClient(influxd.url, DB))  # production runs db init first
    messages, expected = backlog()
    log = tmp_path / "collector.log"
    collector = start_collector(broker.port, influxd.url, log)
    procs = [collector]
    try:
        assert wait_until(lambda: "connected to" in log.read_text(), 15), log.read_text()
        gateway = Gateway(broker.port, messages, pace_s=0.03)
        gateway.start()

        # 1. kill -9 the collector while it is writing
        assert wait_until(lambda: stored(influx) >= 1500, 30), log.read_text()
        collector.send_signal(signal.SIGKILL)
        collector.wait(10)
        at_kill = stored(influx)
        assert 0 < at_kill < len(expected)
        collector = start_collector(broker.port, influxd.url, log)
        procs.append(collector)

        # 2. restart the broker with the backlog still arriving
        time.sleep(1.0)
        broker.terminate()
        broker.start()

        # 3. InfluxDB away for 30 s, then back; the collector is not restarted
        assert wait_until(lambda: stored(influx) > at_kill, 30), log.read_text()
        influxd.terminate()
        time.sleep(OUTAGE_S)
        assert collector.poll() is None, "the collector must ride out the outage"
        influxd.start()

        gateway.join(120)
        assert not gateway.is_alive()
        assert wait_until(lambda: stored(influx) == len(expected), 60), (
            f"stored {stored(influx)} of {len(expected)}\n{log.read_text()[-3000:]}"
        )
        time.sleep(1.0)  # redeliveries still in flight must not add anything
        gateway.close()

        rows = influx.query_records(
            'SELECT "ac_power_w", "ac_energy_wh" FROM "inverter" GROUP BY "gateway", "device"'
        )
        got = [
            (r["gateway"], r["device"], r["time"], float(r["ac_power_w"]), float(r["ac_energy_wh"]))
            for r in rows
        ]
        assert len(got) == len(set(got))  # none twice
        assert set(got) == expected  # exactly what was sent, value for value
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(30) == 0  # a clean stop after all that
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
