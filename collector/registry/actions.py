"""The work behind ``zonnewijk db ...`` and ``zonnewijk registry ...`` (see :mod:`.commands`).

Imported only when one of these commands runs, so other ``zonnewijk`` commands start fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from datetime import date
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from collector.registry.csv_import import CsvFormatError, import_csv
from collector.registry.fleet_file import (
    Fleet,
    FleetFileError,
    count_entries,
    dump_fleet_yaml,
    load_fleet_file,
)
from collector.registry.store_read import RegistryEmptyError, read_fleet
from collector.registry.store_sync import RegistryLoadError, file_sha256, sync_fleet
from collector.store.db import (
    current_revision,
    draft_revision,
    head_revision,
    make_engine,
    migrate,
    schema_differences,
    session_factory,
)
from collector.store.models import RegistryChangeRow, RegistryLoadRow


def engine_from_args(args: argparse.Namespace) -> Engine:
    if not getattr(args, "verbose", False):
        logging.getLogger("alembic").setLevel(logging.WARNING)
    url: str | None = getattr(args, "database_url", None)
    if not url:
        from collector.settings import get_settings

        url = get_settings().sqlalchemy_url
    return make_engine(url)


def _require_schema(engine: Engine) -> bool:
    current, head = current_revision(engine), head_revision()
    if current != head:
        print(
            f"error: the database schema is at {current or 'nothing'}, this code needs {head}; "
            "run `zonnewijk db migrate` first",
            file=sys.stderr,
        )
        return False
    return True


def _cmd_migrate(args: argparse.Namespace) -> int:
    engine = engine_from_args(args)
    before = current_revision(engine)
    after = migrate(engine, args.revision)
    if before == after:
        print(f"schema already at {after}")
    else:
        print(f"schema migrated {before or 'empty'} -> {after}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    engine = engine_from_args(args)
    current, head = current_revision(engine), head_revision()
    print(f"database: {engine.url.render_as_string(hide_password=True)}")
    print(f"schema revision: {current or 'none'} (newest: {head})")
    if current != head:
        print("run `zonnewijk db migrate`")
        return 1
    diffs = schema_differences(engine)
    for diff in diffs:
        print(f"drift: {diff}")
    return 1 if diffs else 0


def _cmd_revision(args: argparse.Namespace) -> int:
    # Draft against a scratch SQLite database at head, so only new model changes show up.
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/draft.sqlite3")
        migrate(engine)
        draft_revision(engine, args.message)
    print("review the new file in collector/store/migrations/versions before committing it")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        fleet = load_fleet_file(args.file)
    except FleetFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {k}" for k, n in count_entries(fleet).items())
    print(f"{args.file}: valid ({counts})")
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
        fleet = load_fleet_file(args.file)
    except FleetFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    engine = engine_from_args(args)
    if not _require_schema(engine):
        return 2
    session = session_factory(engine)()
    try:
        report = sync_fleet(
            session,
            fleet,
            source=str(args.file),
            sha256=file_sha256(data),
            prune=args.prune,
        )
        if args.dry_run:
            session.rollback()
        else:
            session.commit()
    except RegistryLoadError as exc:
        session.rollback()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except IntegrityError as exc:
        session.rollback()
        print(
            f"error: the store refused the load ({exc.orig}); if another load or import ran at "
            "the same time, run this one again",
            file=sys.stderr,
        )
        return 1
    finally:
        session.close()
    for change in report.changes:
        if args.dry_run or args.verbose:
            print(
                f"  {change.action} {change.entity} {change.entity_key}"
                + (
                    f" {change.field}: {change.old_value} -> {change.new_value}"
                    if change.field
                    else ""
                )
            )
    print(("dry run, nothing written: " if args.dry_run else "") + report.summary())
    return 0


def _cmd_import_csv(args: argparse.Namespace) -> int:
    engine = engine_from_args(args)
    if not _require_schema(engine):
        return 2
    session = session_factory(engine)()
    try:
        report = import_csv(session, args.file, dry_run=args.dry_run)
        if args.dry_run:
            session.rollback()
        else:
            session.commit()
    except (CsvFormatError, RegistryEmptyError) as exc:
        session.rollback()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except IntegrityError as exc:
        session.rollback()
        print(
            f"error: the store refused the import ({exc.orig}); if another load or import ran "
            "at the same time, run this one again",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    finally:
        session.close()
    for problem in report.problems:
        print(f"{args.file}: {problem}", file=sys.stderr)
    print(report.summary())
    return 1 if report.problems else 0


def _cmd_export(args: argparse.Namespace) -> int:
    engine = engine_from_args(args)
    if not _require_schema(engine):
        return 2
    with session_factory(engine)() as session:
        try:
            fleet = read_fleet(session)
        except RegistryEmptyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    text = dump_fleet_yaml(fleet, header="Exported from the Zonnewijk registry store")
    if str(args.file) == "-":
        sys.stdout.write(text)
    else:
        args.file.write_text(text, encoding="utf-8")
        print(f"wrote {args.file}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    try:
        if args.fleet is not None:
            fleet = load_fleet_file(args.fleet)
        else:
            engine = engine_from_args(args)
            if not _require_schema(engine):
                return 2
            with session_factory(engine)() as session:
                fleet = read_fleet(session)
    except (FleetFileError, RegistryEmptyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        lines = (
            site_timeline(fleet, args.site) if args.site else member_timeline(fleet, args.member)
        )
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _until(day: date | None) -> str:
    return str(day) if day is not None else "open end"


def site_timeline(fleet: Fleet, site_id: str) -> list[str]:
    """Who rented a roof when, and which inverter measured it when."""
    site = fleet.site(site_id)
    lines = [
        f"site {site.site_id}: {site.address.street}, {site.address.postal_code} "
        f"{site.address.city}; {site.kwp} kWp, tilt {site.tilt_deg:g}°, azimuth "
        f"{site.azimuth_deg:g}°, gateway {site.gateway_id}",
        "devices:",
    ]
    for dev in fleet.devices_of_site(site_id):
        lines.append(
            f"  {dev.installed_on} to {_until(dev.removed_on)}  {dev.device_id} ({dev.family}"
            f"{', ' + dev.model if dev.model else ''}, {dev.ac_rating_w} W, {dev.kwp} kWp)"
        )
        if dev.replaces is not None:
            rep = dev.replaces
            lines.append(
                f"      replaced {rep.device_id} at {rep.at.isoformat()}: old counter "
                f"{rep.old_last_energy_wh} Wh, new counter {rep.new_first_energy_wh} Wh"
            )
        for reset in dev.counter_resets:
            lines.append(
                f"      counter reset at {reset.at.isoformat()}: {reset.last_energy_wh} Wh -> "
                f"{reset.first_energy_wh} Wh"
            )
    lines.append("contracts:")
    contracts = sorted(
        (c for c in fleet.contracts if c.site_id == site_id), key=lambda c: c.start_date
    )
    for con in contracts:
        member = fleet.member(con.member_id)
        lines.append(
            f"  {con.start_date} to {_until(con.end_date)}  {con.contract_id} "
            f"{member.member_id} {member.name} (plan {con.tariff_plan_id})"
        )
    if not contracts:
        lines.append("  none")
    return lines


def member_timeline(fleet: Fleet, member_id: str) -> list[str]:
    """A member's details and contracts."""
    m = fleet.member(member_id)
    lines = [
        f"member {m.member_id}: {m.name} <{m.email}>, {m.address.street}, "
        f"{m.address.postal_code} {m.address.city}; language {m.language}"
        + (f"; IBAN {m.iban}" if m.iban else "")
        + (f"; mandate {m.mandate_id} of {m.mandate_date}" if m.mandate_id else ""),
        "contracts:",
    ]
    contracts = sorted(
        (c for c in fleet.contracts if c.member_id == member_id), key=lambda c: c.start_date
    )
    for con in contracts:
        lines.append(
            f"  {con.start_date} to {_until(con.end_date)}  {con.contract_id} site {con.site_id}"
            f" (plan {con.tariff_plan_id}, contract years from {con.contract_year_anchor:%d %B})"
        )
    if not contracts:
        lines.append("  none")
    return lines


def _cmd_history(args: argparse.Namespace) -> int:
    engine = engine_from_args(args)
    if not _require_schema(engine):
        return 2
    query: Any = (
        select(RegistryChangeRow, RegistryLoadRow)
        .join(RegistryLoadRow, RegistryLoadRow.load_id == RegistryChangeRow.load_id)
        .order_by(RegistryChangeRow.change_id.desc())
        .limit(args.limit)
    )
    if args.entity:
        query = query.where(RegistryChangeRow.entity == args.entity)
    if args.key:
        query = query.where(RegistryChangeRow.entity_key == args.key)
    with session_factory(engine)() as session:
        rows = list(session.execute(query))
    for change, load in reversed(rows):
        detail = (
            f"{change.field}: {change.old_value} -> {change.new_value}"
            if change.field
            else (change.new_value or change.old_value or "")
        )
        print(
            f"{load.loaded_at:%Y-%m-%d %H:%M:%SZ} load {load.load_id} ({load.kind} {load.source}) "
            f"{change.action} {change.entity} {change.entity_key} {detail}"
        )
    return 0
