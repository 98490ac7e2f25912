"""``zonnewijk collect``: the collector as a process.

Settings come from ``ZONNEWIJK_*`` environment variables (:class:`collector.settings.Settings`);
command-line options override them.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from collector.ingest.directory import (
    CachedDirectory,
    ConsentDirectory,
    DeviceDirectory,
    OpenDirectory,
)
from collector.ingest.metrics import MetricsServer, use_json_logs
from collector.ingest.pipeline import Collector, MqttConnection
from collector.ingest.validate import ReadingValidator, ValidationLimits
from collector.settings import Settings
from collector.timeseries.commands import influx_args, influx_from_args

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("collect", help="store gateways' readings from MQTT in InfluxDB")
    influx_args(p)
    p.add_argument("--mqtt-host", help="broker host (ZONNEWIJK_MQTT_HOST)")
    p.add_argument("--mqtt-port", type=int, help="broker port (ZONNEWIJK_MQTT_PORT)")
    p.add_argument("--mqtt-username", help="broker user (ZONNEWIJK_MQTT_USERNAME)")
    p.add_argument("--client-id", help="unique per collector (ZONNEWIJK_MQTT_CLIENT_ID)")
    p.add_argument("--share-group", help="shared subscription group; '' for none")
    p.add_argument("--receive-maximum", type=int, default=500, help="unacked messages in flight")
    p.add_argument("--batch-max-points", type=int, help="points per InfluxDB write")
    p.add_argument("--batch-max-wait", type=float, help="seconds to fill a batch")
    p.add_argument("--metrics-port", type=int, help="serve /metrics and /health on this port")
    p.add_argument("--metrics-host", default="127.0.0.1", help="bind address of /metrics")
    p.add_argument(
        "--registry-url",
        help="SQLAlchemy URL of the registry: refuse unknown gateways/devices, check ratings "
        "(default: accept every gateway and device)",
    )
    p.add_argument("--max-age-days", type=float, default=90.0, help="refuse older readings")
    p.add_argument("--future-tolerance-s", type=float, default=300.0, help="clock drift allowed")
    p.add_argument("--no-backfill", action="store_true", help="do not roll up late data")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--heartbeat-s", type=float, default=60.0, help="log state this often")
    p.add_argument(
        "--sequence-state",
        type=Path,
        help="file keeping each gateway's highest message number across restarts, so "
        "messages the broker dropped while the collector was away are counted",
    )
    p.add_argument(
        "--sequence-grace-s",
        type=float,
        default=3600.0,
        help="a gateway message missing this long counts as never arriving [s]",
    )
    p.set_defaults(func=_cmd_collect)


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def _directory(url: str | None) -> DeviceDirectory:
    if not url:
        return OpenDirectory()
    from collector.ingest.store_directory import StoreDirectory
    from collector.store.db import make_engine

    return CachedDirectory(StoreDirectory(make_engine(url)), ttl_s=60.0)


def _consents(url: str | None) -> ConsentDirectory | None:
    """Members' meter consents from the registry (none without one: demo, fresh install)."""
    if not url:
        return None
    from collector.ingest.consent import CachedConsents
    from collector.ingest.store_directory import StoreConsents
    from collector.store.db import make_engine

    return CachedConsents(StoreConsents(make_engine(url)))


def _cmd_collect(args: argparse.Namespace) -> int:
    if args.log_format == "json":
        use_json_logs(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    settings = Settings()
    influx = influx_from_args(args, settings)
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    share = _pick(args.share_group, settings.mqtt_share_group)
    conn = MqttConnection(
        host=_pick(args.mqtt_host, settings.mqtt_host),
        port=_pick(args.mqtt_port, settings.mqtt_port),
        client_id=_pick(args.client_id, settings.mqtt_client_id),
        username=_pick(args.mqtt_username, settings.mqtt_username),
        password=password,
        tls_ca=settings.mqtt_tls_ca,
        share_group=share or None,
        receive_maximum=args.receive_maximum,
    )
    limits = ValidationLimits(
        future_tolerance_s=args.future_tolerance_s, max_age_s=args.max_age_days * 86400
    )
    validator = ReadingValidator(
        directory=_directory(args.registry_url),
        limits=limits,
        consents=_consents(args.registry_url),
    )
    from collector.timeseries.schema import RollupBackfiller

    collector = Collector(
        mqtt_connection=conn,
        influx=influx,
        validator=validator,
        batch_max_points=_pick(args.batch_max_points, settings.collector_batch_max_points),
        batch_max_wait_s=_pick(args.batch_max_wait, settings.collector_batch_max_wait_s),
        backfiller=None if args.no_backfill else RollupBackfiller(influx),
        sequence_state=args.sequence_state,
        sequence_grace_s=args.sequence_grace_s,
    )
    collector.heartbeat_s = args.heartbeat_s
    # Preparing batches is CPU-bound while the writer and paho's thread wait on sockets; with
    # Python's default 5 ms switch interval every socket step of an InfluxDB write waited up
    # to 5 ms for the interpreter (compare: bench/ingest.py --switch-interval 0.005).
    sys.setswitchinterval(settings.collector_switch_interval_s)
    # Everything imported so far lives as long as the process: keep it out of the
    # garbage collector's full passes.
    gc.freeze()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: stopping after the current batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics_port = _pick(args.metrics_port, settings.collector_metrics_port)
    server = None
    if metrics_port is not None:
        server = MetricsServer(
            collector.metrics, collector.health, host=args.metrics_host, port=metrics_port
        )
        server.start()
        log.info("serving /metrics and /health on %s:%d", args.metrics_host, server.port)
    collector.start(wait_connected_s=0)
    log.info(
        "collecting from %s:%d as %s (group %s) into %s/%s",
        conn.host,
        conn.port,
        conn.client_id,
        conn.share_group,
        influx.url,
        influx.database,
        extra={"event": "started"},
    )
    stop.wait()
    collector.stop()
    if server is not None:
        server.stop()
    return 0
