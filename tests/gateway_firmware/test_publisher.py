"""The publisher against a real Mosquitto: PUBACK-driven deletion, replay, outages, status."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.devtools.services import Mosquitto
from gateway_firmware.config import MqttConfig, SpoolConfig
from gateway_firmware.publisher import Publisher
from gateway_firmware.spool import Spool
from zonnewijk_wire import (
    DeviceInfo,
    GatewayStatus,
    InverterState,
    MeterReading,
    MeterSource,
    Reading,
    decode_batch,
    decode_meter_batch,
)

GW = "gw-test"
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def reading(i: int, device: str = "inv-1") -> Reading:
    return Reading(
        device_id=device,
        ts=T0 + timedelta(seconds=10 * i),
        ac_power_w=float(i),
        ac_energy_wh=1_000_000.0 + i,
        state=InverterState.PRODUCING,
    )


T = TypeVar("T")


class Subscriber:
    """Collects every message under zonnewijk/v1/ (retained ones included)."""

    def __init__(self, port: int, *, persistent: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sub-{id(self)}", protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *a: c.subscribe("zonnewijk/v1/#", qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        props = None
        if persistent:  # the broker keeps the subscription and queues for us while we are away
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 600
        self.client.connect_async("127.0.0.1", port, clean_start=not persistent, properties=props)
        self.client.loop_start()
        assert self._ready.wait(10), "subscriber did not connect"

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def readings(self) -> list[Reading]:
        return [r for p in self.on("/readings") for r in decode_batch(p).readings]

    def meter_readings(self) -> list[MeterReading]:
        return [r for p in self.on("/meter") for r in decode_meter_batch(p).readings]

    def readings_when(self, count: int, timeout_s: float = 10.0) -> list[Reading]:
        """The readings once ``count`` have arrived (a PUBACK to the publisher does not mean
        the broker's copy reached this subscriber yet), or what came within ``timeout_s``."""
        return _when(self.readings, count, timeout_s)

    def meter_readings_when(self, count: int, timeout_s: float = 10.0) -> list[MeterReading]:
        return _when(self.meter_readings, count, timeout_s)

    def statuses(self) -> list[GatewayStatus]:
        return [GatewayStatus.model_validate_json(p) for p in self.on("/status")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _when(get: Callable[[], list[T]], count: int, timeout_s: float) -> list[T]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = get()
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


@pytest.fixture
def subscriber(mosquitto: Mosquitto) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.port)
    yield sub
    sub.close()


def make_publisher(port: int, spool: Spool, protocol: str = "5", **spool_options: Any) -> Publisher:
    return Publisher(
        gateway_id=GW,
        mqtt_config=MqttConfig.model_validate(
            {
                "host": "127.0.0.1",
                "port": port,
                "reconnect_min_s": 1,
                "reconnect_max_s": 1,
                "protocol": protocol,
            }
        ),
        spool=spool,
        spool_config=SpoolConfig(path=spool.path, **spool_options),
        firmware_version="test-1.0",
    )


def pump(pub: Publisher, until: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Run the publisher's main-thread work until ``until()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out: depth={pub.spool.depth()} in_flight={pub.in_flight_readings} "
                f"connected={pub.connected} stats={pub.stats}"
            )
        wait = pub.step()
        pub.wait(min(wait, 0.05))


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_live_reading_is_deleted_only_after_puback(
    tmp_path: Path, mosquitto: Mosquitto, subscriber: Subscriber, protocol: str
) -> None:
    with Spool(tmp_path / "s.db") as spool:
        pub = make_publisher(mosquitto.port, spool, protocol=protocol)
        pub.start()
        try:
            assert pub.wait_connected(10)
            pump(pub, lambda: pub.stats.connects == 1)
            ids = spool.append([reading(0), reading(0, device="inv-2")])
            assert spool.depth() == 2  # committed before it is published
            assert pub.send_live(list(zip(ids, [reading(0), reading(0, "inv-2")], strict=True)))
            pump(pub, lambda: spool.depth() == 0)
            assert pub.stats.readings_acked == 2
            got = subscriber.readings_when(2)
            assert got == [reading(0), reading(0, device="inv-2")]  # live: not flagged
            batch = json.loads(subscriber.on("/readings")[0])
            assert batch["gateway_id"] == GW and batch["seq"] == 1
        finally:
            pub.stop()


def meter_reading(i: int) -> MeterReading:
    return MeterReading(
        device_id="p1",
        ts=T0 + timedelta(minutes=5 * i),
        source=MeterSource.P1,
        interval_s=300,
        import_energy_wh=4_000_000.0 + 10 * i,
        export_energy_wh=1_000_000.0,
    )


def test_meter_readings_go_to_the_meter_topic_live_and_replayed(
    tmp_path: Path, mosquitto: Mosquitto, subscriber: Subscriber
) -> None:
    with Spool(tmp_path / "s.db") as spool:
        # a backlog that mixes both kinds: each message holds one kind, order kept per kind
        backlog: list[Reading | MeterReading] = []
        for i in range(30):
            backlog.append(reading(i))
            if i % 3 == 0:
                backlog.append(meter_reading(i))
        spool.append(backlog)
        pub = make_publisher(mosquitto.port, spool, replay_batch_size=7)
        pub.start()
        try:
            pump(pub, lambda: spool.depth() == 0 and pub.in_flight_readings == 0)
            live: list[Reading | MeterReading] = [meter_reading(100), reading(100)]
            ids = spool.append(live)
            assert pub.send_live(list(zip(ids, live, strict=True)))
            pump(pub, lambda: spool.depth() == 0 and pub.in_flight_readings == 0)
        finally:
            pub.stop()
    meters = subscriber.meter_readings_when(11)
    assert [m.ts for m in meters] == [meter_reading(i).ts for i in (*range(0, 30, 3), 100)]
    assert all(m.flags == ("replayed",) for m in meters[:-1]) and meters[-1].flags == ()
    assert [r.ac_energy_wh for r in subscriber.readings_when(31)] == [
        1_000_000.0 + i for i in (*range(30), 100)
    ]
    for payload in subscriber.on("/meter"):  # a meter message never carries an inverter reading
        assert all(r["source"] == "p1" for r in json.loads(payload)["readings"])


def test_backlog_is_replayed_oldest_first_in_batches(
    tmp_path: Path, mosquitto: Mosquitto, subscriber: Subscriber
) -> None:
    with Spool(tmp_path / "s.db") as spool:
        spool.append([reading(i) for i in range(1234)])
        pub = make_publisher(mosquitto.port, spool, replay_batch_size=200)
        pub.start()
        try:
            pump(pub, lambda: spool.depth() == 0 and pub.in_flight_readings == 0)
            got = subscriber.readings_when(1234)
            assert [r.ac_energy_wh for r in got] == [1_000_000.0 + i for i in range(1234)]
            assert all(r.flags == ("replayed",) for r in got)
            payloads = subscriber.on("/readings")
            assert len(payloads) == 7  # 6 x 200 + 34
            seqs = [decode_batch(p).seq for p in payloads]
            assert seqs == sorted(seqs) and len(set(seqs)) == 7
            assert spool.seq() == seqs[-1]
        finally:
            pub.stop()


def test_replay_is_rate_limited_and_live_readings_overtake_it(
    tmp_path: Path, mosquitto: Mosquitto, subscriber: Subscriber
) -> None:
    with Spool(tmp_path / "s.db") as spool:
        spool.append([reading(i) for i in range(600)])
        pub = make_publisher(
            mosquitto.port, spool, replay_batch_size=100, replay_readings_per_s=300.0
        )
        started = time.monotonic()
        pub.start()
        try:
            pump(pub, lambda: len(subscriber.on("/readings")) >= 1)
            live = reading(10_000, device="inv-9")
            [live_id] = spool.append([live])
            replayed_before = pub.stats.readings_sent
            assert pub.send_live([(live_id, live)])
            pump(pub, lambda: spool.depth() == 0 and pub.in_flight_readings == 0)
            elapsed = time.monotonic() - started
        finally:
            pub.stop()
    # 600 readings at 300/s with a bucket of 100: at least (600 - 100) / 300 s
    assert elapsed >= 1.6
    order = [r.device_id for r in subscriber.readings_when(601)]
    assert replayed_before < 600, "the live reading waited for the backlog"
    # one connection, one topic, QoS 1: the broker keeps the order they were sent in
    assert order.index("inv-9") == replayed_before
    assert len(order) == 601


def test_broker_outage_and_restart_loses_nothing(tmp_path: Path) -> None:
    # Mosquitto started as root drops to its own user and then cannot save its persistence
    # file in the 0700 temporary directory; keep it root so a restart keeps sessions.
    mosquitto = Mosquitto.create()
    with mosquitto, Spool(tmp_path / "s.db") as spool:
        subscriber = Subscriber(mosquitto.port, persistent=True)
        pub = make_publisher(mosquitto.port, spool, replay_batch_size=50)
        pub.start()
        try:
            pump(pub, lambda: pub.stats.connects == 1)
            sent = 0
            for round_ in range(3):
                for _ in range(20):
                    r = reading(sent)
                    [rid] = spool.append([r])
                    pub.send_live([(rid, r)])
                    sent += 1
                    pub.step()
                mosquitto.terminate()  # in-flight PUBACKs may never come
                for _ in range(30):
                    r = reading(sent)
                    [rid] = spool.append([r])
                    pub.send_live([(rid, r)])  # may go out before the loss is noticed
                    sent += 1
                    pub.step()
                    pub.wait(0.01)
                mosquitto.start()
                expected_connects = round_ + 2

                def reconnected(n: int = expected_connects) -> bool:
                    return pub.stats.connects == n

                pump(pub, reconnected, timeout_s=20)
            pump(pub, lambda: spool.depth() == 0 and pub.in_flight_readings == 0, 20)
        finally:
            pub.stop()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            energies = {r.ac_energy_wh for r in subscriber.readings()}
            if len(energies) == sent:
                break
            time.sleep(0.1)
        subscriber.close()
    assert energies == {1_000_000.0 + i for i in range(sent)}


def test_status_device_info_and_graceful_offline(
    tmp_path: Path, mosquitto: Mosquitto, subscriber: Subscriber
) -> None:
    with Spool(tmp_path / "s.db", max_readings=10) as spool:
        spool.append([reading(i) for i in range(15)])  # 5 dropped before we ever connect
        pub = make_publisher(mosquitto.port, spool)
        pub.last_poll = "ok"
        pub.set_device_info(DeviceInfo(gateway_id=GW, device_id="inv-1", manufacturer="SMA"))
        pub.start()
        pump(pub, lambda: any(s.state == "online" for s in subscriber.statuses()))
        online = next(s for s in subscriber.statuses() if s.state == "online")
        assert online.spool_dropped == 5
        assert online.spool_depth == 10
        assert online.firmware_version == "test-1.0"
        assert online.last_poll == "ok"
        pump(pub, lambda: len(subscriber.on("/devices/inv-1/info")) == 1)
        info = DeviceInfo.model_validate_json(subscriber.on("/devices/inv-1/info")[0])
        assert info.manufacturer == "SMA"
        pump(pub, lambda: spool.depth() == 0)  # the backlog went out
        # 13 new readings overflow a 10-reading spool: the status is published at once
        spool.append([reading(100 + i) for i in range(13)])
        pump(pub, lambda: any(s.spool_dropped == 8 for s in subscriber.statuses()))
        pub.stop()
    time.sleep(0.3)
    assert subscriber.statuses()[-1].state == "offline"
    # retained: a newcomer sees the last status and the device info
    late = Subscriber(mosquitto.port)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (late.on("/status") and late.on("/info")):
            time.sleep(0.05)
        assert late.statuses()[-1].state == "offline"
        assert all(retain for _, _, retain in late.messages)
    finally:
        late.close()


def test_last_will_marks_gateway_offline_when_connection_dies(
    tmp_path: Path, mosquitto: Mosquitto, subscriber: Subscriber
) -> None:
    with Spool(tmp_path / "s.db") as spool:
        pub = make_publisher(mosquitto.port, spool)
        pub.start()
        try:
            pump(pub, lambda: any(s.state == "online" for s in subscriber.statuses()))
            pub._client.loop_stop()  # the process hangs: no keepalive, no DISCONNECT
            sock = pub._client.socket()
            assert sock is not None
            sock.close()  # the TCP connection drops without a DISCONNECT packet
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and subscriber.statuses()[-1].state != "offline":
                time.sleep(0.05)
            assert subscriber.statuses()[-1].state == "offline"
            assert subscriber.statuses()[-1].gateway_id == GW
        finally:
            pub._started = False


def test_refused_publish_keeps_readings_in_spool(tmp_path: Path) -> None:
    broker = Mosquitto.create()
    acl = broker.directory / "acl"  # readable by the broker's user, unlike pytest's tmp_path
    acl.write_text("topic write zonnewijk/v1/someone-else/#\n")
    # Mosquitto started as root drops to its own user, which cannot read this 0700 directory.
    broker.extra_config = f"acl_file {acl}"
    with broker, Spool(tmp_path / "s.db") as spool:
        pub = make_publisher(broker.port, spool)
        pub.start()
        try:
            pump(pub, lambda: pub.stats.connects == 1)
            rows = [reading(0), reading(1)]
            ids = spool.append(rows)
            pub.send_live(list(zip(ids, rows, strict=True)))
            pump(pub, lambda: sum(pub.stats.refused_messages.values()) >= 1)
            assert spool.depth() == 2
            assert any("authori" in k.lower() for k in pub.stats.refused_messages)
            # the refused readings are not hammered at the broker again at once
            sent = pub.stats.readings_sent
            wait = pub.step()
            assert 50 < wait <= 60
            assert pub.stats.readings_sent == sent
        finally:
            pub.stop(timeout_s=0.5)


def test_reconnect_waits_are_randomised_exponential_and_capped(tmp_path: Path) -> None:
    # The broker is gone for good: every attempt fails, the waits grow and stay below the cap.
    mosquitto = Mosquitto.create()
    port = mosquitto.port  # never started: connections are refused
    with Spool(tmp_path / "s.db") as spool:
        pub = Publisher(
            gateway_id=GW,
            mqtt_config=MqttConfig.model_validate(
                {"host": "127.0.0.1", "port": port, "reconnect_min_s": 1, "reconnect_max_s": 3}
            ),
            spool=spool,
            spool_config=SpoolConfig(path=spool.path),
            firmware_version="test-1.0",
        )
        waits: list[float] = []
        pub.start()
        try:
            deadline = time.monotonic() + 20
            while len(waits) < 4 and time.monotonic() < deadline:
                pub.step()
                pub.wait(0.05)
                if pub.stats.connect_failures > len(waits):
                    waits.append(pub.stats.last_backoff_s)
        finally:
            pub.stop()
    assert len(waits) == 4, waits
    assert 1.0 <= waits[0] <= 2.0  # the first retry: between min and 2 x min
    assert all(1.0 <= w <= 3.0 for w in waits)  # capped at reconnect_max_s
    assert len(set(waits)) == len(waits)  # drawn, not fixed
