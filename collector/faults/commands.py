"""``zonnewijk faults``: run the detectors once or on a schedule, list and acknowledge alerts.

Settings come from :mod:`collector.settings` (``ZONNEWIJK_*`` environment variables:
InfluxDB, database, MQTT). Notification channels are options here (or ``ZONNEWIJK_ALERT_*``
variables): ``--mail-to`` with ``--smtp-host``/``--smtp-port``/``--mail-from``,
``--webhook-url``, ``--mqtt-alerts`` (publish on the settings' MQTT broker).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session, sessionmaker

from collector.faults.alerts import (
    AlertEvent,
    AlertNotFoundError,
    AlertResolvedError,
    AlertService,
    AlertStatus,
)
from collector.faults.influx_source import DeviceSpec, devices_from_registry
from collector.faults.model import Severity
from collector.faults.notify import (
    Channel,
    ChannelPolicy,
    EmailChannel,
    InfluxChannel,
    MqttChannel,
    Notifier,
    WebhookChannel,
)
from collector.faults.scheduling import FaultRunner, JobLock, build_scheduler
from collector.registry.fleet_file import load_fleet_file
from collector.registry.store_read import read_fleet
from collector.settings import Settings, get_settings
from collector.store.db import make_engine, migrate, session_factory
from collector.timeseries.commands import influx_client

log = logging.getLogger(__name__)


def _env(name: str) -> str | None:
    return os.environ.get(f"ZONNEWIJK_ALERT_{name}") or None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    faults = subparsers.add_parser("faults", help="fault detection and alerts")
    sub = faults.add_subparsers(dest="faults_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser, *, notify: bool) -> None:
        p.add_argument("--fleet", help="fleet file to take the devices from (default: the store)")
        if not notify:
            return
        p.add_argument("--smtp-host", default=_env("SMTP_HOST"))
        p.add_argument("--smtp-port", type=int, default=int(_env("SMTP_PORT") or 25))
        p.add_argument("--mail-from", default=_env("MAIL_FROM") or "alerts@zonnewijk.invalid")
        p.add_argument("--mail-to", action="append", default=None, help="repeatable")
        p.add_argument("--webhook-url", default=_env("WEBHOOK_URL"))
        p.add_argument("--mqtt-alerts", action="store_true", help="publish alerts on MQTT")
        p.add_argument("--max-per-hour", type=int, default=20, help="per channel")

    p = sub.add_parser("run-once", help="run the recent-data check (and optionally the daily one)")
    common(p, notify=True)
    p.add_argument("--now", help="pretend it is this UTC time (ISO 8601), e.g. for backfills")
    p.add_argument(
        "--daily", metavar="YYYY-MM-DD", help="also run the daily comparison of this day"
    )
    p.set_defaults(func=_run_once)

    p = sub.add_parser("serve", help="run the detectors on a schedule until stopped")
    common(p, notify=True)
    p.set_defaults(func=_serve)

    p = sub.add_parser("list", help="list alerts")
    p.add_argument("--status", choices=[s.value for s in AlertStatus], action="append")
    p.add_argument("--device", action="append")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)

    p = sub.add_parser("ack", help="acknowledge an alert")
    p.add_argument("alert_id", type=int)
    p.add_argument("--by", required=True, help="who acknowledges")
    p.add_argument("--note")
    p.set_defaults(func=_ack)


def _store(settings: Settings) -> sessionmaker[Session]:
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    return session_factory(engine)


def _device_loader(
    sessions: sessionmaker[Session], fleet_path: str | None
) -> Callable[[], Sequence[DeviceSpec]]:
    """Devices from a fleet file, or from the registry in the store (read per run)."""

    def devices() -> Sequence[DeviceSpec]:
        if fleet_path:
            return devices_from_registry(load_fleet_file(fleet_path))
        with sessions() as session:
            return devices_from_registry(read_fleet(session))

    return devices


def _runner(args: argparse.Namespace) -> FaultRunner:
    settings = get_settings()
    sessions = _store(settings)
    influx = influx_client(settings)
    # every change also goes to InfluxDB, for the Grafana annotations and alert table
    channels: list[tuple[Channel, ChannelPolicy]] = [
        (
            InfluxChannel(influx),
            ChannelPolicy(
                min_severity=Severity.INFO, events=frozenset(AlertEvent), max_per_hour=100_000
            ),
        )
    ]
    policy = ChannelPolicy(max_per_hour=args.max_per_hour)
    mail_to = args.mail_to or ([_env("MAIL_TO")] if _env("MAIL_TO") else [])
    if mail_to:
        if not args.smtp_host:
            raise SystemExit("--mail-to needs --smtp-host (or ZONNEWIJK_ALERT_SMTP_HOST)")
        channels.append(
            (EmailChannel(args.smtp_host, args.smtp_port, args.mail_from, list(mail_to)), policy)
        )
    if args.webhook_url:
        channels.append((WebhookChannel(args.webhook_url), policy))
    if args.mqtt_alerts:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        channels.append(
            (
                MqttChannel(
                    settings.mqtt_host,
                    settings.mqtt_port,
                    username=settings.mqtt_username,
                    password=password,
                    tls=settings.mqtt_tls_ca is not None,
                ),
                policy,
            )
        )
    return FaultRunner(
        influx=influx,
        devices=_device_loader(sessions, args.fleet),
        alerts=AlertService(sessions),
        notifier=Notifier(sessions, channels),
        lock=JobLock(sessions),
    )


def _run_once(args: argparse.Namespace) -> int:
    runner = _runner(args)
    now = datetime.fromisoformat(args.now).astimezone(UTC) if args.now else datetime.now(UTC)
    report = runner.run_recent(now)
    print(_report_line(report.job, report.slot, report.ran, report.findings, len(report.changes)))
    if args.daily:
        daily = runner.run_daily(date.fromisoformat(args.daily), now)
        print(_report_line(daily.job, daily.slot, daily.ran, daily.findings, len(daily.changes)))
    return 0


def _report_line(job: str, slot: str, ran: bool, findings: int, changes: int) -> str:
    if not ran:
        return f"{job} {slot}: already run by another instance"
    return f"{job} {slot}: {findings} findings, {changes} alert changes"


def _serve(args: argparse.Namespace) -> int:
    runner = _runner(args)
    scheduler = build_scheduler(runner, blocking=True)
    log.info("fault detection scheduled every %d s; daily comparison after sunset", runner.step_s)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
    return 0


def _list(args: argparse.Namespace) -> int:
    service = AlertService(_store(get_settings()))
    statuses = [AlertStatus(s) for s in args.status] if args.status else None
    alerts = service.list(status=statuses, device_ids=args.device)
    if args.json:
        print(json.dumps([a.to_dict() for a in alerts], indent=2))
        return 0
    for a in alerts:
        print(
            f"#{a.id:<5} {a.status.value:<12} {a.severity.name.lower():<8} {a.kind.value:<18} "
            f"{a.device_id:<20} since {a.to_dict()['condition_since']}  {a.message}"
        )
    if not alerts:
        print("no alerts")
    return 0


def _ack(args: argparse.Namespace) -> int:
    service = AlertService(_store(get_settings()))
    try:
        change = service.acknowledge(
            args.alert_id, by=args.by, now=datetime.now(UTC), note=args.note
        )
    except (AlertNotFoundError, AlertResolvedError) as exc:
        print(f"cannot acknowledge: {exc}")
        return 1
    print(f"#{change.alert.id} {change.alert.status.value} by {change.alert.acknowledged_by}")
    return 0
