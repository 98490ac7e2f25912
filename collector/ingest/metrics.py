"""What the collector is doing, for operators: Prometheus ``/metrics``, ``/health``, JSON logs.

Counters live in :class:`CollectorStats` (plain integers the collector bumps under its lock);
:class:`StatsExporter` turns them into Prometheus metrics at scrape time, so nothing is counted
twice. Latencies and sizes are histograms recorded as they happen. Every collector has its own
:class:`prometheus_client.CollectorRegistry`, so two collectors in one process (tests, the
benchmark) do not mix their figures.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PromCollector

log = logging.getLogger(__name__)

PREFIX = "zonnewijk_collector"


@dataclass
class CollectorStats:
    """Counters of what the collector did; read by /metrics, /health, the demo and tests."""

    messages: int = 0
    readings_stored: int = 0
    points_written: int = 0
    batches_written: int = 0
    status_messages: int = 0
    rejected_messages: Counter[str] = field(default_factory=Counter)
    rejected_readings: Counter[str] = field(default_factory=Counter)
    write_errors: int = 0
    last_write_s: float = 0.0
    #: When the collector last stored something from each gateway [UTC].
    last_seen: dict[str, datetime] = field(default_factory=dict)
    #: Deliveries received from the broker and not yet acknowledged (or dropped on reconnect).
    in_flight: int = 0
    #: Highest ``in_flight`` seen: shows the receive maximum holds while InfluxDB is down.
    in_flight_max: int = 0
    influx_up: bool = True
    mqtt_connected: bool = False
    #: Messages missing from a gateway's sequence beyond the grace: acknowledged to the
    #: gateway by the broker and never delivered here (collector/ingest/sequence_gaps.py).
    sequence_gaps: int = 0
    #: Numbers missing and still within their grace.
    sequence_holes_open: int = 0

    def rejected_total(self) -> int:
        return sum(self.rejected_messages.values()) + sum(self.rejected_readings.values())


class StatsExporter(PromCollector):
    """Reads :class:`CollectorStats` when Prometheus scrapes."""

    def __init__(self, stats: CollectorStats, lock: threading.Lock) -> None:
        self.stats = stats
        self.lock = lock

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            s = self.stats
            messages = s.messages
            status_messages = s.status_messages
            readings = s.readings_stored
            points = s.points_written
            batches = s.batches_written
            errors = s.write_errors
            rej_msg = dict(s.rejected_messages)
            rej_rd = dict(s.rejected_readings)
            last_seen = dict(s.last_seen)
            in_flight = s.in_flight
            in_flight_max = s.in_flight_max
            influx_up = s.influx_up
            mqtt_connected = s.mqtt_connected
            sequence_gaps = s.sequence_gaps
            holes_open = s.sequence_holes_open
        yield _counter("messages", "readings messages stored and acknowledged", messages)
        yield _counter("status_messages", "gateway status messages stored", status_messages)
        yield _counter("readings_stored", "readings written to InfluxDB", readings)
        yield _counter("points_written", "points written to InfluxDB", points)
        yield _counter("batches_written", "write requests InfluxDB accepted", batches)
        yield _counter("write_errors", "failed InfluxDB writes (each retry counts)", errors)
        yield _counter(
            "sequence_gaps",
            "gateway messages that never arrived (holes in their sequence beyond the grace)",
            sequence_gaps,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_sequence_holes_open",
            "gateway sequence numbers missing and still within their grace",
            value=holes_open,
        )
        rejects = CounterMetricFamily(
            f"{PREFIX}_rejects",
            "messages and readings not stored, by reason",
            labels=["kind", "reason"],
        )
        for reason, n in sorted(rej_msg.items()):
            rejects.add_metric(["message", reason], n)
        for reason, n in sorted(rej_rd.items()):
            rejects.add_metric(["reading", reason], n)
        yield rejects
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_depth",
            "deliveries received from the broker and not yet acknowledged",
            value=in_flight,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_depth_max", "highest queue depth since start", value=in_flight_max
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_influx_up", "1 when the last InfluxDB write succeeded", value=int(influx_up)
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_mqtt_connected", "1 while connected to the broker", value=int(mqtt_connected)
        )
        seen = GaugeMetricFamily(
            f"{PREFIX}_gateway_last_message_timestamp_seconds",
            "when the collector last stored a message of each gateway (Unix time)",
            labels=["gateway"],
        )
        for gateway, ts in sorted(last_seen.items()):
            seen.add_metric([gateway], ts.timestamp())
        yield seen


def _counter(name: str, doc: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


class CollectorMetrics:
    """The Prometheus registry of one collector."""

    def __init__(self, stats: CollectorStats, lock: threading.Lock) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StatsExporter(stats, lock))
        self.write_seconds = Histogram(
            f"{PREFIX}_write_seconds",
            "time InfluxDB took to accept one batch [s]",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.batch_points = Histogram(
            f"{PREFIX}_batch_points",
            "points per InfluxDB write",
            registry=self.registry,
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000),
        )
        self.batch_messages = Histogram(
            f"{PREFIX}_batch_messages",
            "MQTT messages per InfluxDB write",
            registry=self.registry,
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


# --- HTTP -----------------------------------------------------------------------------------


HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


class MetricsServer:
    """``/metrics`` and ``/health`` on a small threaded HTTP server."""

    def __init__(
        self, metrics: CollectorMetrics, health: HealthCheck, *, host: str, port: int
    ) -> None:
        metrics_ = metrics
        health_ = health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, metrics_.exposition())
                elif self.path.split("?")[0] == "/health":
                    ok, detail = health_()
                    body = json.dumps({"status": "ok" if ok else "degraded", **detail}).encode()
                    self._send(200 if ok else 503, "application/json", body)
                else:
                    self._send(404, "text/plain", b"try /metrics or /health\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="collector-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- structured logs --------------------------------------------------------------------------

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def use_json_logs(level: int = logging.INFO) -> None:
    """Replace the root logger's handlers with one writing JSON lines to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
