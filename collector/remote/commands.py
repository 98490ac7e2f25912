"""``zonnewijk gateways config set|show|history|send``, ``diagnose``, ``versions``, ``release-check``.

``config set GW FILE`` validates the settings (devices, ``status_interval_s``, ``log_level``)
before anything is sent, stores them as the next version and delivers it signed over MQTT;
the gateway acknowledges in its status (``config_version``, or ``config_refused`` with why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from collector.commandline import command_group


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gw = command_group(sub, "gateways", "gateways' broker credentials")
    p = gw.add_parser("config", help="a gateway's configuration as the server keeps it")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    q = csub.add_parser("set", help="validate, store as a new version and send to the gateway")
    q.add_argument("gateway_id")
    q.add_argument("file", type=Path, help="YAML: devices, status_interval_s, log_level")
    q.add_argument("--comment")
    q.add_argument("--by", default="operator")
    q.add_argument("--no-send", action="store_true", help="store only")
    _common(q)
    q.set_defaults(func=_cmd_set)
    q = csub.add_parser("show", help="print a version (default: the newest) as YAML")
    q.add_argument("gateway_id")
    q.add_argument("--version", type=int)
    _common(q)
    q.set_defaults(func=_cmd_show)
    q = csub.add_parser("history", help="every version: when, who, why")
    q.add_argument("gateway_id")
    _common(q)
    q.set_defaults(func=_cmd_history)
    q = csub.add_parser("send", help="send the newest version again")
    q.add_argument("gateway_id")
    _common(q)
    q.set_defaults(func=_cmd_send)

    p = gw.add_parser("diagnose", help="ask a gateway for a diagnostics bundle (no SSH)")
    p.add_argument("gateway_id")
    p.add_argument("--timeout", type=float, default=60.0, help="how long to wait [s]")
    p.add_argument("--json", action="store_true", help="print the bundle as JSON")
    p.add_argument("--by", default="operator", help="who asked (kept with the bundle)")
    _common(p)
    p.set_defaults(func=_cmd_diagnose)
    _register_releases(gw)


def _register_releases(gw: Any) -> None:
    p = gw.add_parser("versions", help="which package version and channel each gateway runs")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.set_defaults(func=_cmd_versions)
    p = gw.add_parser(
        "release-check",
        help="may a version leave the canary channel? exit 0 yes, 1 no (with the reasons)",
    )
    p.add_argument("version", help="the package version, e.g. 0.9.1-1")
    p.add_argument("--channel", default="canary")
    p.add_argument("--hold-hours", type=float, default=24.0, help="how long canaries must run it")
    p.set_defaults(func=_cmd_release_check)


def _reports() -> Any:
    from datetime import UTC, datetime

    from collector.remote.releases import load_reports
    from collector.settings import get_settings
    from collector.timeseries.commands import influx_client

    return load_reports(influx_client(get_settings()), now=datetime.now(UTC))


def _cmd_versions(args: argparse.Namespace) -> int:
    from collector.remote.releases import version_counts

    reports = _reports()
    if args.json:
        print(json.dumps([r.__dict__ for r in reports], default=str, indent=2))
        return 0
    print(f"{'gateway':<20}{'channel':<9}{'package':<16}{'config':>7}  {'state':<8}since")
    for r in reports:
        since = r.since.isoformat(timespec="minutes") if r.since else "-"
        print(
            f"{r.gateway_id:<20}{r.channel or '?':<9}{r.package_version or '?':<16}"
            f"{r.config_version if r.config_version is not None else '-':>7}  "
            f"{r.state or '?':<8}{since}"
        )
    for (channel, version), n in version_counts(reports).items():
        print(f"{channel}: {version} on {n} gateway{'s' if n != 1 else ''}")
    return 0


def _cmd_release_check(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from collector.remote.releases import canary_verdict

    verdict = canary_verdict(
        _reports(),
        args.version,
        datetime.now(UTC),
        channel=args.channel,
        hold=timedelta(hours=args.hold_hours),
    )
    for gateway, problem in sorted(verdict.problems.items()):
        print(f"{gateway}: {problem}")
    answer = "may be promoted" if verdict.promote else "must not be promoted yet"
    print(f"{args.version} {answer} ({verdict.gateways} {args.channel} gateways)")
    return 0 if verdict.promote else 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url")


def _sessions(args: argparse.Namespace) -> Any:
    from collector.settings import get_settings
    from collector.store.db import make_engine, session_factory

    return session_factory(make_engine(args.database_url or get_settings().sqlalchemy_url))


def login_from_settings() -> Any:
    from collector.remote.delivery import fleet_login
    from collector.settings import get_settings

    return fleet_login(get_settings())


def _send(args: argparse.Namespace, config: Any) -> int:
    from collector.remote.delivery import DeliveryError, broker_link, command_key, deliver_config

    try:
        with _sessions(args)() as session:
            key = command_key(session, config.gateway_id)
        with broker_link(login_from_settings()) as link:
            deliver_config(link, config, key)
    except DeliveryError as exc:
        print(f"gateways config: not sent: {exc}", file=sys.stderr)
        return 1
    print(
        f"sent version {config.version} to {config.gateway_id} (retained: it gets it when online)"
    )
    return 0


def _cmd_set(args: argparse.Namespace) -> int:
    import yaml

    from collector.remote.configs import ConfigRefusedError, save_config
    from collector.remote.profiles import profile_names

    try:
        settings = yaml.safe_load(args.file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        print(f"gateways config set: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(settings, dict):
        print(f"gateways config set: {args.file} must hold a mapping", file=sys.stderr)
        return 2
    sessions = _sessions(args)
    try:
        with sessions() as session, session.begin():
            stored, new = save_config(
                session,
                args.gateway_id,
                settings,
                created_by=args.by,
                comment=args.comment,
                profiles=profile_names(),
            )
    except ConfigRefusedError as exc:
        print(f"gateways config set: {exc}", file=sys.stderr)
        return 1
    version = stored.config.version
    print(
        f"{args.gateway_id}: version {version} {'stored' if new else 'unchanged (same settings)'}"
    )
    if args.no_send:
        return 0
    return _send(args, stored.config)


def _cmd_show(args: argparse.Namespace) -> int:
    import yaml

    from collector.remote.configs import config_version, latest_config

    with _sessions(args)() as session:
        found = (
            config_version(session, args.gateway_id, args.version)
            if args.version
            else latest_config(session, args.gateway_id)
        )
    if found is None:
        print(f"gateways config show: no configuration for {args.gateway_id}", file=sys.stderr)
        return 1
    print(
        f"# {args.gateway_id} version {found.config.version}, {found.created_at:%Y-%m-%d %H:%M} "
        f"UTC by {found.created_by}{': ' + found.comment if found.comment else ''}"
    )
    body = found.config.body()
    body.pop("v", None)
    body.pop("gateway_id", None)
    print(yaml.safe_dump(body, sort_keys=False), end="")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from collector.remote.configs import config_history

    with _sessions(args)() as session:
        history = config_history(session, args.gateway_id)
    for stored in history:
        devices = ", ".join(d.device_id for d in stored.config.devices)
        print(
            f"{stored.config.version:4}  {stored.created_at:%Y-%m-%d %H:%M}  "
            f"{stored.created_by:12}  {devices}  {stored.comment or ''}"
        )
    return 0 if history else 1


def _cmd_send(args: argparse.Namespace) -> int:
    from collector.remote.configs import latest_config

    with _sessions(args)() as session:
        found = latest_config(session, args.gateway_id)
    if found is None:
        print(f"gateways config send: no configuration for {args.gateway_id}", file=sys.stderr)
        return 1
    return _send(args, found.config)


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from collector.remote.delivery import DeliveryError
    from collector.remote.diagnostics import ask_and_store

    try:
        stored = ask_and_store(
            _sessions(args),
            login_from_settings(),
            args.gateway_id,
            requested_by=args.by,
            timeout_s=args.timeout,
        )
    except DeliveryError as exc:
        print(f"gateways diagnose: {exc}", file=sys.stderr)
        return 1
    if stored.document is None:
        print(
            f"gateways diagnose: no answer from {args.gateway_id} within {args.timeout:.0f} s "
            "(offline? its last status says: zonnewijk/v1/<id>/status); the request is "
            f"stored as diagnostics {stored.id}",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(stored.document, indent=2))
        return 0
    print(json.dumps({k: v for k, v in stored.document.items() if k != "log"}, indent=2))
    print("--- newest log lines ---")
    for line in stored.document.get("log", [])[-40:]:
        print(line)
    print(
        f"stored as diagnostics {stored.id} (portal: /operator/gateways/{args.gateway_id}/diagnostics)"
    )
    return 0
