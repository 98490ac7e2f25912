"""The collector: MQTT readings in, InfluxDB points out, acknowledged only once stored.

Flow: paho's network thread puts each delivered message on a queue; a processing thread takes
messages off it in batches, decodes them (:mod:`collector.ingest.decode`, falling back to
:func:`zonnewijk_wire.decode_batch` for the reasons), validates them
(:mod:`collector.ingest.validate`) and turns them into line protocol; a writer thread writes each
prepared batch to InfluxDB and only then acknowledges its messages (``manual_ack=True``), in the
order they arrived. The two stages overlap: the next batch is prepared while InfluxDB stores the
last one (one prepared batch waits at most). While InfluxDB is down, the writer keeps retrying
the same batch and acknowledges nothing, so the broker keeps the messages (persistent session)
and stops sending more once the receive maximum of unacknowledged messages is reached: memory
stays bounded, and writing resumes by itself when InfluxDB is back.

Collectors share the load through an MQTT shared subscription (``$share/<group>/...``): each
message goes to one member of the group.

A message or reading that cannot be used is logged with its reason, published to the
dead-letter topic with the original payload, counted by reason, and acknowledged (redelivering
it would not help). Good readings of a batch are stored even when others in it are rejected.

Besides the readings, the collector stores what the fault detector needs to know about each
gateway (see ``docs/collector.md``): measurement ``gateway_seen`` (one point per readings
message, at the time it was stored) and ``gateway_status`` (the gateway's status messages).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import queue
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from collector.ingest.decode import decode_readings
from collector.ingest.lines import reading_lines
from collector.ingest.metrics import CollectorMetrics, CollectorStats
from collector.ingest.validate import ReadingValidator
from collector.timeseries.influx import (
    FieldValue,
    InfluxClient,
    InfluxError,
    InfluxWriteError,
    Point,
)
from collector.timeseries.measurements import INVERTER_MEASUREMENT, reading_points
from collector.timeseries.schema import RollupBackfiller
from zonnewijk_wire import (
    DEADLETTER_TOPIC,
    READINGS_FILTER,
    STATUS_FILTER,
    GatewayStatus,
    Reading,
    ReadingView,
    WireError,
    decode_batch,
    gateway_id_from_topic,
)

__all__ = [
    "GATEWAY_SEEN_MEASUREMENT",
    "GATEWAY_STATUS_MEASUREMENT",
    "Collector",
    "CollectorStats",
    "MqttConnection",
    "ProcessedMessage",
    "Rejection",
    "process_message",
]

log = logging.getLogger(__name__)

#: How many unacknowledged messages the broker may send us (MQTT v5 Receive Maximum).
DEFAULT_RECEIVE_MAXIMUM = 500
#: How long the broker keeps our session (and queued messages) while we are away [s].
SESSION_EXPIRY_S = 7 * 24 * 3600
#: One point per stored readings message: when each gateway was last heard from.
GATEWAY_SEEN_MEASUREMENT = "gateway_seen"
#: The gateways' own status messages (online/offline, spool depth).
GATEWAY_STATUS_MEASUREMENT = "gateway_status"


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
class _Delivery:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


@dataclass
class _Prepared:
    """A batch of deliveries turned into lines, waiting for the writer."""

    deliveries: list[_Delivery]
    processed: list[ProcessedMessage]
    lines: list[str]
    seen: dict[str, tuple[int, datetime | None]]
    now: datetime


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
    """What one MQTT message turns into: lines to write and rejections to report."""

    lines: list[str]
    readings: int
    rejections: list[Rejection]
    gateway_id: str | None
    is_status: bool = False
    newest_reading: datetime | None = None
    oldest_reading: datetime | None = None
    #: The readings the lines store (``points`` rebuilds them as :class:`Point` objects).
    good: tuple[ReadingView, ...] = ()
    status_point: Point | None = None

    @property
    def points(self) -> list[Point]:
        """The stored points as objects (tests, tools); the collector writes ``lines``."""
        if self.status_point is not None:
            return [self.status_point]
        if not self.lines:
            return []
        gateway = self.gateway_id or ""
        return [p for r in self.good for p in reading_points(gateway, r)]


#: Reasons the wire decoder may give as ``invalid_<field>``; anything else is a sender's key.
_KNOWN_FIELDS = frozenset(
    {"message", "v", "gateway_id", "seq", "sent_at", "readings"}
    | set(Reading.model_fields)
    | set(GatewayStatus.model_fields)
)


#: paho's own log (connection events at DEBUG).
_MQTT_LOG = logging.getLogger("collector.mqtt")


def _not_connected_after_disconnect(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Client is not connected")


def metric_reason(reason: str) -> str:
    """Keep reasons a bounded vocabulary (they are metric labels): ``invalid_<unknown key>``
    becomes ``unknown_field``; the detail still names the key."""
    if reason.startswith("invalid_") and reason[len("invalid_") :] not in _KNOWN_FIELDS:
        return "unknown_field"
    return reason


def _is_status_topic(topic: str) -> bool:
    return topic.endswith("/status")


def process_message(
    topic: str,
    payload: bytes,
    validator: ReadingValidator | None = None,
    *,
    now: datetime | None = None,
) -> ProcessedMessage:
    """Decode and validate one message into points and rejections (no I/O).

    ``validator`` defaults to one that knows every gateway and device (no registry).
    """
    now = now or datetime.now(UTC)
    if validator is None:
        validator = ReadingValidator()
    gateway_id = gateway_id_from_topic(topic)
    if _is_status_topic(topic):
        return _process_status(topic, payload, gateway_id, now)
    readings: Sequence[ReadingView]
    rejections: list[Rejection] = []
    original_index: Sequence[int]
    fast = decode_readings(payload, gateway_id)
    if fast is not None:  # the common case: a wholly valid batch
        batch_gateway = fast.gateway_id
        readings = fast.readings
        original_index = range(len(readings))
    else:  # the wire model decides, and gives the reasons
        try:
            decoded = decode_batch(payload, topic_gateway_id=gateway_id)
        except WireError as exc:
            return ProcessedMessage(
                [],
                0,
                [Rejection(topic, metric_reason(exc.reason), exc.detail, _payload_text(payload))],
                gateway_id,
            )
        batch_gateway = decoded.gateway_id
        readings = decoded.readings
        rejections = [
            Rejection(topic, metric_reason(r.reason), r.detail, r.original, reading_index=r.index)
            for r in decoded.rejected
        ]
        rejected_indices = {r.index for r in decoded.rejected}
        original_index = [
            i for i in range(len(readings) + len(rejected_indices)) if i not in rejected_indices
        ]
    problem = validator.check_gateway(batch_gateway)
    if problem is not None:
        return ProcessedMessage(
            [],
            0,
            [Rejection(topic, problem.reason, problem.detail, _payload_text(payload))],
            batch_gateway,
        )
    good, bad = validator.validate(batch_gateway, readings, now)
    for index, reading, prob in bad:
        rejections.append(
            Rejection(
                topic,
                prob.reason,
                prob.detail,
                reading_json(reading),
                reading_index=original_index[index],
            )
        )
    lines: list[str] = []
    stored: list[ReadingView] = []
    for reading in good:
        try:
            lines.extend(reading_lines(batch_gateway, reading))
        except ValueError as exc:  # e.g. a raw key with a newline: not writable
            rejections.append(
                Rejection(
                    topic,
                    "unstorable_value",
                    str(exc)[:300],
                    reading_json(reading),
                    reading_index=original_index[_index_of(readings, reading)],
                )
            )
        else:
            stored.append(reading)
    if rejections:
        rejections.sort(key=lambda r: r.reading_index or 0)
    newest = max((r.ts for r in stored), default=None)
    oldest = min((r.ts for r in stored), default=None)
    return ProcessedMessage(
        lines, len(stored), rejections, batch_gateway, False, newest, oldest, tuple(stored)
    )


def _index_of(readings: Sequence[ReadingView], reading: ReadingView) -> int:
    """Position of this very object in the batch (readings may be equal, never identical)."""
    return next(i for i, r in enumerate(readings) if r is reading)


def reading_json(reading: ReadingView) -> object:
    """A reading as the JSON of wire v1 (the dead letter's ``original``), from either decoder."""
    model = (
        reading
        if isinstance(reading, Reading)
        else Reading.model_validate(msgspec.to_builtins(reading, enc_hook=datetime.isoformat))
    )
    return model.model_dump(mode="json", exclude_none=True)


def _process_status(
    topic: str, payload: bytes, gateway_id: str | None, now: datetime
) -> ProcessedMessage:
    try:
        status = GatewayStatus.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        return ProcessedMessage(
            [],
            0,
            [
                Rejection(
                    topic, "invalid_status", f"{where}: {first['msg']}", _payload_text(payload)
                )
            ],
            gateway_id,
            is_status=True,
        )
    if gateway_id is not None and status.gateway_id != gateway_id:
        return ProcessedMessage(
            [],
            0,
            [
                Rejection(
                    topic,
                    "gateway_mismatch",
                    f"status says gateway {status.gateway_id!r} but was published under "
                    f"{gateway_id!r}",
                    _payload_text(payload),
                )
            ],
            gateway_id,
            is_status=True,
        )
    fields: dict[str, FieldValue] = {"state": status.state}
    if status.spool_depth is not None:
        fields["spool_depth"] = status.spool_depth
    if status.spool_dropped is not None:
        fields["spool_dropped"] = status.spool_dropped
    if status.firmware_version:
        fields["firmware_version"] = status.firmware_version.replace("\n", " ")
    if status.last_poll:
        fields["last_poll"] = status.last_poll.replace("\n", " ")
    # The will ("offline") carries no time: it is stored when the broker sent it.
    point = Point(
        GATEWAY_STATUS_MEASUREMENT, {"gateway": status.gateway_id}, fields, status.ts or now
    )
    return ProcessedMessage(
        [point.to_line()], 0, [], status.gateway_id, is_status=True, status_point=point
    )


def _payload_text(payload: bytes) -> object:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(payload).decode()}


class Collector:
    """Subscribes to every gateway's readings and stores them in InfluxDB.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        mqtt_connection: MqttConnection,
        influx: InfluxClient,
        validator: ReadingValidator | None = None,
        batch_max_points: int = 5000,
        batch_max_wait_s: float = 0.2,
        on_rejection: Callable[[Rejection], None] | None = None,
        seed_counters: bool = True,
        backfiller: RollupBackfiller | None = None,
    ) -> None:
        self.conn = mqtt_connection
        self.influx = influx
        self.validator = validator or ReadingValidator()
        self.batch_max_points = batch_max_points
        self.batch_max_wait_s = batch_max_wait_s
        self.on_rejection = on_rejection
        self.seed_counters = seed_counters
        self.backfiller = backfiller
        #: How often the collector logs one line of its state [s].
        self.heartbeat_s = 60.0
        self.stats = CollectorStats()
        self._lock = threading.Lock()
        self.metrics = CollectorMetrics(self.stats, self._lock)
        # Bounded: see _on_message.
        self._queue: queue.Queue[_Delivery] = queue.Queue(maxsize=max(1, self.conn.receive_maximum))
        self._generation = 0
        self._connected = threading.Event()
        self._stopping = threading.Event()
        #: Prepared batches waiting for the writer: one, so preparing overlaps one write.
        self._prepared: queue.Queue[_Prepared] = queue.Queue(maxsize=1)
        #: Batches taken off the queue and not yet acknowledged (for wait_idle).
        self._batches_open = 0
        self._threads: list[threading.Thread] = []
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
        topics = [(self.readings_subscription, 1)]
        if self.conn.subscribe_status:
            topics.append((self._subscription(STATUS_FILTER), 1))
        client.subscribe(topics)
        with self._lock:
            self.stats.mqtt_connected = True
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
                self._queue.get_nowait()
            except queue.Empty:
                break
            dropped += 1
        with self._lock:
            self.stats.mqtt_connected = False
            self.stats.in_flight -= dropped
        if not self._stopping.is_set():
            log.warning(
                "disconnected from broker: %s; reconnecting (%d queued deliveries left to "
                "the broker)",
                reason_code,
                dropped,
                extra={"event": "disconnected"},
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        delivery = _Delivery(self._generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload))
        # The broker should send no more than the receive maximum unacknowledged, but Debian's
        # Mosquitto 2.0.11 overshoots it once acknowledgements flow again (measured: ~280 with
        # a maximum of 20). So the queue is bounded too: when it is full, this blocks paho's
        # network thread, which stops reading the socket, and TCP holds the broker back.
        # Unacknowledged deliveries in memory: the queue (receive maximum) plus three batches
        # (being prepared, prepared and waiting, being written) of batch_max_points points
        # each (plus the message that filled the batch).
        with self._lock:
            self.stats.in_flight += 1
            self.stats.in_flight_max = max(self.stats.in_flight_max, self.stats.in_flight)
        while True:
            try:
                self._queue.put(delivery, timeout=0.5)
                return
            except queue.Full:
                if self._stopping.is_set():
                    break
        with self._lock:  # not acknowledged: the broker redelivers it next session
            self.stats.in_flight -= 1

    def _ack(self, deliveries: Sequence[_Delivery]) -> None:
        generation = self._generation
        for d in deliveries:
            # A delivery of an earlier connection is not acknowledged: its message id means
            # nothing on this one, and the broker redelivers it anyway.
            if d.qos > 0 and d.generation == generation:
                self._client.ack(d.mid, d.qos)
        with self._lock:
            self.stats.in_flight -= len(deliveries)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, *, wait_connected_s: float = 10.0) -> None:
        self._prepare_influx()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.conn.receive_maximum
        self._client.connect_async(
            self.conn.host, self.conn.port, keepalive=30, clean_start=False, properties=props
        )
        self._client.loop_start()
        self._threads = [
            threading.Thread(target=self._process_loop, name="collector-process", daemon=True),
            threading.Thread(target=self._write_loop, name="collector-writer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        if wait_connected_s and not self._connected.wait(wait_connected_s):
            log.warning(
                "collector not connected to %s:%s after %.0f s; still trying",
                self.conn.host,
                self.conn.port,
                wait_connected_s,
            )

    def _prepare_influx(self) -> None:
        """Create the database and seed the counter memory; InfluxDB may still be down."""
        try:
            self.influx.create_database()
            if self.seed_counters:
                self._seed_counters()
        except InfluxError as exc:
            log.warning("InfluxDB not ready at start (%s); writes will retry", exc)
            with self._lock:
                self.stats.influx_up = False

    def _seed_counters(self) -> None:
        rows = self.influx.query_records(
            f'SELECT last("ac_energy_wh") FROM "{INVERTER_MEASUREMENT}" '
            'WHERE time > now() - 30d GROUP BY "gateway", "device"'
        )
        for row in rows:
            if row.get("last") is None:
                continue
            ts = datetime.fromtimestamp(row["time"] / 1000, UTC)
            self.validator.counters.update(row["gateway"], row["device"], ts, float(row["last"]))
        log.info("remembered the last counter of %d devices", len(rows))

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)
        # paho's network thread may run one more round after disconnect() closed the socket
        # and logs that as an ERROR ("Client is not connected"): expected here, not an error.
        _MQTT_LOG.addFilter(_not_connected_after_disconnect)
        try:
            self._client.disconnect()
            self._client.loop_stop()
        finally:
            _MQTT_LOG.removeFilter(_not_connected_after_disconnect)

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout_s: float = 10.0, quiet_s: float = 0.5) -> bool:
        """Wait until nothing is in flight and nothing arrived for ``quiet_s`` (tests, demo)."""
        deadline = time.monotonic() + timeout_s
        last_count = -1
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                count = self.stats.messages + self.stats.status_messages
                busy = self.stats.in_flight > 0 or self._batches_open > 0
            if count != last_count or busy or not self._queue.empty():
                last_count = count
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return True
            time.sleep(0.05)
        return False

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when connected to the broker and the last InfluxDB write succeeded."""
        with self._lock:
            s = self.stats
            detail: dict[str, Any] = {
                "mqtt_connected": s.mqtt_connected,
                "influx_up": s.influx_up,
                "queue_depth": s.in_flight,
                "messages": s.messages,
                "readings_stored": s.readings_stored,
                "rejected": s.rejected_total(),
            }
            ok = s.mqtt_connected and s.influx_up
        return ok, detail

    def _log_heartbeat(self) -> None:
        with self._lock:
            s = self.stats
            state = {
                "event": "heartbeat",
                "messages": s.messages,
                "readings_stored": s.readings_stored,
                "rejected": s.rejected_total(),
                "in_flight": s.in_flight,
                "queued": self._queue.qsize(),
                "mqtt_connected": s.mqtt_connected,
                "influx_up": s.influx_up,
            }
        log.info(
            "%(messages)d messages, %(readings_stored)d readings stored, %(rejected)d rejected, "
            "%(in_flight)d in flight",
            state,
            extra=state,
        )

    # -- writing ----------------------------------------------------------------------------

    def _next_delivery(self, deadline: float) -> _Delivery | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                return self._queue.get(timeout=remaining)
            except queue.Empty:
                return None

    def _next_batch(self) -> _Prepared | None:
        """Take messages off the queue and prepare them, one by one as they arrive, until the
        batch holds ``batch_max_points`` points or ``batch_max_wait_s`` has passed."""
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return None
        with self._lock:
            self._batches_open += 1
        deadline = time.monotonic() + self.batch_max_wait_s
        deliveries = [first]
        processed = [self._process(first)]
        points = len(processed[0].lines)
        while points < self.batch_max_points:
            item = self._next_delivery(deadline)
            if item is None:
                break
            deliveries.append(item)
            processed.append(self._process(item))
            points += len(processed[-1].lines)
        return self._prepare(deliveries, processed)

    def _process_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                prepared = self._next_batch()
            except Exception:  # never let the collector die: the broker keeps the messages
                log.exception(
                    "collector failed to prepare a batch; the broker redelivers it on the "
                    "next connection"
                )
                with self._lock:
                    self._batches_open -= 1
                continue
            if prepared is None:
                continue
            while not self._stopping.is_set():
                try:
                    self._prepared.put(prepared, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def _write_loop(self) -> None:
        next_heartbeat = time.monotonic() + self.heartbeat_s
        while not self._stopping.is_set():
            if time.monotonic() >= next_heartbeat:
                next_heartbeat = time.monotonic() + self.heartbeat_s
                self._log_heartbeat()
            if self.backfiller is not None:
                self.backfiller.run_if_due()
            try:
                prepared = self._prepared.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._store(prepared)
            except Exception:  # never let the writer die: the broker keeps the messages
                log.exception(
                    "collector writer failed on a batch; the broker redelivers it on the "
                    "next connection"
                )
            finally:
                with self._lock:
                    self._batches_open -= 1

    def _prepare(self, deliveries: list[_Delivery], processed: list[ProcessedMessage]) -> _Prepared:
        """The batch's lines plus a ``gateway_seen`` point per gateway (CPU only, no I/O)."""
        now = datetime.now(UTC)
        seen: dict[str, tuple[int, datetime | None]] = {}
        for m in processed:
            if m.gateway_id and m.readings:
                count, newest = seen.get(m.gateway_id, (0, None))
                if newest is None or (m.newest_reading and m.newest_reading > newest):
                    newest = m.newest_reading
                seen[m.gateway_id] = (count + m.readings, newest)
        extra = [
            Point(
                GATEWAY_SEEN_MEASUREMENT,
                {"gateway": gw},
                {
                    "readings": n,
                    "newest_reading_ms": int(newest.timestamp() * 1000) if newest else 0,
                },
                now,
            )
            for gw, (n, newest) in seen.items()
        ]
        lines = [line for m in processed for line in m.lines] + [p.to_line() for p in extra]
        return _Prepared(deliveries, processed, lines, seen, now)

    def _store(self, prepared: _Prepared) -> None:
        """Write a prepared batch, then count, report rejections and acknowledge."""
        processed, now = prepared.processed, prepared.now
        if not self._write_with_retry(prepared.lines, processed):
            return  # stopping: nothing acknowledged, the broker redelivers
        with self._lock:
            for message in processed:
                if message.is_status:
                    self.stats.status_messages += 1
                else:
                    self.stats.messages += 1
                self.stats.readings_stored += message.readings
            for gw in prepared.seen:
                self.stats.last_seen[gw] = now
        for message in processed:
            for rejection in message.rejections:
                self._reject(rejection)
            if self.backfiller and message.oldest_reading and message.newest_reading:
                self.backfiller.note(message.oldest_reading, message.newest_reading, now)
        self._ack(prepared.deliveries)

    def _process(self, delivery: _Delivery) -> ProcessedMessage:
        try:
            return process_message(delivery.topic, delivery.payload, self.validator)
        except Exception as exc:  # a bug must cost one message, not the collector
            log.exception("could not process a message on %s", delivery.topic)
            return ProcessedMessage(
                [],
                0,
                [
                    Rejection(
                        delivery.topic,
                        "internal_error",
                        f"{type(exc).__name__}: {exc}"[:500],
                        _payload_text(delivery.payload),
                    )
                ],
                gateway_id_from_topic(delivery.topic),
            )

    def _write_lines(self, lines: list[str]) -> None:
        """One request per batch; a batch the last message made larger than twice the limit
        is split into even parts."""
        if not lines:
            return
        parts = math.ceil(len(lines) / (2 * self.batch_max_points))
        step = math.ceil(len(lines) / parts)
        for first in range(0, len(lines), step):
            self.influx.write_lines(lines[first : first + step])

    def _write_with_retry(self, lines: list[str], processed: list[ProcessedMessage]) -> bool:
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                self._write_lines(lines)
            except InfluxWriteError as exc:
                # The server refused some line: isolate the offending message(s).
                log.error("InfluxDB refused a batch (%s); retrying message by message", exc)
                with self._lock:
                    self.stats.write_errors += 1
                return self._write_one_by_one(processed)
            except InfluxError as exc:
                with self._lock:
                    self.stats.write_errors += 1
                    self.stats.influx_up = False
                    holding = self.stats.in_flight
                log.warning(
                    "InfluxDB unavailable (%s); holding %d messages, retrying in %.1f s",
                    exc,
                    holding,
                    delay,
                    extra={"event": "influx_unavailable", "holding": holding},
                )
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, 10.0)
                continue
            elapsed = time.monotonic() - started
            self.metrics.write_seconds.observe(elapsed)
            self.metrics.batch_points.observe(len(lines))
            self.metrics.batch_messages.observe(len(processed))
            with self._lock:
                if not self.stats.influx_up:
                    log.info("InfluxDB accepts writes again", extra={"event": "influx_back"})
                self.stats.influx_up = True
                self.stats.last_write_s = elapsed
                self.stats.points_written += len(lines)
                self.stats.batches_written += 1
            return True

    def _write_one_by_one(self, processed: list[ProcessedMessage]) -> bool:
        for index, message in enumerate(processed):
            try:
                self._write_lines(message.lines)
            except InfluxWriteError as exc:
                message.rejections.append(
                    Rejection(
                        topic=f"gateway {message.gateway_id}",
                        reason="influx_refused",
                        detail=exc.message,
                        original=message.lines[:50],
                    )
                )
                message.readings = 0
                message.lines = []
                message.good = ()
            except InfluxError:
                return self._write_with_retry(
                    [line for m in processed[index:] for line in m.lines], processed[index:]
                )
            else:
                with self._lock:
                    self.stats.points_written += len(message.lines)
        return True

    def _reject(self, rejection: Rejection) -> None:
        kind = "message" if rejection.reading_index is None else "reading"
        with self._lock:
            if rejection.reading_index is None:
                self.stats.rejected_messages[rejection.reason] += 1
            else:
                self.stats.rejected_readings[rejection.reason] += 1
        log.warning(
            "rejected %s on %s%s: %s: %s",
            kind,
            rejection.topic,
            f" [reading {rejection.reading_index}]" if rejection.reading_index is not None else "",
            rejection.reason,
            rejection.detail,
            extra={
                "event": "rejected",
                "kind": kind,
                "reason": rejection.reason,
                "topic": rejection.topic,
                "reading_index": rejection.reading_index,
            },
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
