"""``zonnewijk portal``, ``zonnewijk members invite``, ``zonnewijk tokens create``.

Parsers only; the work is imported when a command runs (keeps ``zonnewijk --help`` fast).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("portal", help="serve the member portal and operator API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--database-url", help="default: ZONNEWIJK_DATABASE_URL or the data dir's")
    p.add_argument("--influx-url", help="default: ZONNEWIJK_INFLUX_URL")
    p.add_argument("--influx-db", help="default: ZONNEWIJK_INFLUX_DB")
    p.add_argument("--base-url", help="address members reach the portal at (links in e-mails)")
    p.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="proxies whose X-Forwarded-Proto is trusted (TLS in front of the portal)",
    )
    p.set_defaults(func=_cmd_portal)

    members = subparsers.add_parser("members", help="portal accounts of members and operators")
    msub = members.add_subparsers(dest="members_command", required=True, metavar="ACTION")
    p = msub.add_parser("invite", help="a one-time link for a member to set their password")
    p.add_argument("member_id", nargs="?", help="registry member id")
    p.add_argument("--operator", metavar="EMAIL", help="invite an operator instead")
    p.add_argument("--name", default="", help="operator's name (with --operator)")
    p.add_argument("--send", action="store_true", help="e-mail the link (ZONNEWIJK_SMTP_HOST)")
    p.add_argument("--database-url")
    p.add_argument("--base-url")
    p.set_defaults(func=_cmd_invite)
    p = msub.add_parser("list", help="accounts and their state")
    p.add_argument("--database-url")
    p.set_defaults(func=_cmd_list)

    tokens = subparsers.add_parser("tokens", help="operator API tokens")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    p = tsub.add_parser("create", help="a new operator API token (printed once, stored hashed)")
    p.add_argument("name", help="who or what uses the token")
    p.add_argument("--database-url")
    p.set_defaults(func=_cmd_token_create)
    p = tsub.add_parser("revoke", help="revoke an API token by its id")
    p.add_argument("token_id", type=int)
    p.add_argument("--database-url")
    p.set_defaults(func=_cmd_token_revoke)


def _config(args: argparse.Namespace) -> Any:
    from collector.portal.config import PortalConfig
    from collector.settings import get_settings

    overrides: dict[str, object] = {}
    for name in ("database_url", "influx_url", "influx_db", "base_url"):
        value = getattr(args, name, None)
        if value:
            overrides[name] = value
    return PortalConfig.from_settings(get_settings(), **overrides)


def _accounts(config: Any) -> Any:
    from collector.portal.accounts import AccountService
    from collector.store.db import current_revision, head_revision, make_engine, session_factory

    engine = make_engine(config.database_url)
    if current_revision(engine) != head_revision():
        raise SystemExit(
            f"the database is at schema {current_revision(engine) or 'nothing'}, this code "
            f"needs {head_revision()}: run `zonnewijk db migrate` first"
        )
    return AccountService(session_factory(engine))


def _cmd_portal(args: argparse.Namespace) -> int:
    import uvicorn

    from collector.enrolment.service import BrokerSetup
    from collector.portal.app import create_app
    from collector.settings import get_settings

    config = _config(args)
    _accounts(config)  # refuse an unmigrated database before serving
    app = create_app(config, enrolment_broker=BrokerSetup.from_settings(get_settings()))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        log_level="info",
    )
    return 0


def _cmd_invite(args: argparse.Namespace) -> int:
    from collector.portal.accounts import AccountError
    from collector.portal.i18n import translate
    from collector.portal.mail import send_mail

    config = _config(args)
    accounts = _accounts(config)
    try:
        if args.operator:
            account = accounts.create_operator_account(args.operator, args.name or args.operator)
        elif args.member_id:
            account = accounts.create_member_account(args.member_id)
        else:
            print("give a MEMBER_ID or --operator EMAIL", file=sys.stderr)
            return 2
        token = accounts.issue_link(account.account_id, "invite")
    except AccountError as exc:
        print(f"cannot invite: {exc}", file=sys.stderr)
        return 1
    link = f"{config.base_url.rstrip('/')}/invite/{token}"
    if args.send:
        try:
            send_mail(
                config,
                account.email,
                translate("invite.mail_subject", account.language),
                translate(
                    "invite.mail_body", account.language, name=account.display_name, link=link
                ),
            )
        except (OSError, RuntimeError) as exc:
            print(f"the e-mail to {account.email} failed: {exc}; the link is:\n{link}")
            return 1
        print(f"invitation e-mailed to {account.email} (valid 14 days)")
        return 0
    print(f"one-time link for {account.display_name} <{account.email}> (valid 14 days):")
    print(link)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    accounts = _accounts(_config(args))
    for a in accounts.list():
        state = "inactive" if not a.active else ("active" if a.has_password else "invited")
        print(f"{a.account_id:5d}  {a.role:8s}  {state:8s}  {a.member_id or '-':12s}  {a.email}")
    return 0


def _cmd_token_create(args: argparse.Namespace) -> int:
    from collector.portal.accounts import AccountError

    accounts = _accounts(_config(args))
    try:
        token_id, token = accounts.create_api_token(args.name)
    except AccountError as exc:
        print(f"cannot create a token: {exc}", file=sys.stderr)
        return 1
    print(f"API token {token_id} for {args.name!r} (shown once; store it now):")
    print(token)
    return 0


def _cmd_token_revoke(args: argparse.Namespace) -> int:
    from collector.portal.accounts import AccountError

    accounts = _accounts(_config(args))
    try:
        accounts.revoke_api_token(args.token_id)
    except AccountError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"API token {args.token_id} revoked")
    return 0
