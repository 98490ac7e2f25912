"""The collector: MQTT readings in, InfluxDB points out, acknowledged only once stored.

Flow: paho's network thread puts each delivered message on a queue; one writer thread takes
messages off it in batches, decodes them (:func:`gateway_firmware.wire.decode_batch`), writes
their points to InfluxDB and only then acknowledges them (``manual_ack=True``). While InfluxDB is
down, the writer keeps retrying the same batch and acknowledges nothing, so the broker keeps
the messages (persistent session) and stops sending more once the receive maximum of
unacknowledged messages is reached: memory stays bounded.

A message that cannot be used is logged with its reason, published to the dead-letter topic
with the original payload, counted by reason, and acknowledged (redelivering it would not
help). Good readings of a batch are stored even when others in it are rejected.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.influx import InfluxClient, InfluxError, InfluxWriteError, Point
from collector.points import reading_points
from gateway_firmware.wire import (
    DEADLETTER_TOPIC,
    READINGS_FILTER,
    WireError,
    decode_batch,
    gateway_id_from_topic,
)

log = logging.getLogger(__name__)

#: How many unacknowledged messages the broker may send us (MQTT v5 Receive Maximum).
DEFAULT_RECEIVE_MAXIMUM = 500
#: How long the broker keeps our session (and queued messages) while we are away [s].
SESSION_EXPIRY_S = 7 * 24 * 3600


@dataclass(frozen=True)
class MqttConnection:
    """Where and how the collector connects to the broker."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "zonnewijk-collector-1"
    username: str | None = None
    password: str | None = None
    tls_ca: Path | None = None
    share_group: str | None = "collectors"
    receive_maximum: int = DEFAULT_RECEIVE_MAXIMUM


@dataclass
class _Delivery:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


@dataclass
class CollectorStats:
    """Counters of what the collector did; read by the demo, /metrics and tests."""

    messages: int = 0
    readings_stored: int = 0
    points_written: int = 0
    batches_written: int = 0
    rejected_messages: Counter[str] = field(default_factory=Counter)
    rejected_readings: Counter[str] = field(default_factory=Counter)
    write_errors: int = 0
    last_write_s: float = 0.0
    last_seen: dict[str, datetime] = field(default_factory=dict)

    def rejected_total(self) -> int:
        return sum(self.rejected_messages.values()) + sum(self.rejected_readings.values())


@dataclass(frozen=True)
class Rejection:
    """Why a message or one of its readings was not stored."""

    topic: str
    reason: str
    detail: str
    original: object
    reading_index: int | None = None


@dataclass
class ProcessedMessage:
    points: list[Point]
    readings: int
    rejections: list[Rejection]
    gateway_id: str | None


def process_message(topic: str, payload: bytes) -> ProcessedMessage:
    """Decode one readings message into points and rejections (pure, no I/O)."""
    gateway_id = gateway_id_from_topic(topic)
    try:
        decoded = decode_batch(payload, topic_gateway_id=gateway_id)
    except WireError as exc:
        original: object = payload.decode("utf-8", errors="replace")
        return ProcessedMessage(
            [], 0, [Rejection(topic, exc.reason, exc.detail, original)], gateway_id
        )
    points = [p for r in decoded.readings for p in reading_points(decoded.gateway_id, r)]
    rejections = [
        Rejection(topic, r.reason, r.detail, r.original, reading_index=r.index)
        for r in decoded.rejected
    ]
    return ProcessedMessage(points, len(decoded.readings), rejections, decoded.gateway_id)


class Collector:
    """Subscribes to every gateway's readings and stores them in InfluxDB.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        mqtt_connection: MqttConnection,
        influx: InfluxClient,
        batch_max_points: int = 5000,
        batch_max_wait_s: float = 0.2,
        on_rejection: Callable[[Rejection], None] | None = None,
    ) -> None:
        self.conn = mqtt_connection
        self.influx = influx
        self.batch_max_points = batch_max_points
        self.batch_max_wait_s = batch_max_wait_s
        self.on_rejection = on_rejection
        self.stats = CollectorStats()
        self._queue: queue.Queue[_Delivery] = queue.Queue()
        self._generation = 0
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._client = self._make_client()

    # -- MQTT -------------------------------------------------------------------------------

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
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        return client

    @property
    def readings_subscription(self) -> str:
        if self.conn.share_group:
            return f"$share/{self.conn.share_group}/{READINGS_FILTER}"
        return READINGS_FILTER

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the collector: %s", reason_code)
            return
        self._generation += 1
        log.info(
            "connected to %s:%s (session present: %s)",
            self.conn.host,
            self.conn.port,
            flags.session_present,
        )
        client.subscribe(self.readings_subscription, qos=1)
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
        # message ids mean nothing there. The broker redelivers whatever we did not ack.
        self._generation += 1
        if not self._stopping.is_set():
            log.warning("disconnected from broker: %s; reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._queue.put(
            _Delivery(self._generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload))
        )

    def _ack(self, deliveries: Sequence[_Delivery]) -> None:
        for d in deliveries:
            if d.qos > 0 and d.generation == self._generation:
                self._client.ack(d.mid, d.qos)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, *, wait_connected_s: float = 10.0) -> None:
        self.influx.create_database()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.conn.receive_maximum
        self._client.connect_async(
            self.conn.host, self.conn.port, keepalive=30, clean_start=False, properties=props
        )
        self._client.loop_start()
        self._writer = threading.Thread(
            target=self._write_loop, name="collector-writer", daemon=True
        )
        self._writer.start()
        if wait_connected_s and not self._connected.wait(wait_connected_s):
            log.warning(
                "collector not connected to %s:%s after %.0f s; still trying",
                self.conn.host,
                self.conn.port,
                wait_connected_s,
            )

    def stop(self) -> None:
        self._stopping.set()
        if self._writer is not None:
            self._writer.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout_s: float = 10.0, quiet_s: float = 0.5) -> bool:
        """Wait until no message arrived and the queue is empty for ``quiet_s`` (tests, demo)."""
        deadline = time.monotonic() + timeout_s
        last_count = -1
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            count = self.stats.messages
            if count != last_count or not self._queue.empty():
                last_count = count
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return True
            time.sleep(0.05)
        return False

    # -- writing ----------------------------------------------------------------------------

    def _next_batch(self) -> list[_Delivery]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_max_wait_s
        size = len(first.payload)
        # Roughly 150 bytes of JSON per point; stop early when the batch is large enough.
        while size < self.batch_max_points * 150:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            batch.append(item)
            size += len(item.payload)
        return batch

    def _write_loop(self) -> None:
        while not self._stopping.is_set():
            batch = self._next_batch()
            if batch:
                self._handle(batch)

    def _handle(self, deliveries: list[_Delivery]) -> None:
        processed = [process_message(d.topic, d.payload) for d in deliveries]
        points = [p for m in processed for p in m.points]
        if not self._write_with_retry(points, deliveries, processed):
            return  # stopping: nothing acknowledged, the broker redelivers
        now = datetime.now(UTC)
        for message in processed:
            self.stats.messages += 1
            self.stats.readings_stored += message.readings
            if message.gateway_id and message.readings:
                self.stats.last_seen[message.gateway_id] = now
            for rejection in message.rejections:
                self._reject(rejection)
        self._ack(deliveries)

    def _write_with_retry(
        self, points: list[Point], deliveries: list[_Delivery], processed: list[ProcessedMessage]
    ) -> bool:
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                self.influx.write_points(points, batch_size=self.batch_max_points)
            except InfluxWriteError as exc:
                # The server refused some line: isolate the offending message(s).
                log.error("InfluxDB refused a batch (%s); retrying message by message", exc)
                self.stats.write_errors += 1
                return self._write_one_by_one(processed)
            except InfluxError as exc:
                self.stats.write_errors += 1
                log.warning("InfluxDB unavailable (%s); holding %d messages", exc, len(deliveries))
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, 10.0)
                continue
            self.stats.last_write_s = time.monotonic() - started
            self.stats.points_written += len(points)
            self.stats.batches_written += 1
            return True

    def _write_one_by_one(self, processed: list[ProcessedMessage]) -> bool:
        for message in processed:
            try:
                self.influx.write_points(message.points)
            except InfluxWriteError as exc:
                message.rejections.append(
                    Rejection(
                        topic=f"gateway {message.gateway_id}",
                        reason="influx_refused",
                        detail=exc.message,
                        original=[p.to_line() for p in message.points][:50],
                    )
                )
                message.readings = 0
                message.points = []
            except InfluxError:
                return self._write_with_retry(
                    [p for m in processed for p in m.points], [], processed
                )
            else:
                self.stats.points_written += len(message.points)
        return True

    def _reject(self, rejection: Rejection) -> None:
        if rejection.reading_index is None:
            self.stats.rejected_messages[rejection.reason] += 1
        else:
            self.stats.rejected_readings[rejection.reason] += 1
        log.warning(
            "rejected %s on %s%s: %s",
            "reading" if rejection.reading_index is not None else "message",
            rejection.topic,
            f" [reading {rejection.reading_index}]" if rejection.reading_index is not None else "",
            f"{rejection.reason}: {rejection.detail}",
        )
        envelope = {
            "reason": rejection.reason,
            "detail": rejection.detail,
            "topic": rejection.topic,
            "reading_index": rejection.reading_index,
            "received_at": datetime.now(UTC).isoformat(),
            "original": _jsonable(rejection.original),
        }
        self._client.publish(DEADLETTER_TOPIC, json.dumps(envelope), qos=1)
        if self.on_rejection is not None:
            self.on_rejection(rejection)


def _jsonable(value: object) -> object:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        if isinstance(value, bytes):
            return {"base64": base64.b64encode(value).decode()}
        return repr(value)
    return value
