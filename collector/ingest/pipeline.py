"""The collector: MQTT readings in, InfluxDB points out, acknowledged only once stored.

The stages, one module each:

- intake and acknowledgement (:mod:`collector.ingest.intake`): paho's network thread puts each
  delivered message on a bounded queue;
- processing (:mod:`collector.ingest.process`): a processing thread takes messages off it in
  batches, decodes them (:mod:`collector.ingest.decode`, falling back to
  :func:`zonnewijk_wire.decode_batch` for the reasons), validates them
  (:mod:`collector.ingest.validate`) and turns them into line protocol
  (:mod:`collector.ingest.lines`, batched by :mod:`collector.ingest.batches`);
- writing (:mod:`collector.ingest.writer`): a writer thread writes each prepared batch to
  InfluxDB with retry and only then acknowledges its messages (``manual_ack=True``), in the
  order they arrived;
- dead letters (:mod:`collector.ingest.dead_letter`) for what cannot be stored.

This module wires them together in :class:`Collector`. Processing and writing overlap: the
next batch is prepared while InfluxDB stores the last one (one prepared batch waits at most). While InfluxDB is down, the writer keeps retrying
the same batch and acknowledges nothing, so the broker keeps the messages (persistent session)
and stops sending more once the receive maximum of unacknowledged messages is reached: memory
stays bounded, and writing resumes by itself when InfluxDB is back.

A message or reading that cannot be used is logged with its reason, published to the
dead-letter topic with the original payload, counted by reason, and acknowledged (redelivering
it would not help). Good readings of a batch are stored even when others in it are rejected.

Besides the readings, the collector stores what the fault detector needs to know about each
gateway (see ``docs/collector.md``): measurement ``gateway_seen`` (one point per readings
message, at the time it was stored) and ``gateway_status`` (the gateway's status messages).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.ingest.batches import PreparedBatch, prepare_batch
from collector.ingest.dead_letter import DeadLetters
from collector.ingest.intake import Delivery, Intake, MqttConnection
from collector.ingest.meter_checks import COUNTERS as METER_COUNTERS
from collector.ingest.meter_checks import counter_key
from collector.ingest.metrics import CollectorMetrics, CollectorStats
from collector.ingest.process import (
    ProcessedMessage,
    Rejection,
    payload_text,
    process_message,
)
from collector.ingest.sequence_gaps import SequenceGaps
from collector.ingest.validate import ReadingValidator
from collector.ingest.writer import BatchWriter
from collector.timeseries.influx import InfluxClient, InfluxError
from collector.timeseries.measurements import INVERTER_MEASUREMENT, METER_MEASUREMENT
from collector.timeseries.schema import RollupBackfiller
from zonnewijk_wire import gateway_id_from_topic

__all__ = ["Collector", "CollectorStats", "MqttConnection", "ProcessedMessage", "Rejection"]

log = logging.getLogger(__name__)


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
        sequence_state: Path | None = None,
        sequence_grace_s: float = 3600.0,
    ) -> None:
        self.conn = mqtt_connection
        self.influx = influx
        self.validator = validator or ReadingValidator()
        self.batch_max_points = batch_max_points
        self.batch_max_wait_s = batch_max_wait_s
        self.seed_counters = seed_counters
        self.backfiller = backfiller
        #: How often the collector logs one line of its state [s].
        self.heartbeat_s = 60.0
        #: Holes in each gateway's message sequence (messages the broker acknowledged to the
        #: gateway and never delivered); the highest numbers are kept in ``sequence_state``
        #: across restarts, so a collector that was away still sees what it missed.
        self.sequence = SequenceGaps(grace_s=sequence_grace_s)
        self.sequence_state = sequence_state
        self.stats = CollectorStats()
        self._lock = threading.Lock()
        self.metrics = CollectorMetrics(self.stats, self._lock)
        self._stopping = threading.Event()
        self.intake = Intake(
            mqtt_connection, stats=self.stats, lock=self._lock, stopping=self._stopping
        )
        self.writer = BatchWriter(
            influx,
            batch_max_points=batch_max_points,
            stats=self.stats,
            metrics=self.metrics,
            lock=self._lock,
            stopping=self._stopping,
        )
        self.dead_letters = DeadLetters(
            self.intake.publish, stats=self.stats, lock=self._lock, on_rejection=on_rejection
        )
        #: Prepared batches waiting for the writer: one, so preparing overlaps one write.
        self._prepared: queue.Queue[PreparedBatch] = queue.Queue(maxsize=1)
        #: Batches taken off the queue and not yet acknowledged (for wait_idle).
        self._batches_open = 0
        self._threads: list[threading.Thread] = []

    @property
    def readings_subscription(self) -> str:
        return self.intake.readings_subscription

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, *, wait_connected_s: float = 10.0) -> None:
        self._load_sequences()
        self._prepare_influx()
        self.intake.connect()
        self._threads = [
            threading.Thread(target=self._process_loop, name="collector-process", daemon=True),
            threading.Thread(target=self._write_loop, name="collector-writer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.intake.wait_connected(wait_connected_s)

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
        meters = 0
        for name in METER_COUNTERS:
            for row in self.influx.query_records(
                f'SELECT last("{name}") FROM "{METER_MEASUREMENT}" '
                'WHERE time > now() - 30d GROUP BY "gateway", "device"'
            ):
                if row.get("last") is None:
                    continue
                ts = datetime.fromtimestamp(row["time"] / 1000, UTC)
                key = counter_key(row["device"], name)
                self.validator.counters.update(row["gateway"], key, ts, float(row["last"]))
                meters += 1
        log.info(
            "remembered the last counter of %d devices and %d meter counters", len(rows), meters
        )

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.intake.disconnect()
        self.check_sequences()
        self._save_sequences()

    # -- sequence numbers ---------------------------------------------------------------------

    def check_sequences(self, now_s: float | None = None) -> int:
        """Count and log the holes older than their grace; returns the messages found."""
        with self._lock:
            found = self.sequence.confirm(time.monotonic() if now_s is None else now_s)
            self.stats.sequence_gaps = self.sequence.confirmed_total
            self.stats.sequence_holes_open = self.sequence.open_holes()
        for gap in found[:20]:
            log.warning(
                "gateway %s: messages %d-%d (%d) never arrived: acknowledged to the gateway and "
                "not delivered here (broker queue limit? docs/field-faults.md)",
                gap.gateway_id,
                gap.first,
                gap.last,
                gap.messages,
            )
        if len(found) > 20:
            log.warning("... and %d more holes in gateway sequences", len(found) - 20)
        return sum(g.messages for g in found)

    def _load_sequences(self) -> None:
        if self.sequence_state is None or not self.sequence_state.exists():
            return
        try:
            data = json.loads(self.sequence_state.read_text(encoding="utf-8"))
            highest = {str(k): int(v) for k, v in data["highest"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("cannot read %s (%s): sequences start afresh", self.sequence_state, exc)
            return
        self.sequence.restore(highest)
        log.info("sequence numbers of %d gateways from %s", len(highest), self.sequence_state)

    def _save_sequences(self) -> None:
        if self.sequence_state is None:
            return
        with self._lock:
            highest = self.sequence.highest()
        tmp = self.sequence_state.with_name(self.sequence_state.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"highest": highest}), encoding="utf-8")
            os.replace(tmp, self.sequence_state)
        except OSError as exc:
            log.warning("cannot save the sequence numbers to %s: %s", self.sequence_state, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

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
            if count != last_count or busy or not self.intake.queue.empty():
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
                "sequence_gaps": s.sequence_gaps,
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
                "queued": self.intake.queue.qsize(),
                "mqtt_connected": s.mqtt_connected,
                "influx_up": s.influx_up,
            }
        log.info(
            "%(messages)d messages, %(readings_stored)d readings stored, %(rejected)d rejected, "
            "%(in_flight)d in flight",
            state,
            extra=state,
        )

    # -- the two threads --------------------------------------------------------------------

    def _next_batch(self) -> PreparedBatch | None:
        """Take messages off the queue and prepare them, one by one as they arrive, until the
        batch holds ``batch_max_points`` points or ``batch_max_wait_s`` has passed."""
        try:
            first = self.intake.queue.get(timeout=0.2)
        except queue.Empty:
            return None
        with self._lock:
            self._batches_open += 1
        deadline = time.monotonic() + self.batch_max_wait_s
        deliveries = [first]
        processed = [self._process(first)]
        points = len(processed[0].lines)
        while points < self.batch_max_points:
            item = self.intake.next_delivery(deadline)
            if item is None:
                break
            deliveries.append(item)
            processed.append(self._process(item))
            points += len(processed[-1].lines)
        return prepare_batch(deliveries, processed, datetime.now(UTC))

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
                self.check_sequences()
                self._save_sequences()
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

    def _store(self, prepared: PreparedBatch) -> None:
        """Write a prepared batch, then count, report rejections and acknowledge."""
        processed, now = prepared.processed, prepared.now
        if not self.writer.write(prepared.lines, processed):
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
            stored_at = time.monotonic()
            for message in processed:
                if message.seq is not None and message.gateway_id is not None:
                    self.sequence.observe(message.gateway_id, message.seq, stored_at)
        for message in processed:
            for rejection in message.rejections:
                self.dead_letters.reject(rejection)
            if self.backfiller and message.oldest_reading and message.newest_reading:
                self.backfiller.note(message.oldest_reading, message.newest_reading, now)
        self.intake.ack(prepared.deliveries)

    def _process(self, delivery: Delivery) -> ProcessedMessage:
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
                        payload_text(delivery.payload),
                    )
                ],
                gateway_id_from_topic(delivery.topic),
            )
