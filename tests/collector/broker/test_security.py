"""Per-gateway credentials and ACL, against a real Mosquitto with anonymous access off."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from collector.broker.security import (
    BrokerSecurityError,
    acl_entries,
    add_collector,
    add_gateway,
    broker_auth_config,
    password_users,
    remove_user,
)
from collector.cli import main
from collector.devtools.services import Mosquitto
from zonnewijk_wire import DEADLETTER_TOPIC, readings_topic, status_topic


class Client:
    """A v5 client that records what it receives and the result of connecting."""

    def __init__(self, port: int, username: str | None, password: str | None, cid: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.result: ReasonCode | None = None
        self.granted: list[ReasonCode] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, c: object, u: object, f: object, rc: ReasonCode, p: object) -> None:
        self.result = rc
        self.connected.set()

    def _on_subscribe(
        self, c: object, u: object, mid: int, rcs: list[ReasonCode], p: object
    ) -> None:
        self.granted = rcs
        self.subscribed.set()

    def wait_connected(self) -> ReasonCode:
        assert self.connected.wait(5), "no CONNACK"
        assert self.result is not None
        return self.result

    def subscribe(self, *filters: str) -> list[ReasonCode]:
        self.subscribed.clear()
        self.client.subscribe([(f, 1) for f in filters])
        assert self.subscribed.wait(5)
        return self.granted

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured() -> Iterator[tuple[Mosquitto, dict[str, str]]]:
    broker = Mosquitto.create(allow_anonymous=False)
    # The broker's own directory, which the broker can read (devservices keeps it root when
    # started as root; pytest's tmp_path would be unreadable to Debian's mosquitto user).
    pw, acl = broker.directory / "passwd", broker.directory / "zonnewijk.acl"
    creds = {
        c.username: c.password
        for c in (
            add_gateway("gw-a", password_file=pw, acl_file=acl),
            add_gateway("gw-b", password_file=pw, acl_file=acl),
            add_collector("collector-1", password_file=pw, acl_file=acl),
        )
    }
    broker.extra_config = broker_auth_config(pw, acl) + "\nuse_username_as_clientid true"
    with broker:
        yield broker, creds


def test_anonymous_and_wrong_password_are_refused(
    secured: tuple[Mosquitto, dict[str, str]],
) -> None:
    broker, creds = secured
    anonymous = Client(broker.port, None, None, "anon")
    assert anonymous.wait_connected().is_failure
    wrong = Client(broker.port, "gw-a", creds["gw-a"] + "x", "wrong")
    assert wrong.wait_connected().is_failure
    anonymous.close()
    wrong.close()


def test_gateway_publishes_only_under_its_own_id(
    secured: tuple[Mosquitto, dict[str, str]],
) -> None:
    broker, creds = secured
    collector = Client(broker.port, "collector-1", creds["collector-1"], "c1")
    assert not collector.wait_connected().is_failure
    granted = collector.subscribe(
        "$share/collectors/zonnewijk/v1/+/readings", "zonnewijk/v1/+/status"
    )
    assert all(not rc.is_failure for rc in granted)
    gw_a = Client(broker.port, "gw-a", creds["gw-a"], "zonnewijk-gw-gw-a")
    assert not gw_a.wait_connected().is_failure
    gw_a.publish(readings_topic("gw-a"), b"own")
    gw_a.publish(readings_topic("gw-b"), b"forged")  # pretending to be gw-b
    gw_a.publish(status_topic("gw-a"), b"status")
    gw_a.publish("zonnewijk/v1/gw-a/other", b"not a gateway topic")
    deadline = time.monotonic() + 5
    while len(collector.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert sorted(collector.messages) == [
        (readings_topic("gw-a"), b"own"),
        (status_topic("gw-a"), b"status"),
    ]
    for c in (collector, gw_a):
        c.close()


def test_gateway_reads_nothing_of_others(secured: tuple[Mosquitto, dict[str, str]]) -> None:
    broker, creds = secured
    gw_b = Client(broker.port, "gw-b", creds["gw-b"], "zonnewijk-gw-gw-b")
    assert not gw_b.wait_connected().is_failure
    gw_b.subscribe("zonnewijk/v1/+/readings", "zonnewijk/v1/gw-a/#", "#", DEADLETTER_TOPIC)
    collector = Client(broker.port, "collector-1", creds["collector-1"], "c1")
    collector.wait_connected()
    collector.subscribe("zonnewijk/v1/+/readings")  # the control: the message does flow
    gw_a = Client(broker.port, "gw-a", creds["gw-a"], "zonnewijk-gw-gw-a")
    assert not gw_a.wait_connected().is_failure
    gw_a.publish(readings_topic("gw-a"), b"private")
    gw_a.publish(status_topic("gw-a"), b"private status")
    collector.publish(DEADLETTER_TOPIC, b"dead letter")
    deadline = time.monotonic() + 5
    while not collector.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert collector.messages == [(readings_topic("gw-a"), b"private")]
    assert gw_b.messages == []
    for c in (gw_a, gw_b, collector):
        c.close()


def test_gateway_cannot_take_over_another_session(
    secured: tuple[Mosquitto, dict[str, str]],
) -> None:
    """With use_username_as_clientid, reusing gw-b's client id does not reach gw-b's session."""
    broker, creds = secured
    gw_b = Client(broker.port, "gw-b", creds["gw-b"], "zonnewijk-gw-gw-b")
    assert not gw_b.wait_connected().is_failure
    intruder = Client(broker.port, "gw-a", creds["gw-a"], "zonnewijk-gw-gw-b")
    assert not intruder.wait_connected().is_failure
    time.sleep(0.3)
    assert gw_b.client.is_connected()  # not kicked off by a client-id collision
    for c in (gw_b, intruder):
        c.close()


def test_cli_adds_gateway_and_reload_applies_it(
    secured: tuple[Mosquitto, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    broker, _ = secured
    config = broker.config_path.read_text()
    pw = Path(
        next(
            line.split(" ", 1)[1]
            for line in config.splitlines()
            if line.startswith("password_file")
        )
    )
    acl = Path(
        next(line.split(" ", 1)[1] for line in config.splitlines() if line.startswith("acl_file"))
    )
    code = main(["gateways", "add", "gw-c", "--password-file", str(pw), "--acl-file", str(acl)])
    assert code == 0
    out = capsys.readouterr().out
    password = next(
        line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("password: ")
    )
    assert password not in pw.read_text()  # stored hashed only
    assert acl_entries(acl.read_text())["gw-c"] == "gateway"
    assert broker.process is not None
    broker.process.send_signal(signal.SIGHUP)  # what `systemctl reload mosquitto` does
    time.sleep(0.5)
    gw_c = Client(broker.port, "gw-c", password, "zonnewijk-gw-gw-c")
    assert not gw_c.wait_connected().is_failure
    gw_c.close()
    assert (
        main(["gateways", "remove", "gw-c", "--password-file", str(pw), "--acl-file", str(acl)])
        == 0
    )
    assert "gw-c" not in password_users(pw)
    assert "gw-c" not in acl_entries(acl.read_text())


def test_add_gateway_refuses_bad_and_reserved_ids(tmp_path: Path) -> None:
    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    with pytest.raises(BrokerSecurityError, match="not a valid id"):
        add_gateway("gw/../x", password_file=pw, acl_file=acl)
    with pytest.raises(BrokerSecurityError, match="reserved"):
        add_gateway("collector-2", password_file=pw, acl_file=acl)
    with pytest.raises(BrokerSecurityError, match="start with"):
        add_collector("gw-x", password_file=pw, acl_file=acl)
    assert not pw.exists()


def test_rotating_keeps_one_entry_and_other_lines(tmp_path: Path) -> None:
    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    acl.write_text("# hand-written note\ntopic read $SYS/#\n")
    first = add_gateway("gw-a", password_file=pw, acl_file=acl)
    second = add_gateway("gw-a", password_file=pw, acl_file=acl)
    assert first.password != second.password
    assert password_users(pw) == ["gw-a"]
    text = acl.read_text()
    assert text.count("# BEGIN gateway gw-a") == 1
    assert "topic read $SYS/#" in text
    assert remove_user("gw-a", password_file=pw, acl_file=acl)
    assert not remove_user("gw-a", password_file=pw, acl_file=acl)
