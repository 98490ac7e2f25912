"""``zonnewijk gateways enrol``, ``enrolments`` and ``enrol-server``.

``enrol --site S012`` prints a one-time code, the one command to run on the Pi and the same
command as a QR code (scan it with a phone, paste it into the Pi's terminal).
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from collector.commandline import command_group

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gw = command_group(sub, "gateways", "gateways' broker credentials")
    p = gw.add_parser("enrol", help="a one-time code that enrols a new Pi for a site")
    p.add_argument("--site", required=True, help="registry site id, e.g. S012")
    p.add_argument(
        "--valid-hours", type=float, default=48.0, help="how long the code works (default 48)"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--host", help="the inverters' Modbus TCP address (drafts a config)")
    where.add_argument("--serial", metavar="DEVICE", help="RS-485 adapter, e.g. /dev/ttyUSB0")
    where.add_argument("--config", type=Path, help="YAML with devices (and intervals) to use")
    p.add_argument("--port", type=int, default=502, help="Modbus TCP port (with --host)")
    p.add_argument("--baudrate", type=int, default=9600, help="serial speed (with --serial)")
    p.add_argument("--unit", type=int, default=1, help="first device's Modbus unit id")
    p.add_argument("--url", help="where the Pi enrols (default: ZONNEWIJK_GATEWAY_ENROL_URL)")
    p.add_argument("--no-qr", action="store_true", help="do not print the QR code")
    p.add_argument("--qr-file", type=Path, help="also write the QR code (.png or .svg)")
    p.add_argument("--by", default="operator", help="who makes the code (for the log)")
    p.add_argument("--database-url")
    p.set_defaults(func=_cmd_enrol)

    p = gw.add_parser("revoke", help="take a gateway's access away at once (stolen Pi)")
    p.add_argument("gateway_id")
    p.add_argument("--reason")
    p.add_argument("--by", default="operator")
    p.add_argument("--database-url")
    p.set_defaults(func=_cmd_revoke)

    p = gw.add_parser("enrolments", help="the enrolment log: codes made, used and refused")
    p.add_argument("--gateway", help="only this gateway")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--database-url")
    p.set_defaults(func=_cmd_log)

    p = gw.add_parser("enrol-server", help="serve the enrolment endpoint alone over HTTPS")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--tls-cert", type=Path, required=True, help="server certificate (PEM)")
    p.add_argument("--tls-key", type=Path, required=True, help="its private key (PEM)")
    p.add_argument("--database-url")
    p.set_defaults(func=_cmd_server)


def _sessions(args: argparse.Namespace) -> Any:
    from collector.settings import get_settings
    from collector.store.db import make_engine, session_factory

    return session_factory(make_engine(args.database_url or get_settings().sqlalchemy_url))


def _service(args: argparse.Namespace, *, need_broker: bool) -> Any:
    from collector.enrolment.service import BrokerSetup, EnrolmentService
    from collector.settings import get_settings

    settings = get_settings()
    broker = BrokerSetup.from_settings(settings)
    if broker is None:
        if need_broker:
            raise SystemExit(
                "set ZONNEWIJK_GATEWAY_BROKER_HOST (the broker as gateways reach it) and the "
                "Mosquitto files (ZONNEWIJK_MQTT_PASSWORD_FILE, ZONNEWIJK_MQTT_ACL_FILE)"
            )
        broker = BrokerSetup(
            host="-", port=8883, password_file=Path("-"), acl_file=Path("-")
        )  # making codes needs no broker
    return EnrolmentService(_sessions(args), broker)


def _enrol_url(args: argparse.Namespace) -> str | None:
    import os

    from collector.settings import get_settings

    url = (
        args.url or get_settings().gateway_enrol_url or os.environ.get("ZONNEWIJK_PORTAL_BASE_URL")
    )
    return url.rstrip("/") if url else None


def _cmd_enrol(args: argparse.Namespace) -> int:
    import yaml

    from collector.enrolment.service import EnrolmentError
    from collector.remote.draft import DraftError, Transport

    url = _enrol_url(args)
    if url is None or not url.startswith("https://"):
        print(
            "gateways enrol: the Pi enrols over HTTPS: give --url https://... or set "
            "ZONNEWIJK_GATEWAY_ENROL_URL",
            file=sys.stderr,
        )
        return 2
    settings = None
    transport = None
    if args.config is not None:
        try:
            settings = yaml.safe_load(args.config.read_text())
        except (OSError, yaml.YAMLError) as exc:
            print(f"gateways enrol: cannot read {args.config}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(settings, dict):
            print(f"gateways enrol: {args.config} must hold a mapping", file=sys.stderr)
            return 2
    elif args.host or args.serial:
        transport = Transport(
            host=args.host,
            port=args.port,
            serial_port=args.serial,
            baudrate=args.baudrate,
            first_unit=args.unit,
        )
    service = _service(args, need_broker=False)
    try:
        created = service.create_code(
            args.site,
            created_by=args.by,
            lifetime=timedelta(hours=args.valid_hours),
            transport=transport,
            settings=settings,
        )
    except (EnrolmentError, DraftError) as exc:
        print(f"gateways enrol: {exc}", file=sys.stderr)
        return 1
    command = f"sudo zonnewijk-gateway enrol {url} {created.display}"
    until = created.expires_at.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M %Z")
    print(
        f"site {created.site_id}: gateway {created.gateway_id}, configuration version "
        f"{created.config_version}"
    )
    print()
    print(f"    enrolment code: {created.display}")
    print()
    print(f"Works once, until {until}. On the Pi, run:")
    print()
    print(f"    {command}")
    print()
    if not args.no_qr or args.qr_file:
        import segno

        qr = segno.make(command, error="m")
        if not args.no_qr:
            print("The same command as a QR code:")
            qr.terminal(out=sys.stdout, compact=True)
        if args.qr_file:
            qr.save(str(args.qr_file), scale=6)
            print(f"QR code written to {args.qr_file}")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    from collector.broker.security import BrokerSecurityError

    service = _service(args, need_broker=True)
    try:
        revoked = service.revoke(args.gateway_id, by=args.by, reason=args.reason)
    except (BrokerSecurityError, OSError) as exc:
        print(f"gateways revoke: {exc}", file=sys.stderr)
        return 1
    if not revoked:
        print(f"gateways revoke: {args.gateway_id} had no access to revoke", file=sys.stderr)
        return 1
    print(
        f"revoked {args.gateway_id}: broker user and ACL removed, broker reloaded, key and "
        "open enrolment codes invalidated; enrol a replacement with a new code"
    )
    return 0


def _cmd_log(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from collector.store.gateway_models import EnrolmentEventRow

    with _sessions(args)() as session:
        query = select(EnrolmentEventRow).order_by(EnrolmentEventRow.id.desc()).limit(args.limit)
        if args.gateway:
            query = query.where(EnrolmentEventRow.gateway_id == args.gateway)
        rows = list(session.scalars(query))
    for row in reversed(rows):
        print(
            f"{row.at.astimezone(AMSTERDAM):%Y-%m-%d %H:%M:%S}  {row.event:8}  "
            f"{row.gateway_id or '-':12}  {row.site_id or '-':8}  {row.reason or '':16}  "
            f"{row.remote or '':15}  {row.detail or ''}"
        )
    return 0


def _cmd_server(args: argparse.Namespace) -> int:
    import uvicorn

    from collector.enrolment.http import create_enrolment_app

    app = create_enrolment_app(_service(args, need_broker=True))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.tls_cert),
        ssl_keyfile=str(args.tls_key),
        log_level="info",
    )
    return 0
