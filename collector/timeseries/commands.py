"""``zonnewijk db init|backfill``: the InfluxDB database, retention policies and rollups.

``db`` is shared with the relational store's commands (``db migrate``): this module adds
``init`` and ``backfill`` to that group, so it is listed after ``collector.registry.commands``
in :data:`collector.cli.COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from collector.commandline import command_group
from collector.settings import Settings
from collector.timeseries.influx import GZIP_MIN_BYTES, InfluxClient, InfluxError
from collector.timeseries.schema import backfill_rollups, init_database, retention_policies, rollups


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = command_group(sub, "db", "relational store and InfluxDB schema")
    p = db.add_parser("init", help="create InfluxDB database, retention policies, rollups")
    influx_args(p)
    p.add_argument("--raw-duration", default="INF", help="keep raw readings (InfluxQL, INF)")
    p.add_argument("--rollup-5m-duration", default="INF", help="keep 5-minute rollups")
    p.add_argument("--rollup-1d-duration", default="INF", help="keep daily rollups")
    p.set_defaults(func=_cmd_db_init)
    p = db.add_parser("backfill", help="recompute rollups for a past period (late data)")
    influx_args(p)
    p.add_argument("--days", type=float, default=7.0, help="how many days back from now")
    p.set_defaults(func=_cmd_db_backfill)


def influx_args(p: argparse.ArgumentParser) -> None:
    """The options that name the InfluxDB server and database."""
    p.add_argument("--influx-url", help="InfluxDB URL (ZONNEWIJK_INFLUX_URL)")
    p.add_argument("--influx-db", help="database (ZONNEWIJK_INFLUX_DB)")


def influx_client(
    settings: Settings,
    *,
    url: str | None = None,
    database: str | None = None,
    timeout_s: float = 10.0,
) -> InfluxClient:
    """A client for the configured InfluxDB; ``url`` and ``database`` override (CLI flags).

    Parameters
    ----------
    timeout_s
        Per-request timeout [s].
    """
    password = settings.influx_password.get_secret_value() if settings.influx_password else None
    return InfluxClient(
        url or settings.influx_url,
        database or settings.influx_db,
        username=settings.influx_username,
        password=password,
        timeout_s=timeout_s,
        gzip_min_bytes=GZIP_MIN_BYTES if settings.influx_gzip else None,
    )


def influx_from_args(args: argparse.Namespace, settings: Settings) -> InfluxClient:
    """The InfluxDB client the options (or the settings) name."""
    return influx_client(settings, url=args.influx_url, database=args.influx_db)


def _cmd_db_init(args: argparse.Namespace) -> int:
    client = influx_from_args(args, Settings())
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
    client = influx_from_args(args, Settings())
    end = datetime.now(UTC)
    start = end - timedelta(days=args.days)
    try:
        n = backfill_rollups(client, start, end)
    except InfluxError as exc:
        print(f"backfill failed: {exc}", file=sys.stderr)
        return 1
    print(f"recomputed {n} rollups from {start.isoformat()} to {end.isoformat()}")
    return 0
