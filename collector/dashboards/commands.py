"""``zonnewijk dashboards build|push|daily-yield|self-consumption|screenshots``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.registry.fleet_file import Fleet

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboards", help="Grafana dashboards: build the JSON, push it, feed daily_yield"
    )
    sub = parser.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")

    build = sub.add_parser("build", help="write dashboards/generated/*.json and the alert rules")
    build.add_argument("--check", action="store_true", help="only report differences (exit 1)")
    build.set_defaults(func=_build)

    push = sub.add_parser("push", help="create or update the dashboards in a running Grafana")
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. https://grafana.example")
    push.add_argument(
        "--token",
        default=os.environ.get("GRAFANA_TOKEN"),
        help="service-account token (default: $GRAFANA_TOKEN)",
    )
    push.add_argument("--folder", default="Zonnewijk", help="folder title (created if missing)")
    push.add_argument("--folder-uid", default="zonnewijk", help="folder uid")
    push.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    push.set_defaults(func=_push)

    daily = sub.add_parser(
        "daily-yield", help="write the daily_yield measurement from a fleet file"
    )
    daily.add_argument("--fleet", required=True, type=Path, help="fleet file (docs/fleet-file.md)")
    daily.add_argument("--days", type=int, default=2, help="local days ending today (default 2)")
    daily.add_argument("--day", type=date.fromisoformat, help="one local day, YYYY-MM-DD")
    daily.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="keep running: recompute the last --days days every SECONDS (a service)",
    )
    daily.add_argument("--runs", type=int, help=argparse.SUPPRESS)  # bounded loop for tests
    _influx_args(daily)
    daily.set_defaults(func=_daily_yield)

    own = sub.add_parser(
        "self-consumption",
        help="write the fleet_self_consumption measurement (groups of 5+ metered homes)",
    )
    own.add_argument("--fleet", required=True, type=Path, help="fleet file (docs/fleet-file.md)")
    own.add_argument("--days", type=int, default=2, help="local days ending today (default 2)")
    own.add_argument("--day", type=date.fromisoformat, help="one local day, YYYY-MM-DD")
    own.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="keep running: recompute the last --days days every SECONDS (a service)",
    )
    own.add_argument("--runs", type=int, help=argparse.SUPPRESS)  # bounded loop for tests
    _influx_args(own)
    own.set_defaults(func=_self_consumption)

    shots = sub.add_parser(
        "screenshots", help="render docs/screenshots/dashboard-*.png from InfluxDB"
    )
    _influx_args(shots)
    shots.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    shots.add_argument("--device", help="inverter for the inverter-detail dashboard")
    shots.add_argument(
        "--demo",
        action="store_true",
        help="private InfluxDB filled by the fleet simulator (the committed pictures)",
    )
    shots.set_defaults(func=_screenshots)


def _influx_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--influx-url", default=os.environ.get("ZONNEWIJK_INFLUX_URL", "http://127.0.0.1:8086")
    )
    parser.add_argument("--influx-db", default=os.environ.get("ZONNEWIJK_INFLUX_DB", "zonnewijk"))
    parser.add_argument("--influx-username", default=os.environ.get("ZONNEWIJK_INFLUX_USERNAME"))
    parser.add_argument("--influx-password", default=os.environ.get("ZONNEWIJK_INFLUX_PASSWORD"))


def _influx(args: argparse.Namespace) -> Any:
    from collector.timeseries.influx import InfluxClient

    return InfluxClient(
        args.influx_url,
        args.influx_db,
        username=args.influx_username,
        password=args.influx_password,
    )


def _build(args: argparse.Namespace) -> int:
    from collector.dashboards import generate

    if args.check:
        problems = generate.differences()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `zonnewijk dashboards build` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    for path in generate.write():
        print(f"wrote {path.relative_to(generate.REPO)}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from collector.dashboards.push import PushError, push_dashboards

    if not args.token:
        print(
            "give a Grafana service-account token with --token or $GRAFANA_TOKEN", file=sys.stderr
        )
        return 2
    try:
        results = push_dashboards(
            args.url,
            args.token,
            folder_title=args.folder,
            folder_uid=args.folder_uid,
            timeout_s=args.timeout,
        )
    except PushError as exc:
        print(f"push failed: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(f"{result.uid}: {result.status} (version {result.version}) {result.url}")
    missing = sorted({uid for r in results for uid in r.missing_datasources})
    for uid in missing:
        boards = ", ".join(r.uid for r in results if uid in r.missing_datasources)
        print(
            f"warning: Grafana has no data source with uid {uid!r}; {boards} will show errors "
            "until you add it (see dashboards/provisioning/datasources/)",
            file=sys.stderr,
        )
    return 0


def _every_days(args: argparse.Namespace, name: str, write: Callable[[list[date]], int]) -> int:
    """Run ``write`` for the chosen days once, or every ``--every`` seconds as a service
    (an InfluxDB failure is then logged and retried); prints what was written."""
    from collector.dashboards.daily_yield import recent_days
    from collector.timeseries.influx import InfluxError

    runs = 0
    while True:
        days = [args.day] if args.day else list(recent_days(args.days))
        try:
            written = write(days)
        except InfluxError as exc:
            if not args.every:
                print(f"{name}: {exc}", file=sys.stderr)
                return 1
            log.warning("%s failed, retrying in %.0f s: %s", name, args.every, exc)
        else:
            print(f"{name}: {written} points for {len(days)} day(s)", flush=True)
        runs += 1
        if not args.every or (args.runs is not None and runs >= args.runs):
            return 0
        time.sleep(args.every)


def _fleet_or_none(args: argparse.Namespace) -> Fleet | None:
    from collector.registry.fleet_file import FleetFileError, load_fleet_file

    try:
        return load_fleet_file(args.fleet)
    except FleetFileError as exc:
        print(exc, file=sys.stderr)
    except OSError as exc:
        print(f"cannot read the fleet file {args.fleet}: {exc.strerror or exc}", file=sys.stderr)
    return None


def _daily_yield(args: argparse.Namespace) -> int:
    from collector.dashboards.daily_yield import write_daily_yields

    fleet = _fleet_or_none(args)
    if fleet is None:
        return 2
    influx = _influx(args)
    return _every_days(args, "daily_yield", lambda days: write_daily_yields(influx, fleet, days))


def _self_consumption(args: argparse.Namespace) -> int:
    from collector.dashboards.daily_self_consumption import write_days

    fleet = _fleet_or_none(args)
    if fleet is None:
        return 2
    influx = _influx(args)
    return _every_days(args, "fleet_self_consumption", lambda days: write_days(influx, fleet, days))


def _screenshots(args: argparse.Namespace) -> int:
    from collector.dashboards.screenshots import demo, render_all

    paths = demo(args.out) if args.demo else render_all(_influx(args), args.out, device=args.device)
    for path in paths:
        print(f"wrote {path}")
    return 0
