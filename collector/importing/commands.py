"""``zonnewijk import readings FILE...`` (and ``zonnewijk faults check``, see
:mod:`collector.importing.check_commands`).

Readings from files into InfluxDB through the collector's validation, with a progress bar,
a summary (stored, duplicates, rejected by reason with line numbers), dead letters as JSON
lines, and ``--dry-run``. ``docs/importing.md`` describes the formats.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from collector.commandline import command_group
from collector.importing.generic_csv import CsvOptions, FormatError, GenericCsv
from collector.importing.loader import Importer
from collector.importing.report import ProgressBar, dumps, print_summary
from collector.importing.rows import ReadingSource
from collector.importing.spool_file import SpoolFile, is_spool
from collector.importing.summary import ImportSummary, import_limits
from collector.importing.timestamps import LocalTimes, zone
from collector.ingest.directory import DeviceDirectory, DeviceRecord, OpenDirectory, StaticDirectory
from collector.registry.fleet_file import Fleet, FleetFileError, load_fleet_file
from collector.timeseries.influx import InfluxError

log = logging.getLogger(__name__)

FILE_FORMATS = ("auto", "csv", "spool", "fusionsolar", "sunny-portal")


class CommandError(Exception):
    """A problem the operator can fix; printed without a traceback, exit code 2."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = command_group(sub, "import", "import data from files", metavar="WHAT")
    p = group.add_parser(
        "readings",
        help="readings from CSV files, vendor exports or a gateway's spool into InfluxDB",
        description="Import readings through the collector's validation (same reasons, dead "
        "letters); importing a file twice stores nothing new. Formats: docs/importing.md.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--file-format", choices=FILE_FORMATS, default="auto", help="default: detect")
    p.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    p.add_argument("--format", choices=("text", "json"), default="text", help="summary format")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--device", help="the one device of a file that has no device column")
    p.add_argument("--gateway", help="the gateway of the file's devices (a spool names none)")
    p.add_argument(
        "--device-map",
        action="append",
        default=[],
        metavar="NAME=DEVICE",
        help="a vendor's device name (FusionSolar ManageObject, Sunny Portal system) -> device id",
    )
    p.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="STANDARD=HEADER",
        help="generic CSV: which of the file's columns is a standard one (repeatable)",
    )
    p.add_argument("--timezone", help="zone of local times without an offset (Europe/Amsterdam)")
    p.add_argument("--time-format", help="strftime layout of the timestamps (default ISO 8601)")
    p.add_argument("--decimal-comma", action="store_true", help="numbers written 1.234,5")
    p.add_argument("--separator", help="CSV separator (default: detected)")
    p.add_argument("--interval-minutes", type=float, help="length of interval-energy rows")
    p.add_argument("--interval-label", choices=("start", "end"), default="end")
    p.add_argument("--fleet", type=Path, help="fleet file: devices, their gateways and ratings")
    p.add_argument("--registry-url", help="the registry's SQLAlchemy URL instead of --fleet")
    p.add_argument(
        "--database-url",
        help="ledger: warn about issued months (default: ZONNEWIJK_DATABASE_URL or the data dir's)",
    )
    p.add_argument("--max-age-days", type=float, help="refuse older readings (default 20 years)")
    p.add_argument("--dead-letters", type=Path, help="rejections as JSON lines (default: data dir)")
    p.add_argument("--influx-url", help="InfluxDB URL (ZONNEWIJK_INFLUX_URL)")
    p.add_argument("--influx-db", help="database (ZONNEWIJK_INFLUX_DB)")
    p.set_defaults(func=_cmd_import_readings)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise CommandError(f"{option} {value!r}: write NAME=VALUE")
        out[name.strip()] = target.strip()
    return out


def fleet_directory(fleet: Fleet) -> tuple[DeviceDirectory, dict[str, str]]:
    """The registry's devices as the collector's directory, and each device's gateway."""
    sites = {s.site_id: s for s in fleet.sites}
    records = []
    gateway_of: dict[str, str] = {}
    for device in fleet.devices:
        gateway = device.gateway_id or sites[device.site_id].gateway_id
        records.append(DeviceRecord(gateway, device.device_id, float(device.ac_rating_w)))
        gateway_of[device.device_id] = gateway
    return StaticDirectory.of(records), gateway_of


def _fleet(args: argparse.Namespace) -> Fleet | None:
    if args.fleet is not None:
        return load_fleet_file(args.fleet)
    if args.registry_url:
        from sqlalchemy.orm import Session

        from collector.registry.store_read import read_fleet
        from collector.store.db import make_engine

        with Session(make_engine(args.registry_url)) as session:
            return read_fleet(session)
    return None


def detect_format(path: Path) -> str:
    """The format of a file from its first bytes and lines."""
    if is_spool(path):
        return "spool"
    from collector.importing.text_files import TextFile

    text = TextFile(path)
    try:
        head = [line for _, line in zip(range(30), text.lines(), strict=False)]
    finally:
        text.close()
    joined = "".join(head)
    if "ManageObject" in joined and "Start Time" in joined:
        return "fusionsolar"
    if (head and head[0].strip().lower().startswith("sep=")) or '"Time period"' in joined:
        return "sunny-portal"
    return "csv"


def open_source(path: Path, args: argparse.Namespace, times: LocalTimes) -> ReadingSource:
    """The file in its format (``--file-format`` or detected)."""
    if not path.exists():
        raise CommandError(f"{path}: no such file")
    kind = args.file_format if args.file_format != "auto" else detect_format(path)
    devices = _pairs(args.device_map, "--device-map")
    if kind == "spool":
        return SpoolFile(path, gateway_id=args.gateway)
    if kind == "fusionsolar":
        from collector.importing.fusionsolar import FusionSolarReport

        # FusionSolar writes the plant's local time without an offset
        plant = times if times.tz is not None else LocalTimes(zone("Europe/Amsterdam"))
        return FusionSolarReport(path, plant, device_map=devices, gateway_id=args.gateway)
    if kind == "sunny-portal":
        from collector.importing.sunny_portal import SunnyPortalCsv

        return SunnyPortalCsv(
            path, device_map=devices, device_id=args.device, gateway_id=args.gateway
        )
    options = CsvOptions(
        columns=_pairs(args.column, "--column"),
        device_id=args.device,
        gateway_id=args.gateway,
        time_format=args.time_format,
        decimal_comma=args.decimal_comma,
        separator=args.separator,
        interval_minutes=args.interval_minutes,
        interval_label=args.interval_label,
    )
    return GenericCsv(path, options, times)


def _dead_letter_file(args: argparse.Namespace) -> Path:
    if args.dead_letters is not None:
        return Path(args.dead_letters)
    from collector.settings import get_settings

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return get_settings().data_dir / "imports" / f"rejected-{stamp}.jsonl"


class DeadLetterFile:
    """Dead letters as JSON lines, the file created with the first one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._out: TextIO | None = None

    def __call__(self, topic: str, payload: str) -> None:
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = self.path.open("a", encoding="utf-8")
        self._out.write(payload + "\n")
        self.count += 1

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


def _guarded(body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return body(args)
        except (CommandError, FormatError, FleetFileError, InfluxError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


@_guarded
def _cmd_import_readings(args: argparse.Namespace) -> int:
    from collector.settings import get_settings
    from collector.timeseries.commands import influx_client

    settings = get_settings()
    times = LocalTimes(zone(args.timezone))
    sources = [open_source(path, args, times) for path in args.files]
    fleet = _fleet(args)
    directory: DeviceDirectory = OpenDirectory()
    gateway_of: dict[str, str] = {}
    if fleet is not None:
        directory, gateway_of = fleet_directory(fleet)
    influx = influx_client(settings, url=args.influx_url, database=args.influx_db, timeout_s=120)
    if not influx.ping():
        if not args.dry_run:
            raise CommandError(f"InfluxDB at {influx.url} does not answer (check --influx-url)")
        influx_or_none = None
    else:
        if not args.dry_run:
            influx.create_database()
        influx_or_none = influx
    dead = DeadLetterFile(_dead_letter_file(args))
    # every rejection is in the summary and the dead-letter file: no log line per row
    logging.getLogger("collector.ingest.dead_letter").setLevel(logging.ERROR)
    bar = ProgressBar(sys.stderr, enabled=not args.quiet)
    importer = Importer(
        influx_or_none,
        dead_letter=dead,
        directory=directory,
        gateway_of=gateway_of,
        default_gateway=args.gateway,
        limits=import_limits(args.max_age_days),
        dry_run=args.dry_run,
        progress=bar,
    )
    try:
        for source in sources:
            bar.restart()
            summary = importer.import_source(source)
            bar(source, summary.rows, final=True)
        result = importer.finish()
    finally:
        dead.close()
    if influx_or_none is None:
        result.notes.append(
            "InfluxDB did not answer: duplicates of stored readings were not looked for"
        )
    _check_ledger(args, settings, result)
    if dead.count:
        result.notes.append(f"{dead.count:,} dead letters in {dead.path}")
    if args.format == "json":
        print(dumps(result))
    else:
        print_summary(result, sys.stdout)
    return 0


def _check_ledger(args: argparse.Namespace, settings: object, result: ImportSummary) -> None:
    """Note the issued months the readings fall in (the ledger is only read)."""
    if not result.devices:
        return
    url = args.database_url or getattr(settings, "sqlalchemy_url", None)
    if not url:
        return
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return  # no ledger here yet: nothing issued
    from sqlalchemy.orm import Session

    from collector.importing.settled import check_settled
    from collector.store.db import current_revision, make_engine

    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        engine = make_engine(url)
        if current_revision(engine) is None:
            return
        with Session(engine) as session:
            check = check_settled(session, result.devices)
    except Exception as exc:  # the import is done; a ledger that cannot be read is a note
        result.notes.append(f"ledger not checked for issued months: {exc}")
        return
    result.issued_months = check.issued
    advice = check.advice()
    if advice:
        result.notes.append(advice)


__all__ = ["fleet_directory", "open_source", "register"]
