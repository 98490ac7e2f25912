"""Intake and acknowledgement: the collector's MQTT session.

paho's network thread hands each delivered message to :meth:`Intake._on_message`, which puts
it on a bounded queue; the pipeline takes deliveries off the queue and, once they are stored,
gives them back to :meth:`Intake.ack` (``manual_ack=True``: the broker keeps a message until
it is acknowledged). The session is persistent (clean start off, a session expiry interval),
so a collector that was away gets what arrived meanwhile.

Collectors share the load through an MQTT shared subscription (``$share/<group>/...``): each
message goes to one member of the group.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.ingest.metrics import CollectorStats
from zonnewijk_wire import METER_FILTER, READINGS_FILTER, STATUS_FILTER

__all__ = ["DEFAULT_RECEIVE_MAXIMUM", "SESSION_EXPIRY_S", "Delivery", "Intake", "MqttConnection"]

log = logging.getLogger(__name__)

#: How many unacknowledged messages the broker may send us (MQTT v5 Receive Maximum).
DEFAULT_RECEIVE_MAXIMUM = 500
#: How long the broker keeps our session (and queued messages) while we are away [s].
SESSION_EXPIRY_S = 7 * 24 * 3600

#: paho's own log (connection events at DEBUG).
_MQTT_LOG = logging.getLogger("collector.mqtt")


def _not_connected_after_disconnect(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Client is not connected")


@dataclass(frozen=True)
class MqttConnection:
    """Where and how the collector connects to the broker."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "zonnewijk-collector-1"
    username: str | None = None
    password: str | None = None
    tls_ca: Path | None = None
    #: None: a plain subscription (one collector). A group name: several collectors share the
    #: load, but Debian's Mosquitto 2.0.11 does not restore an offline member's shared
    #: subscription after a broker restart (docs/collector.md).
    share_group: str | None = None
    receive_maximum: int = DEFAULT_RECEIVE_MAXIMUM
    subscribe_status: bool = True


@dataclass
class Delivery:
    """One message as the broker delivered it, on the connection ``generation``."""

    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


class Intake:
    """The MQTT client: subscribes, queues deliveries (bounded), acknowledges stored ones.

    ``stats`` and ``lock`` are the collector's: the intake keeps ``mqtt_connected``,
    ``in_flight`` and ``in_flight_max`` up to date under that lock.
    """

    def __init__(
        self,
        conn: MqttConnection,
        *,
        stats: CollectorStats,
        lock: threading.Lock,
        stopping: threading.Event,
    ) -> None:
        self.conn = conn
        self._stats = stats
        self._lock = lock
        self._stopping = stopping
        # Bounded: see _on_message.
        self.queue: queue.Queue[Delivery] = queue.Queue(maxsize=max(1, conn.receive_maximum))
        self._generation = 0
        self._connected = threading.Event()
        #: The SUBSCRIBE in flight: its message id and topic filters.
        self._subscribing: tuple[int, list[str]] = (-1, [])
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.conn.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.conn.username:
            client.username_pw_set(self.conn.username, self.conn.password)
        if self.conn.tls_ca:
            client.tls_set(ca_certs=str(self.conn.tls_ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.enable_logger(_MQTT_LOG)  # paho's own log, at DEBUG
        return client

    def _subscription(self, topic_filter: str) -> str:
        if self.conn.share_group:
            return f"$share/{self.conn.share_group}/{topic_filter}"
        return topic_filter

    @property
    def readings_subscription(self) -> str:
        return self._subscription(READINGS_FILTER)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the collector: %s", reason_code, extra={"event": "refused"})
            return
        self._generation += 1
        log.info(
            "connected to %s:%s (session present: %s)",
            self.conn.host,
            self.conn.port,
            flags.session_present,
            extra={"event": "connected", "session_present": flags.session_present},
        )
        topics = [(self.readings_subscription, 1), (self._subscription(METER_FILTER), 1)]
        if self.conn.subscribe_status:
            topics.append((self._subscription(STATUS_FILTER), 1))
        _, mid = client.subscribe(topics)
        self._subscribing = (-1 if mid is None else mid, [t for t, _ in topics])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        """Connected means subscribed: a message published before the broker took the
        SUBSCRIBE would not reach a new session (so /health and wait_connected wait for it)."""
        expected_mid, topics = self._subscribing
        if mid != expected_mid:
            return
        refused = [t for t, rc in zip(topics, reason_codes, strict=False) if rc.is_failure]
        if refused:
            log.error(
                "broker refused the collector's subscription to %s: %s - check its ACL",
                ", ".join(refused),
                ", ".join(str(rc) for rc in reason_codes if rc.is_failure),
                extra={"event": "subscription_refused"},
            )
            return
        with self._lock:
            self._stats.mqtt_connected = True
        self._connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        # Deliveries of the old connection must not be acknowledged on the new one: their
        # message ids mean nothing there. The broker redelivers whatever we did not ack, so
        # the queued ones are dropped: memory stays bounded across reconnects.
        self._generation += 1
        dropped = 0
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
            dropped += 1
        with self._lock:
            self._stats.mqtt_connected = False
            self._stats.in_flight -= dropped
        if not self._stopping.is_set():
            log.warning(
                "disconnected from broker: %s; reconnecting (%d queued deliveries left to "
                "the broker)",
                reason_code,
                dropped,
                extra={"event": "disconnected"},
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        delivery = Delivery(self._generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload))
        # The broker should send no more than the receive maximum unacknowledged, but Debian's
        # Mosquitto 2.0.11 overshoots it once acknowledgements flow again (measured: ~280 with
        # a maximum of 20). So the queue is bounded too: when it is full, this blocks paho's
        # network thread, which stops reading the socket, and TCP holds the broker back.
        # Unacknowledged deliveries in memory: the queue (receive maximum) plus three batches
        # (being prepared, prepared and waiting, being written) of batch_max_points points
        # each (plus the message that filled the batch).
        with self._lock:
            self._stats.in_flight += 1
            self._stats.in_flight_max = max(self._stats.in_flight_max, self._stats.in_flight)
        while True:
            try:
                self.queue.put(delivery, timeout=0.5)
                return
            except queue.Full:
                if self._stopping.is_set():
                    break
        with self._lock:  # not acknowledged: the broker redelivers it next session
            self._stats.in_flight -= 1

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge stored deliveries (those of the current connection) to the broker."""
        generation = self._generation
        for d in deliveries:
            # A delivery of an earlier connection is not acknowledged: its message id means
            # nothing on this one, and the broker redelivers it anyway.
            if d.qos > 0 and d.generation == generation:
                self._client.ack(d.mid, d.qos)
        with self._lock:
            self._stats.in_flight -= len(deliveries)

    def publish(self, topic: str, payload: str) -> None:
        """Publish at QoS 1 on the collector's own connection (dead letters)."""
        self._client.publish(topic, payload, qos=1)

    def next_delivery(self, deadline: float) -> Delivery | None:
        """The next delivery, waiting until ``deadline`` (``time.monotonic()``) at most."""
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                return self.queue.get(timeout=remaining)
            except queue.Empty:
                return None

    def connect(self) -> None:
        """Connect in the background (paho's network thread reconnects by itself)."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.conn.receive_maximum
        self._client.connect_async(
            self.conn.host, self.conn.port, keepalive=30, clean_start=False, properties=props
        )
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> None:
        """Wait for the connection up to ``timeout_s``; log a warning when it is not there yet."""
        if timeout_s and not self._connected.wait(timeout_s):
            log.warning(
                "collector not connected to %s:%s after %.0f s; still trying",
                self.conn.host,
                self.conn.port,
                timeout_s,
            )

    def disconnect(self) -> None:
        """Disconnect and stop paho's network thread."""
        # paho's network thread may run one more round after disconnect() closed the socket
        # and logs that as an ERROR ("Client is not connected"): expected here, not an error.
        _MQTT_LOG.addFilter(_not_connected_after_disconnect)
        try:
            self._client.disconnect()
            self._client.loop_stop()
        finally:
            _MQTT_LOG.removeFilter(_not_connected_after_disconnect)
