"""Writing with retry: a prepared batch's lines into InfluxDB, whatever it takes.

While InfluxDB is unavailable the writer retries the same batch with backoff (0.5 s doubling to
10 s) and reports nothing stored, so nothing is acknowledged and the broker keeps the messages.
When InfluxDB refuses a line (HTTP 400: a field type conflict, say), the batch is written
message by message so only the offending message is refused, with InfluxDB's reason.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence

from collector.ingest.metrics import CollectorMetrics, CollectorStats
from collector.ingest.process import ProcessedMessage, Rejection
from collector.timeseries.influx import InfluxClient, InfluxError, InfluxWriteError

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)

#: First and largest wait between attempts while InfluxDB is unavailable [s].
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0


class BatchWriter:
    """Writes batches of line protocol, counting into the collector's ``stats`` under ``lock``."""

    def __init__(
        self,
        influx: InfluxClient,
        *,
        batch_max_points: int,
        stats: CollectorStats,
        metrics: CollectorMetrics,
        lock: threading.Lock,
        stopping: threading.Event,
    ) -> None:
        self.influx = influx
        self.batch_max_points = batch_max_points
        self._stats = stats
        self._metrics = metrics
        self._lock = lock
        self._stopping = stopping

    def write_lines(self, lines: list[str]) -> None:
        """One request per batch; a batch the last message made larger than twice the limit
        is split into even parts."""
        if not lines:
            return
        parts = math.ceil(len(lines) / (2 * self.batch_max_points))
        step = math.ceil(len(lines) / parts)
        for first in range(0, len(lines), step):
            self.influx.write_lines(lines[first : first + step])

    def write(self, lines: list[str], processed: Sequence[ProcessedMessage]) -> bool:
        """Write ``lines`` (those of ``processed``); False only when stopping before it worked.

        A message InfluxDB refuses gets an ``influx_refused`` rejection and stores nothing.
        """
        delay = RETRY_FIRST_S
        while True:
            started = time.monotonic()
            try:
                self.write_lines(lines)
            except InfluxWriteError as exc:
                # The server refused some line: isolate the offending message(s).
                log.error("InfluxDB refused a batch (%s); retrying message by message", exc)
                with self._lock:
                    self._stats.write_errors += 1
                return self._write_one_by_one(processed)
            except InfluxError as exc:
                with self._lock:
                    self._stats.write_errors += 1
                    self._stats.influx_up = False
                    holding = self._stats.in_flight
                log.warning(
                    "InfluxDB unavailable (%s); holding %d messages, retrying in %.1f s",
                    exc,
                    holding,
                    delay,
                    extra={"event": "influx_unavailable", "holding": holding},
                )
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            elapsed = time.monotonic() - started
            self._metrics.write_seconds.observe(elapsed)
            self._metrics.batch_points.observe(len(lines))
            self._metrics.batch_messages.observe(len(processed))
            with self._lock:
                if not self._stats.influx_up:
                    log.info("InfluxDB accepts writes again", extra={"event": "influx_back"})
                self._stats.influx_up = True
                self._stats.last_write_s = elapsed
                self._stats.points_written += len(lines)
                self._stats.batches_written += 1
            return True

    def _write_one_by_one(self, processed: Sequence[ProcessedMessage]) -> bool:
        for index, message in enumerate(processed):
            try:
                self.write_lines(message.lines)
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
                return self.write(
                    [line for m in processed[index:] for line in m.lines], processed[index:]
                )
            else:
                with self._lock:
                    self._stats.points_written += len(message.lines)
        return True
