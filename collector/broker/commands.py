"""``zonnewijk gateways add|remove`` and ``zonnewijk broker add-collector``: broker users.

Credentials are written hashed to Mosquitto's password file and each user gets its ACL block
(:mod:`collector.broker.security`); the password is printed once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from collector.broker.security import (
    BrokerSecurityError,
    add_collector,
    add_gateway,
    remove_user,
)
from collector.commandline import command_group


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gw = command_group(sub, "gateways", "gateways' broker credentials")
    p = gw.add_parser("add", help="create (or rotate) a gateway's credentials and ACL entry")
    p.add_argument("gateway_id")
    _broker_files(p)
    p.set_defaults(func=_cmd_gateway_add)
    p = gw.add_parser("remove", help="revoke a gateway's credentials and ACL entry")
    p.add_argument("gateway_id")
    _broker_files(p)
    p.set_defaults(func=_cmd_remove)

    br = command_group(sub, "broker", "broker users")
    p = br.add_parser("add-collector", help="credentials and ACL entry for a collector")
    p.add_argument("username", help="starts with 'collector', e.g. collector-1")
    _broker_files(p)
    p.set_defaults(func=_cmd_collector_add)


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
