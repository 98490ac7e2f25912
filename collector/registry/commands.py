"""``zonnewijk db ...`` and ``zonnewijk registry ...`` commands.

- ``zonnewijk db migrate`` — create or upgrade the store's schema (SQLite file under the data
  directory by default, ``--database-url`` or ``ZONNEWIJK_DATABASE_URL`` for PostgreSQL);
- ``zonnewijk db status`` — the schema revision, the newest one, and drift from the models;
- ``zonnewijk db revision -m MSG`` — draft a migration from the models (developers);
- ``zonnewijk registry check FILE`` — validate a fleet file, print every problem with its line;
- ``zonnewijk registry load FILE [--prune] [--dry-run]`` — load it into the store idempotently;
- ``zonnewijk registry import-csv FILE [--dry-run]`` — import members and contracts;
- ``zonnewijk registry export FILE`` — write the store's registry as a fleet file;
- ``zonnewijk registry show --site S | --member M`` — a roof's or member's timeline;
- ``zonnewijk registry history [--entity E] [--key K]`` — the recorded changes.

The parsers are built here; the work lives in :mod:`collector.registry.actions`, imported only
when one of these commands runs (SQLAlchemy, alembic and the validators take a second to load).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from collector.commandline import command_group


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from collector.registry import actions

        action: Callable[[argparse.Namespace], int] = getattr(actions, name)
        return int(action(args))

    return run


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``db`` and ``registry`` command groups."""
    db_sub = command_group(subparsers, "db", "relational store and InfluxDB schema")

    p = db_sub.add_parser("migrate", help="create or upgrade the schema to the newest revision")
    _db_args(p)
    p.add_argument("--revision", default="head", help="target revision (default: head)")
    p.set_defaults(func=_lazy("_cmd_migrate"))

    p = db_sub.add_parser("status", help="schema revision and drift from the models")
    _db_args(p)
    p.set_defaults(func=_lazy("_cmd_status"))

    p = db_sub.add_parser("revision", help="draft a migration from the models (developers)")
    p.add_argument("-m", "--message", required=True)
    p.set_defaults(func=_lazy("_cmd_revision"))

    reg = subparsers.add_parser("registry", help="members, sites, devices, contracts, tariffs")
    reg_sub = reg.add_subparsers(dest="registry_command", required=True, metavar="ACTION")

    p = reg_sub.add_parser("check", help="validate a fleet file (no database needed)")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_lazy("_cmd_check"))

    p = reg_sub.add_parser("load", help="load a fleet file into the store (idempotent)")
    _db_args(p)
    p.add_argument("file", type=Path)
    p.add_argument(
        "--prune", action="store_true", help="delete store rows that are not in the file"
    )
    p.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    p.set_defaults(func=_lazy("_cmd_load"))

    p = reg_sub.add_parser("import-csv", help="import members and contracts from a CSV file")
    _db_args(p)
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    p.set_defaults(func=_lazy("_cmd_import_csv"))

    p = reg_sub.add_parser("export", help="write the store's registry as a fleet file")
    _db_args(p)
    p.add_argument("file", type=Path, help="output YAML ('-' for standard output)")
    p.set_defaults(func=_lazy("_cmd_export"))

    p = reg_sub.add_parser("show", help="a site's or member's timeline: devices and contracts")
    _db_args(p)
    p.add_argument("--fleet", type=Path, help="read this fleet file instead of the store")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--site", help="site id")
    which.add_argument("--member", help="member id")
    p.set_defaults(func=_lazy("_cmd_show"))

    p = reg_sub.add_parser("history", help="changes recorded by loads and imports")
    _db_args(p)
    p.add_argument("--entity", help="member, site, device, contract, tariff_version, ...")
    p.add_argument("--key", help="the entity's id, e.g. M0001")
    p.add_argument("--limit", type=int, default=200)
    p.set_defaults(func=_lazy("_cmd_history"))


def _db_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: ZONNEWIJK_DATABASE_URL or a SQLite file in the data dir)",
    )
