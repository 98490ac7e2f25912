"""``zonnewijk statements render|monthly|serve`` and ``zonnewijk export bookkeeping|sepa``.

``export`` is created by :mod:`collector.settlement.commands` (``export readings``); this module
adds its sub-commands to that group, so it must come after it in ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from collector.commandline import command_group
from collector.faults.scheduling import JobLock
from collector.registry.fleet_file import Fleet
from collector.settlement.commands import (
    CommandError,
    ProgressPrinter,
    data_dir,
    influx_from_args,
    ledger_engine,
)
from collector.settlement.counter_segments import CounterReadings
from collector.settlement.influx_source import load_readings, source_label
from collector.settlement.inputs import BilledPart
from collector.settlement.ledger import LedgerError
from collector.settlement.periods import Period, PeriodError, parse_month
from collector.statements.bookkeeping import BookkeepingError, export_run
from collector.statements.config import StatementsConfig, StatementsConfigError, load_config
from collector.statements.data import StatementDataError
from collector.statements.mailer import Mailer, MailError
from collector.statements.monthly import MonthlyJob, build_scheduler
from collector.statements.render import render_run
from collector.statements.sepa import SepaError, build_sepa
from collector.store.db import session_factory
from collector.timeseries.influx import InfluxError

ERRORS = (
    CommandError,
    StatementsConfigError,
    StatementDataError,
    BookkeepingError,
    SepaError,
    MailError,
    LedgerError,
    PeriodError,
    InfluxError,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``statements`` and the ``export bookkeeping`` / ``export sepa`` sub-commands."""
    st = subparsers.add_parser("statements", help="member statements (HTML and PDF)")
    st_sub = st.add_subparsers(dest="statements_command", required=True, metavar="WHAT")
    r = st_sub.add_parser("render", help="render every member's statement of a run")
    r.add_argument("--run", required=True, metavar="ID", help="run id, e.g. 2026-10.1")
    r.add_argument(
        "--out", type=Path, help="folder (default <data dir>/statements/<period>/statements)"
    )
    r.add_argument("--member", action="append", help="only this member (repeatable)")
    r.add_argument("--language", choices=("nl", "en"), help="override each member's language")
    _common(r)
    r.set_defaults(func=_guarded(_cmd_render))

    m = st_sub.add_parser(
        "monthly",
        help="run the monthly job now: settle, render, export, e-mail",
        description="Does what the scheduler does on the configured day, for --period (default: "
        "the month that is due). Runs once per month across instances.",
    )
    m.add_argument("--period", metavar="YYYY-MM", help="default: the month due now")
    m.add_argument("--retry-failed", action="store_true", help="forget a failed attempt first")
    _common(m)
    m.set_defaults(func=_guarded(_cmd_monthly))

    s = st_sub.add_parser("serve", help="run the monthly job on its schedule (foreground)")
    _common(s)
    s.set_defaults(func=_guarded(_cmd_serve))

    export_sub = command_group(subparsers, "export", "export data sets", metavar="WHAT")
    b = export_sub.add_parser("bookkeeping", help="CSV of a run's lines for the bookkeeping")
    b.add_argument("--run", required=True, metavar="ID")
    b.add_argument("--out", type=Path, help="folder (default <data dir>/statements/<period>)")
    _common(b)
    b.set_defaults(func=_guarded(_cmd_bookkeeping))
    p = export_sub.add_parser("sepa", help="SEPA pain.008 (debits) and pain.001 (credits) of a run")
    p.add_argument("--run", required=True, metavar="ID")
    p.add_argument("--out", type=Path, help="folder (default <data dir>/statements/<period>)")
    _common(p)
    p.set_defaults(func=_guarded(_cmd_sepa))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: ZONNEWIJK_DATABASE_URL or the data dir's SQLite)",
    )
    p.add_argument("--config", type=Path, help="default config/statements.yaml")
    p.add_argument("--influx-url", help="default: ZONNEWIJK_INFLUX_URL (monthly, serve, render)")
    p.add_argument("--influx-db", help="default: ZONNEWIJK_INFLUX_DB (monthly, serve, render)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _guarded(body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return body(args)
        except ERRORS as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


def _period_of(run_id: str) -> str:
    return run_id.partition(".")[0]


def _out(args: argparse.Namespace, *parts: str) -> Path:
    if args.out is not None:
        return Path(args.out)
    return data_dir().joinpath("statements", *parts)


def _cmd_render(args: argparse.Namespace) -> int:
    progress = ProgressPrinter(sys.stderr, enabled=not args.quiet)
    out = _out(args, _period_of(args.run), "statements")
    with Session(ledger_engine(args)) as session:
        done = render_run(
            session,
            args.run,
            out,
            language=args.language or None,
            members=args.member,
            progress=progress.stage("statements rendered"),
            influx=influx_from_args(args),
        )
    print(f"{len(done)} statements (HTML and PDF) in {out}", file=sys.stderr)
    return 0


def _cmd_bookkeeping(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    progress = ProgressPrinter(sys.stderr, enabled=not args.quiet)
    out = _out(args, _period_of(args.run))
    with Session(ledger_engine(args)) as session:
        result = export_run(
            session, args.run, out, config.ledger_accounts, progress=progress.stage("lines")
        )
    print(
        f"{result.lines_path}: {result.lines} lines, {result.total_excl_vat_eur} EUR excl. VAT, "
        f"{result.vat_eur} EUR VAT; summary {result.summary_path}",
        file=sys.stderr,
    )
    return 0


def _cmd_sepa(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    progress = ProgressPrinter(sys.stderr, enabled=not args.quiet)
    out = _out(args, _period_of(args.run))
    with Session(ledger_engine(args)) as session:
        result = build_sepa(
            session,
            args.run,
            out,
            config.sepa,
            today=datetime.now(UTC).date(),
            progress=progress.stage("members"),
        )
    print(
        f"direct debits: {result.debits}, {result.debit_total_eur} EUR -> {result.debit_path}",
        file=sys.stderr,
    )
    print(
        f"credit transfers: {result.transfers}, {result.transfer_total_eur} EUR -> "
        f"{result.transfer_path}",
        file=sys.stderr,
    )
    for problem in result.problems:
        print(f"not in a payment file: {problem}", file=sys.stderr)
    return 1 if result.problems else 0


def _influx_loader(
    args: argparse.Namespace,
) -> tuple[
    Callable[[Fleet, Period, Sequence[BilledPart], Sequence[str]], Mapping[str, CounterReadings]],
    str,
]:
    client = influx_from_args(args)

    def load(
        fleet: Fleet, period: Period, billed: Sequence[BilledPart], correct: Sequence[str]
    ) -> Mapping[str, CounterReadings]:
        return load_readings(client, fleet, period, billed=billed, correct_periods=correct)

    return load, source_label(client)


def _job(args: argparse.Namespace, config: StatementsConfig) -> MonthlyJob:
    sessions = session_factory(ledger_engine(args))
    loader, source = _influx_loader(args)
    return MonthlyJob(
        sessions=sessions,
        config=config,
        out_root=data_dir() / "statements",
        load_readings=loader,
        lock=JobLock(sessions),
        mailer=Mailer(config.smtp),
        readings_source=source,
        influx=influx_from_args(args),
    )


def _cmd_monthly(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    job = _job(args, config)
    now = datetime.now(UTC)
    if args.period:
        period = parse_month(args.period)
        if period.end_utc > now:
            raise CommandError(f"{period.label} has not ended yet")
        if args.retry_failed:
            job.retry_failed(period)
        outcome = job.run(period, now)
    else:
        result = job.maybe_run(now)
        if result is None:
            print("no month is due yet", file=sys.stderr)
            return 0
        outcome = result
    if not outcome.ran:
        print(f"{outcome.period}: already done or running elsewhere (job_runs)", file=sys.stderr)
        return 0
    print(f"{outcome.period}: {outcome.outcome}", file=sys.stderr)
    for key, value in sorted((outcome.summary or {}).items()):
        print(f"  {key}: {value}", file=sys.stderr)
    return 0 if outcome.outcome == "done" else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    scheduler = build_scheduler(_job(args, config), blocking=True)
    print(
        f"monthly statements: on day {config.schedule.day_of_month} at "
        f"{config.schedule.hour}:00 Europe/Amsterdam (checked hourly)",
        file=sys.stderr,
    )
    scheduler.start()
    return 0
