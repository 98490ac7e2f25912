"""Sending configs and commands to gateways over MQTT, signed with each gateway's key.

:func:`deliver_config` publishes a :class:`~zonnewijk_wire.control.ConfigDelivery` retained on
``zonnewijk/v1/<gateway_id>/config`` (a gateway that is offline gets it when it comes back);
:func:`request_diagnostics` publishes a signed ``diagnostics`` command and waits for the
gateway's bundle. The server's connection uses a collector-class broker user of its own
(``ZONNEWIJK_FLEET_MQTT_USERNAME``, e.g. ``collector-ops``): the broker makes the client id the
user name, so sharing the collector's user would disconnect the collector.
"""

from __future__ import annotations

import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError
from sqlalchemy.orm import Session

from collector.settings import Settings
from collector.store.gateway_models import GatewayKeyRow
from zonnewijk_wire.control import (
    ConfigDelivery,
    DiagnosticsBundle,
    GatewayCommand,
    command_topic,
    config_topic,
    diagnostics_topic,
)
from zonnewijk_wire.remote_config import RemoteConfig


class DeliveryError(RuntimeError):
    """A config or command could not be sent; the message says why."""


@dataclass(frozen=True, kw_only=True)
class BrokerLogin:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls_ca: Path | None = None


def fleet_login(
    settings: Settings, *, username: str | None = None, password: str | None = None
) -> BrokerLogin:
    """The operator tools' broker login from the settings (``ZONNEWIJK_FLEET_MQTT_*``, else the
    collector's), with ``username``/``password`` instead when given."""
    secret = settings.fleet_mqtt_password or settings.mqtt_password
    return BrokerLogin(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        username=username or settings.fleet_mqtt_username or settings.mqtt_username,
        password=password or (secret.get_secret_value() if secret else None),
        tls_ca=settings.mqtt_tls_ca,
    )


def command_key(session: Session, gateway_id: str) -> str:
    """The gateway's key, or DeliveryError when it was never enrolled or is revoked."""
    row = session.get(GatewayKeyRow, gateway_id)
    if row is None or row.revoked_at is not None:
        raise DeliveryError(
            f"gateway {gateway_id} has no key (not enrolled, or revoked): enrol it first "
            "(zonnewijk gateways enrol --site ...)"
        )
    return row.command_key


class BrokerLink:
    """One MQTT v5 connection of the server's operator tools (publish and wait)."""

    def __init__(self, login: BrokerLogin, *, timeout_s: float = 10.0) -> None:
        self.login = login
        self.timeout_s = timeout_s
        self._connected = threading.Event()
        self._refused: str | None = None
        self._messages: list[tuple[str, bytes]] = []
        self._arrived = threading.Condition()
        client_id = login.username or f"zonnewijk-ops-{secrets.token_hex(4)}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if login.username:
            self.client.username_pw_set(login.username, login.password)
        if login.tls_ca is not None:
            self.client.tls_set(ca_certs=str(login.tls_ca), cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, c: object, u: object, f: object, rc: object, p: object) -> None:
        if getattr(rc, "is_failure", False):
            self._refused = str(rc)
        self._connected.set()

    def _on_message(self, c: object, u: object, message: mqtt.MQTTMessage) -> None:
        with self._arrived:
            self._messages.append((message.topic, bytes(message.payload)))
            self._arrived.notify_all()

    def connect(self) -> None:
        try:
            self.client.connect(self.login.host, self.login.port)
        except OSError as exc:
            raise DeliveryError(
                f"cannot reach the broker at {self.login.host}:{self.login.port}: {exc}"
            ) from None
        self.client.loop_start()
        if not self._connected.wait(self.timeout_s):
            raise DeliveryError("the broker did not answer the connection")
        if self._refused is not None:
            raise DeliveryError(
                f"the broker refused the connection ({self._refused}): check "
                "ZONNEWIJK_FLEET_MQTT_USERNAME/PASSWORD"
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK (refused: DeliveryError)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"publishing to {topic} failed: {exc}") from None
        if not info.is_published():
            raise DeliveryError(f"the broker did not acknowledge {topic}")

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        if not done.wait(self.timeout_s):
            raise DeliveryError(f"subscribing to {topic} was not acknowledged")

    def wait_for(
        self, predicate: Callable[[str, bytes], bool], timeout_s: float
    ) -> tuple[str, bytes] | None:
        """The first message so far or within ``timeout_s`` that ``predicate`` accepts."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                for topic, payload in self._messages:
                    if predicate(topic, payload):
                        return topic, payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._messages.clear()
                self._arrived.wait(remaining)


@contextmanager
def broker_link(login: BrokerLogin, *, timeout_s: float = 10.0) -> Iterator[BrokerLink]:
    link = BrokerLink(login, timeout_s=timeout_s)
    link.connect()
    try:
        yield link
    finally:
        link.close()


def deliver_config(link: BrokerLink, config: RemoteConfig, key_hex: str) -> None:
    """Publish ``config`` signed and retained on the gateway's config topic."""
    delivery = ConfigDelivery.signed(config, key_hex)
    link.publish(config_topic(config.gateway_id), delivery.model_dump_json().encode(), retain=True)


def request_diagnostics(
    link: BrokerLink,
    gateway_id: str,
    key_hex: str,
    *,
    timeout_s: float = 60.0,
    now: datetime | None = None,
) -> DiagnosticsBundle | None:
    """Ask the gateway for a diagnostics bundle; None when none came within ``timeout_s``."""
    command_id = secrets.token_hex(8)
    link.subscribe(diagnostics_topic(gateway_id))
    command = GatewayCommand.signed(
        gateway_id=gateway_id,
        command="diagnostics",
        command_id=command_id,
        issued_at=now or datetime.now(UTC),
        key_hex=key_hex,
    )
    link.publish(
        command_topic(gateway_id, "diagnostics"), command.model_dump_json().encode(), retain=False
    )

    def answers(topic: str, payload: bytes) -> bool:
        try:
            return DiagnosticsBundle.model_validate_json(payload).command_id == command_id
        except ValidationError:
            return False

    found = link.wait_for(answers, timeout_s)
    return None if found is None else DiagnosticsBundle.model_validate_json(found[1])
