"""``zonnewijk consent ...``: members' opt-in to read their smart meter (issue 17).

- ``zonnewijk consent give --member M --site S --device D [--gas] [--granularity 300]
  [--at ISO] --by NAME [--evidence TEXT]``: record an opt-in;
- ``zonnewijk consent withdraw --member M --device D --by NAME``: collection stops at once,
  the stored readings are due for deletion within 24 hours (``purge`` deletes them);
- ``zonnewijk consent list [--member M]``: every consent with its state;
- ``zonnewijk consent purge``: delete the stored readings of withdrawn consents (hourly).

``docs/privacy.md`` describes the lifecycle.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime

log = logging.getLogger(__name__)


def _at(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise SystemExit(f"error: --at {text} needs an offset, e.g. 2027-01-04T10:00:00+01:00")
    return value.astimezone(UTC)


def _cmd_give(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from collector.registry.actions import engine_from_args
    from collector.registry.consents import ConsentError, give_consent

    with Session(engine_from_args(args)) as session:
        try:
            row = give_consent(
                session,
                member_id=args.member,
                site_id=args.site,
                device_id=args.device,
                at=_at(args.at),
                recorded_by=args.by,
                electricity=not args.gas_only,
                gas=args.gas or args.gas_only,
                granularity_s=args.granularity,
                evidence=args.evidence,
            )
        except ConsentError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        session.commit()
        print(
            f"consent {row.consent_id}: member {row.member_id}, meter {row.device_id} on "
            f"{row.gateway_id}, from {row.given_at.isoformat()}, every {row.granularity_s} s"
            f"{', with gas' if row.gas else ''}"
        )
    return 0


def _cmd_withdraw(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from collector.registry.actions import engine_from_args
    from collector.registry.consents import ConsentError, withdraw_consent

    with Session(engine_from_args(args)) as session:
        try:
            row = withdraw_consent(
                session, member_id=args.member, device_id=args.device, at=_at(None), actor=args.by
            )
        except ConsentError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        session.commit()
        assert row.delete_by is not None
        print(
            f"consent {row.consent_id} withdrawn: the collector refuses meter {row.device_id} "
            f"from now on; its stored readings are deleted by {row.delete_by.isoformat()} "
            "(zonnewijk consent purge, hourly). Remove the p1 section from the gateway's "
            "configuration too."
        )
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from collector.registry.actions import engine_from_args
    from collector.registry.consents import summaries

    with Session(engine_from_args(args)) as session:
        rows = summaries(session, args.member)
    print(f"{'id':>4} {'member':8} {'meter':14} {'scope':16} {'every':>6}  state")
    for r in rows:
        scope = "+".join(s for s, on in (("electricity", r.electricity), ("gas", r.gas)) if on)
        if r.deleted_at is not None:
            state = f"withdrawn {r.withdrawn_at:%Y-%m-%d}, data deleted {r.deleted_at:%Y-%m-%d}"
        elif r.withdrawn_at is not None:
            state = f"withdrawn {r.withdrawn_at:%Y-%m-%d}, delete by {r.delete_by:%Y-%m-%d %H:%M}Z"
        else:
            state = f"active since {r.given_at:%Y-%m-%d}"
        print(
            f"{r.consent_id:>4} {r.member_id:8} {r.device_id:14} {scope:16} {r.granularity_s:>5}s  {state}"
        )
    return 0


def _cmd_purge(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from collector.registry.actions import engine_from_args
    from collector.registry.consent_purge import purge_expired_raw, purge_withdrawn
    from collector.settings import Settings
    from collector.timeseries.commands import influx_from_args
    from collector.timeseries.influx import InfluxError

    influx = influx_from_args(args, Settings())
    engine = engine_from_args(args)
    runs = 0
    while True:
        now = datetime.now(UTC)
        try:
            with Session(engine) as session:
                results = purge_withdrawn(session, influx, now=now)
            cutoff = purge_expired_raw(influx, now=now, retention_days=args.raw_retention_days)
        except (InfluxError, RuntimeError) as exc:
            if not args.every:
                print(f"consent purge: {exc}", file=sys.stderr)
                return 1
            log.warning("consent purge failed, retrying in %.0f s: %s", args.every, exc)
        else:
            for r in results:
                late = " (later than promised)" if r.overdue else ""
                print(
                    f"consent {r.consent_id}: {r.points_deleted} points of meter {r.device_id} "
                    f"deleted{late}"
                )
            if not results:
                print("no withdrawn consent to delete")
            print(f"raw meter readings before {cutoff:%Y-%m-%d %H:%M}Z deleted", flush=True)
        runs += 1
        if not args.every or (args.runs is not None and runs >= args.runs):
            return 0
        time.sleep(args.every)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from collector.registry.actions import engine_from_args
    from collector.registry.personal_data import PurposeMissingError, inspect_member
    from collector.settings import Settings
    from collector.timeseries.commands import influx_from_args
    from collector.timeseries.influx import InfluxError

    influx = influx_from_args(args, Settings())
    with Session(engine_from_args(args)) as session:
        try:
            days = inspect_member(
                session, influx, member_id=args.member, actor=args.by, purpose=args.purpose,
                days=args.days, now=datetime.now(UTC),
            )  # fmt: skip
        except PurposeMissingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except InfluxError as exc:
            print(f"consent inspect: {exc} (the access is recorded)", file=sys.stderr)
            return 1
    print(f"member {args.member}: access recorded (by {args.by}: {args.purpose})")
    print(
        f"{'day (UTC start)':20} {'produced':>9} {'used':>9} {'self-used':>9} {'export':>9} {'import':>9}"
    )
    for d in days:
        print(
            f"{d.day_start:%Y-%m-%d %H:%M}     {d.production_kwh:9.2f} {d.consumption_kwh:9.2f} "
            f"{d.self_consumed_kwh:9.2f} {d.export_kwh:9.2f} {d.import_kwh:9.2f}"
        )
    if not days:
        print("no daily balances (no consented meter, or none measured yet)")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``consent`` command group."""
    from collector.registry.commands import _db_args
    from collector.registry.consent_purge import RAW_RETENTION_DAYS
    from collector.registry.consents import DEFAULT_GRANULARITY_S, GRANULARITIES_S
    from collector.timeseries.commands import influx_args

    group = subparsers.add_parser("consent", help="members' opt-in to read their smart meter")
    sub = group.add_subparsers(dest="consent_command", required=True, metavar="ACTION")

    p = sub.add_parser("give", help="record a member's opt-in for their meter")
    _db_args(p)
    p.add_argument("--member", required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--device", required=True, help="the meter's device id (gateway's p1.device_id)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--gas", action="store_true", help="electricity and the gas meter")
    scope.add_argument("--gas-only", action="store_true", help="the gas meter only")
    p.add_argument(
        "--granularity", type=int, choices=GRANULARITIES_S, default=DEFAULT_GRANULARITY_S,
        help="shortest interval stored [s]",
    )  # fmt: skip
    p.add_argument("--at", help="when the member agreed (ISO 8601 with offset; default: now)")
    p.add_argument("--by", required=True, help="who records it")
    p.add_argument("--evidence", help="how it was given and where the proof is kept")
    p.set_defaults(func=_cmd_give)

    p = sub.add_parser("withdraw", help="withdraw: stop collecting, delete within 24 hours")
    _db_args(p)
    p.add_argument("--member", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--by", required=True, help="who records it (the member, an operator)")
    p.set_defaults(func=_cmd_withdraw)

    p = sub.add_parser("list", help="every consent and its state")
    _db_args(p)
    p.add_argument("--member")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "purge",
        help="delete the stored readings of withdrawn consents, and raw readings past retention",
    )
    _db_args(p)
    influx_args(p)
    p.add_argument(
        "--raw-retention-days",
        type=int,
        default=RAW_RETENTION_DAYS,
        help=f"keep raw meter readings this many days (default {RAW_RETENTION_DAYS}); the "
        "homes' daily balances are kept until withdrawal",
    )
    p.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="keep running: purge every SECONDS (a service; 3600 keeps the 24-hour promise)",
    )
    p.add_argument("--runs", type=int, help=argparse.SUPPRESS)  # bounded loop for tests

    p.set_defaults(func=_cmd_purge)

    p = sub.add_parser(
        "inspect",
        help="an operator's look at one member's daily meter balances (recorded, with purpose)",
    )
    _db_args(p)
    influx_args(p)
    p.add_argument("--member", required=True)
    p.add_argument("--by", required=True, help="who looks (the operator's name)")
    p.add_argument("--purpose", required=True, help="why: the support case, in a sentence")
    p.add_argument("--days", type=int, default=31, help="the last DAYS days (default 31)")
    p.set_defaults(func=_cmd_inspect)
