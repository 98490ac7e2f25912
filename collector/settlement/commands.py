"""``zonnewijk settle`` and ``zonnewijk export readings``.

- ``zonnewijk settle --period YYYY-MM`` reads the readings from InfluxDB and the history from
  the ledger, settles every contract, shows progress on stderr, writes the issued run to the
  ledger and its data set under ``<data dir>/settlements/`` (``--dry-run`` writes nothing).
- ``zonnewijk settle --readings FILE.jsonl --fleet FILE --period YYYY-MM`` settles from an
  exported data set with no server at all (and never writes a ledger).
- ``zonnewijk export readings --period YYYY-MM --out FILE.jsonl`` writes the data set a
  settlement of that month used (the stored one for an issued month) or would use.
- ``--format json`` prints the result per member (docs/settlement.md).
"""

from __future__ import annotations

import argparse
import gzip
import logging
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from collector.commandline import command_group
from collector.registry.fleet_file import Fleet, FleetFileError, load_fleet_file
from collector.registry.tariff_plans import TariffError
from collector.settlement.engine import SettlementError, settle
from collector.settlement.influx_source import load_readings, source_label
from collector.settlement.inputs import SettlementInputs, correction_periods
from collector.settlement.ledger import LedgerError, billed_parts, record_run, run_of
from collector.settlement.periods import Period, PeriodError, parse_month
from collector.settlement.readings_file import ReadingsFileError, read_dataset, write_dataset
from collector.settlement.results import SettlementResult
from collector.timeseries.influx import InfluxClient, InfluxError

log = logging.getLogger(__name__)

#: Issued months this far back are re-measured for corrections in each run.
DEFAULT_CORRECT_MONTHS = 3
#: Influx queries over a month of a large fleet take a while.
INFLUX_TIMEOUT_S = 300.0


class CommandError(Exception):
    """A problem the operator can fix; printed without a traceback, exit code 2."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``settle`` and ``export readings``."""
    p = subparsers.add_parser(
        "settle",
        help="settle a month: yields, statement lines, ledger",
        description="Settle one month for every contract. Reads InfluxDB and the ledger, or "
        "an exported readings file (--readings, with --fleet) with no servers at all.",
    )
    p.add_argument("--period", required=True, metavar="YYYY-MM", help="the month to settle")
    p.add_argument("--dry-run", action="store_true", help="compute and show, write nothing")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument("--out", type=Path, help="also write the JSON result to this file")
    p.add_argument("--readings", type=Path, help="settle offline from this exported data set")
    p.add_argument(
        "--fleet", type=Path, help="fleet file (default: the registry in the relational store)"
    )
    _common_args(p)
    p.set_defaults(func=_cmd_settle)

    export_sub = command_group(subparsers, "export", "export data sets", metavar="WHAT")
    e = export_sub.add_parser(
        "readings", help="the data set (readings and history) a month's settlement uses"
    )
    e.add_argument("--period", required=True, metavar="YYYY-MM")
    e.add_argument("--out", required=True, type=Path, help="FILE.jsonl (or .jsonl.gz)")
    e.add_argument("--fleet", type=Path, help="fleet file (default: the registry in the store)")
    _common_args(e)
    e.set_defaults(func=_cmd_export_readings)


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        help="ledger: SQLAlchemy URL (default: ZONNEWIJK_DATABASE_URL or the data dir's SQLite)",
    )
    p.add_argument("--influx-url", help="default: ZONNEWIJK_INFLUX_URL")
    p.add_argument("--influx-db", help="default: ZONNEWIJK_INFLUX_DB")
    p.add_argument(
        "--correct-months",
        type=int,
        default=DEFAULT_CORRECT_MONTHS,
        help=f"re-measure this many issued months for corrections (default "
        f"{DEFAULT_CORRECT_MONTHS})",
    )
    p.add_argument(
        "--coarse",
        choices=("raw", "rollup"),
        default="raw",
        help="read daily/hourly values from raw readings (default) or from the rollup_5m "
        "retention policy of `zonnewijk db init` (far fewer points at short poll intervals)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


# --------------------------------------------------------------------------- progress


class ProgressPrinter:
    """Progress lines on a stream, at most every ``every_s`` seconds per stage."""

    def __init__(self, stream: TextIO, *, every_s: float = 1.0, enabled: bool = True) -> None:
        self.stream = stream
        self.every_s = every_s
        self.enabled = enabled
        self._last: dict[str, float] = {}
        self._start = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last.get(stage, 0.0) < self.every_s:
            return
        self._last[stage] = now
        pct = 100.0 * done / total if total else 100.0
        print(
            f"[{now - self._start:7.1f} s] {stage}: {done}/{total} ({pct:.0f}%)",
            file=self.stream,
            flush=True,
        )

    def stage(self, name: str) -> Callable[[int, int], None]:
        return lambda done, total: self(name, done, total)


# --------------------------------------------------------------------------- plumbing


def ledger_engine(args: argparse.Namespace) -> Engine:
    """The ledger store of ``--database-url`` (or the settings), refused unless migrated."""
    from collector.settings import get_settings
    from collector.store.db import current_revision, head_revision, make_engine

    logging.getLogger("alembic").setLevel(logging.WARNING)
    engine = make_engine(args.database_url or get_settings().sqlalchemy_url)
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise CommandError(
            f"the ledger database is at schema {current or 'nothing'}, this code needs {head}: "
            "run `zonnewijk db migrate` first"
        )
    return engine


def influx_from_args(args: argparse.Namespace) -> InfluxClient:
    """InfluxDB from ``--influx-url``/``--influx-db`` or the settings (long timeout)."""
    from collector.settings import get_settings
    from collector.timeseries.commands import influx_client

    return influx_client(
        get_settings(), url=args.influx_url, database=args.influx_db, timeout_s=INFLUX_TIMEOUT_S
    )


def _fleet(args: argparse.Namespace, session: Session | None) -> Fleet:
    if args.fleet is not None:
        return load_fleet_file(args.fleet)
    if session is None:
        raise CommandError("give the fleet file with --fleet")
    from collector.registry.store_read import RegistryEmptyError, read_fleet

    try:
        return read_fleet(session)
    except RegistryEmptyError as exc:
        raise CommandError(str(exc)) from None


def _period(text: str) -> Period:
    try:
        return parse_month(text)
    except PeriodError as exc:
        raise CommandError(str(exc)) from None


def _inputs_from_servers(
    args: argparse.Namespace,
    session: Session,
    fleet: Fleet,
    period: Period,
    progress: ProgressPrinter,
    *,
    history_before: str | None = None,
) -> tuple[SettlementInputs, str]:
    billed = billed_parts(session, before=history_before)
    correct = tuple(p.label for p in correction_periods(billed, period, args.correct_months))
    client = influx_from_args(args)
    if not client.ping():
        raise CommandError(f"InfluxDB at {client.url} does not answer (check --influx-url)")
    readings = load_readings(
        client,
        fleet,
        period,
        billed=billed,
        correct_periods=correct,
        progress=progress,
        coarse=getattr(args, "coarse", "raw"),
    )
    inputs = SettlementInputs(
        period=period, fleet=fleet, readings=readings, billed=tuple(billed), correct_periods=correct
    )
    return inputs, source_label(client)


def data_dir() -> Path:
    """Where exports and statements go: ``ZONNEWIJK_DATA_DIR``."""
    from collector.settings import get_settings

    return get_settings().data_dir


def _print_text(result: SettlementResult, out: TextIO) -> None:
    data = result.to_json()
    print(f"Settlement {result.period}  ({result.code_version})", file=out)
    print(f"inputs sha256 {result.inputs_digest}", file=out)
    print(
        f"{'member':<14} {'measured kWh':>13} {'estimated kWh':>14} {'complete':>9} "
        f"{'excl. VAT':>11} {'incl. VAT':>11}",
        file=out,
    )
    for m in data["members"]:
        print(
            f"{m['member_id']:<14} {m['measured_kwh']:>13} {m['estimated_kwh']:>14} "
            f"{m['completeness'] * 100:>8.1f}% {m['total_excl_vat_eur']:>11} "
            f"{m['total_incl_vat_eur']:>11}",
            file=out,
        )
    print(
        f"{len(data['members'])} members; total {data['total_excl_vat_eur']} EUR excl. VAT, "
        f"{data['vat_eur']} VAT, {data['total_incl_vat_eur']} EUR incl. VAT",
        file=out,
    )
    anomalies = {
        (a["device_id"], a["kind"], a["ts"]): a["detail"]
        for m in data["members"]
        for c in m["contracts"]
        for a in c["anomalies"]
    }
    for (device, kind, ts), detail in sorted(anomalies.items()):
        print(f"anomaly: {device} {kind} at {ts}: {detail}", file=out)


def _emit(result: SettlementResult, args: argparse.Namespace) -> None:
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(result.dumps() + "\n", encoding="utf-8")
    if args.format == "json":
        sys.stdout.write(result.dumps() + "\n")
    else:
        _print_text(result, sys.stdout)


def _guarded(body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return body(args)
        except (
            CommandError,
            FleetFileError,
            ReadingsFileError,
            SettlementError,
            LedgerError,
            TariffError,
            InfluxError,
        ) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


# --------------------------------------------------------------------------- commands


@_guarded
def _cmd_settle(args: argparse.Namespace) -> int:
    period = _period(args.period)
    progress = ProgressPrinter(sys.stderr, enabled=not args.quiet)
    if args.readings is not None:
        if args.fleet is None:
            raise CommandError("settling from --readings needs the fleet file: add --fleet FILE")
        inputs = read_dataset(args.readings, load_fleet_file(args.fleet))
        if inputs.period != period:
            raise CommandError(
                f"{args.readings} holds the data set of {inputs.period.label}, not {period.label}"
            )
        result = settle(inputs, progress=progress.stage("contracts settled"))
        _emit(result, args)
        return 0

    now = datetime.now(UTC)
    if period.end_utc > now and not args.dry_run:
        raise CommandError(
            f"{period.label} has not ended yet (ends {period.end_utc.isoformat()}); "
            "use --dry-run for a preview"
        )
    engine = ledger_engine(args)
    with Session(engine) as session:
        fleet = _fleet(args, session)
        issued = run_of(session, period.label)
        if issued is not None and not args.dry_run:
            raise CommandError(
                f"{period.label} was issued as run {issued.run_id}; issued runs are never "
                "rewritten (late readings are corrected in the next month's run)"
            )
        # the history as it stood before this month (a dry run of an issued month included)
        inputs, source = _inputs_from_servers(
            args, session, fleet, period, progress, history_before=period.label
        )
        result = settle(inputs, progress=progress.stage("contracts settled"))
        if not args.dry_run:
            target = data_dir() / "settlements" / f"{period.label}.readings.jsonl.gz"
            write_dataset(target, inputs, source=source, created_at=now)
            run_id = record_run(
                session,
                result,
                fleet=fleet,
                correct_periods=inputs.correct_periods,
                readings_source=source,
                issued_at=now,
                inputs_file=str(target),
            )
            session.commit()
            print(f"issued run {run_id}; data set {target}", file=sys.stderr)
    _emit(result, args)
    return 0


@_guarded
def _cmd_export_readings(args: argparse.Namespace) -> int:
    period = _period(args.period)
    progress = ProgressPrinter(sys.stderr, enabled=not args.quiet)
    engine = ledger_engine(args)
    with Session(engine) as session:
        issued = run_of(session, period.label)
        if issued is not None and issued.inputs_file and Path(issued.inputs_file).exists():
            _copy_dataset(Path(issued.inputs_file), args.out)
            print(f"{args.out}: the data set run {issued.run_id} used", file=sys.stderr)
            return 0
        fleet = _fleet(args, session)
        inputs, source = _inputs_from_servers(
            args, session, fleet, period, progress, history_before=period.label
        )
    counts = write_dataset(args.out, inputs, source=source)
    note = " (rebuilt from today's data)" if issued is not None else ""
    print(
        f"{args.out}: {counts['devices']} devices, {counts['readings']} readings, "
        f"{counts['billed']} billed parts{note}",
        file=sys.stderr,
    )
    return 0


def _copy_dataset(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    opener: Any = gzip.open if source.suffix == ".gz" else open
    writer: Any = gzip.open if target.suffix == ".gz" else open
    with opener(source, "rb") as src, writer(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
