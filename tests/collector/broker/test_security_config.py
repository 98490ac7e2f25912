"""config/mosquitto/zonnewijk.conf, run by a real Mosquitto: the queue survives a restart and is
not cut at Mosquitto's default of 1,000 messages (which the control shows it would be)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.broker.security import add_collector, add_gateway
from collector.devtools.services import Mosquitto

PRODUCTION_CONF = Path(__file__).resolve().parents[3] / "config" / "mosquitto" / "zonnewijk.conf"
#: Lines that name machine-specific paths, ports and certificates; the test supplies its own.
_LOCAL = (
    "listener",
    "certfile",
    "keyfile",
    "tls_version",
    "persistence_location",
    "password_file",
    "acl_file",
    "log_dest",
    "use_username_as_clientid",
)
MESSAGES = 2500  # well above the default limit of 1000


@dataclass
class ProductionBroker(Mosquitto):
    """Mosquitto running the production file, with private port, paths and credentials."""

    use_production: bool = True

    def write_config(self) -> None:
        (self.directory / "data").mkdir(exist_ok=True)
        private = [
            *(["user root"] if os.geteuid() == 0 else []),
            f"listener {self.port} 127.0.0.1",
            "use_username_as_clientid true",
            f"persistence_location {self.directory / 'data'}/",
            f"password_file {self.directory / 'passwd'}",
            f"acl_file {self.directory / 'acl'}",
            "log_dest stdout",
        ]
        if self.use_production:
            kept = [
                line
                for line in PRODUCTION_CONF.read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith(_LOCAL)
            ]
        else:  # the control: Mosquitto's defaults, only persistence switched on
            kept = ["persistence true", "allow_anonymous false"]
        self.config_path.write_text("\n".join([*private, *kept, ""]))


def _connect(port: int, user: str, password: str, *, persistent: bool) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if persistent:
        props.SessionExpiryInterval = 3600
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set()
    client.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
    client.loop_start()
    assert connected.wait(5)
    return client


def _queue_through_restart(use_production: bool) -> int:
    broker = ProductionBroker.create(allow_anonymous=False)
    broker.use_production = use_production
    pw, acl = broker.directory / "passwd", broker.directory / "acl"
    gw = add_gateway("gw-q", password_file=pw, acl_file=acl)
    col = add_collector("collector-q", password_file=pw, acl_file=acl)
    with broker:
        sub = _connect(broker.port, col.username, col.password, persistent=True)
        done = threading.Event()
        sub.on_subscribe = lambda c, u, mid, rcs, p: done.set()
        sub.subscribe("zonnewijk/v1/+/readings", qos=1)
        assert done.wait(5)
        sub.disconnect()
        sub.loop_stop()
        pub = _connect(broker.port, gw.username, gw.password, persistent=False)
        infos = [
            pub.publish("zonnewijk/v1/gw-q/readings", f"{i}".encode(), qos=1)
            for i in range(MESSAGES)
        ]
        for info in infos:
            info.wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()
        broker.terminate()  # a clean restart: persistence is written on exit
        broker.start()
        received: set[int] = set()
        lock = threading.Lock()

        def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
            with lock:
                received.add(int(m.payload))

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=col.username, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(col.username, col.password)
        client.on_message = on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        client.loop_start()
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 1.0:
            with lock:
                n = len(received)
            if n != last:
                last, quiet_since = n, time.monotonic()
            time.sleep(0.05)
        client.disconnect()
        client.loop_stop()
        return len(received)


@pytest.mark.slow
def test_production_config_keeps_a_large_queue_across_restart() -> None:
    assert _queue_through_restart(use_production=True) == MESSAGES


@pytest.mark.slow
def test_control_default_limits_drop_beyond_1000() -> None:
    received = _queue_through_restart(use_production=False)
    assert received <= 1000 + 100  # 1000 queued plus whatever was in flight


def _published_during_restart_window(topic_filter: str) -> list[bytes]:
    """Messages published after a broker restart, before the offline subscriber is back."""
    with Mosquitto.create() as broker:
        got: list[bytes] = []

        def connect() -> mqtt.Client:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sub", protocol=mqtt.MQTTv5)
            client.on_message = lambda c, u, m: got.append(bytes(m.payload))
            client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 300
            client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
            client.loop_start()
            time.sleep(0.5)
            return client

        def publish(tag: str) -> None:
            pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub")
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            for i in range(3):
                pub.publish(
                    "zonnewijk/v1/gw/readings", f"{tag}{i}".encode(), qos=1
                ).wait_for_publish(5)
            pub.disconnect()
            pub.loop_stop()

        sub = connect()
        sub.disconnect()
        sub.loop_stop()
        broker.terminate()
        broker.start()
        publish("r")  # the subscriber is still away
        sub = connect()
        time.sleep(0.5)
        sub.disconnect()
        sub.loop_stop()
        return got


def test_plain_subscription_keeps_messages_published_right_after_a_restart() -> None:
    assert _published_during_restart_window("zonnewijk/v1/+/readings") == [b"r0", b"r1", b"r2"]


@pytest.mark.xfail(
    strict=True,
    reason="Mosquitto 2.0.11 (Debian) does not restore an offline client's shared subscription "
    "from persistence: messages published before it resubscribes are dropped. If this passes, "
    "the broker was fixed: update docs/collector.md and make shared groups the default.",
)
def test_shared_subscription_keeps_messages_published_right_after_a_restart() -> None:
    got = _published_during_restart_window("$share/collectors/zonnewijk/v1/+/readings")
    assert got == [b"r0", b"r1", b"r2"]
