"""``zonnewijk collect``, ``zonnewijk db init|backfill``, ``zonnewijk gateways add|remove``,
``zonnewijk broker add-collector``.

Settings come from ``ZONNEWIJK_*`` environment variables (:class:`collector.settings.Settings`);
command-line options override them. ``db`` is shared with the relational store's commands
(``db migrate``): this module adds ``init`` and ``backfill`` to that group, so it must be listed
after ``collector.registry.commands`` in :data:`collector.cli.COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collector.broker.security import (
    BrokerSecurityError,
    add_collector,
    add_gateway,
    remove_user,
)
from collector.ingest.metrics import MetricsServer, use_json_logs
from collector.ingest.pipeline import Collector, MqttConnection
from collector.ingest.validate import (
    CachedDirectory,
    DeviceDirectory,
    OpenDirectory,
    ReadingValidator,
    ValidationLimits,
)
from collector.settings import Settings
from collector.timeseries.influx import InfluxClient, InfluxError
from collector.timeseries.schema import backfill_rollups, init_database, retention_policies, rollups

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("collect", help="store gateways' readings from MQTT in InfluxDB")
    _influx_args(p)
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
    p.set_defaults(func=_cmd_collect)

    db = _group(sub, "db", "relational store and InfluxDB schema")
    p = db.add_parser("init", help="create InfluxDB database, retention policies, rollups")
    _influx_args(p)
    p.add_argument("--raw-duration", default="INF", help="keep raw readings (InfluxQL, INF)")
    p.add_argument("--rollup-5m-duration", default="INF", help="keep 5-minute rollups")
    p.add_argument("--rollup-1d-duration", default="INF", help="keep daily rollups")
    p.set_defaults(func=_cmd_db_init)
    p = db.add_parser("backfill", help="recompute rollups for a past period (late data)")
    _influx_args(p)
    p.add_argument("--days", type=float, default=7.0, help="how many days back from now")
    p.set_defaults(func=_cmd_db_backfill)

    gw = _group(sub, "gateways", "gateways' broker credentials")
    p = gw.add_parser("add", help="create (or rotate) a gateway's credentials and ACL entry")
    p.add_argument("gateway_id")
    _broker_files(p)
    p.set_defaults(func=_cmd_gateway_add)
    p = gw.add_parser("remove", help="revoke a gateway's credentials and ACL entry")
    p.add_argument("gateway_id")
    _broker_files(p)
    p.set_defaults(func=_cmd_remove)

    br = _group(sub, "broker", "broker users")
    p = br.add_parser("add-collector", help="credentials and ACL entry for a collector")
    p.add_argument("username", help="starts with 'collector', e.g. collector-1")
    _broker_files(p)
    p.set_defaults(func=_cmd_collector_add)


def _group(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The sub-command group ``name``, created unless another module made it already."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text)
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def _influx_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--influx-url", help="InfluxDB URL (ZONNEWIJK_INFLUX_URL)")
    p.add_argument("--influx-db", help="database (ZONNEWIJK_INFLUX_DB)")


def _broker_files(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--password-file",
        type=Path,
        default=Path(os.environ.get("ZONNEWIJK_MQTT_PASSWORD_FILE", "/etc/mosquitto/passwd")),
    )
    p.add_argument(
        "--acl-file",
        type=Path,
        default=Path(os.environ.get("ZONNEWIJK_MQTT_ACL_FILE", "/etc/mosquitto/zonnewijk.acl")),
    )


def _influx(args: argparse.Namespace, settings: Settings) -> InfluxClient:
    return settings.influx_client(url=args.influx_url, database=args.influx_db)


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def _directory(url: str | None) -> DeviceDirectory:
    if not url:
        return OpenDirectory()
    from collector.ingest.device_directory import StoreDirectory
    from collector.store.db import make_engine

    return CachedDirectory(StoreDirectory(make_engine(url)), ttl_s=60.0)


def _cmd_collect(args: argparse.Namespace) -> int:
    if args.log_format == "json":
        use_json_logs(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    settings = Settings()
    influx = _influx(args, settings)
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
    validator = ReadingValidator(directory=_directory(args.registry_url), limits=limits)
    from collector.timeseries.schema import RollupBackfiller

    collector = Collector(
        mqtt_connection=conn,
        influx=influx,
        validator=validator,
        batch_max_points=_pick(args.batch_max_points, settings.collector_batch_max_points),
        batch_max_wait_s=_pick(args.batch_max_wait, settings.collector_batch_max_wait_s),
        backfiller=None if args.no_backfill else RollupBackfiller(influx),
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


def _cmd_db_init(args: argparse.Namespace) -> int:
    client = _influx(args, Settings())
    try:
        actions = init_database(
            client,
            policies=retention_policies(
                raw_duration=args.raw_duration,
                rollup_5m_duration=args.rollup_5m_duration,
                rollup_1d_duration=args.rollup_1d_duration,
            ),
            queries=rollups(),
        )
    except (InfluxError, ValueError) as exc:
        print(f"db init failed: {exc}", file=sys.stderr)
        return 1
    for action in actions:
        print(action)
    print(f"database {client.database} at {client.url}: up to date ({len(actions)} changes)")
    return 0


def _cmd_db_backfill(args: argparse.Namespace) -> int:
    client = _influx(args, Settings())
    end = datetime.now(UTC)
    start = end - timedelta(days=args.days)
    try:
        n = backfill_rollups(client, start, end)
    except InfluxError as exc:
        print(f"backfill failed: {exc}", file=sys.stderr)
        return 1
    print(f"recomputed {n} rollups from {start.isoformat()} to {end.isoformat()}")
    return 0


def _cmd_gateway_add(args: argparse.Namespace) -> int:
    try:
        creds = add_gateway(
            args.gateway_id, password_file=args.password_file, acl_file=args.acl_file
        )
    except (BrokerSecurityError, OSError) as exc:
        print(f"gateways add: {exc}", file=sys.stderr)
        return 1
    _print_credentials(creds.username, creds.password, args)
    return 0


def _cmd_collector_add(args: argparse.Namespace) -> int:
    try:
        creds = add_collector(
            args.username, password_file=args.password_file, acl_file=args.acl_file
        )
    except (BrokerSecurityError, OSError) as exc:
        print(f"broker add-collector: {exc}", file=sys.stderr)
        return 1
    _print_credentials(creds.username, creds.password, args)
    return 0


def _print_credentials(username: str, password: str, args: argparse.Namespace) -> None:
    print(f"username: {username}")
    print(f"password: {password}")
    print("(shown once; stored hashed in the password file)")
    print(f"updated {args.password_file} and {args.acl_file}; reload Mosquitto to apply:")
    print("  systemctl reload mosquitto")


def _cmd_remove(args: argparse.Namespace) -> int:
    removed = remove_user(args.gateway_id, password_file=args.password_file, acl_file=args.acl_file)
    if not removed:
        print(f"gateways remove: {args.gateway_id} not found", file=sys.stderr)
        return 1
    print(f"revoked {args.gateway_id}; reload Mosquitto to apply")
    return 0
