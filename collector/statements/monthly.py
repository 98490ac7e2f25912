"""The monthly job: settle the month that closed, render statements, write exports, e-mail.

Runs from APScheduler (:func:`build_scheduler`): an hourly check that does the work once the
configured day and hour of the next month (Europe/Amsterdam) have come, so late data has
time to arrive. However many server instances run it, a month is done once: each run first
claims ``("monthly-statements", "YYYY-MM")`` in the ``job_runs`` table
(:class:`collector.faults.scheduling.JobLock`); the others skip. The outcome (``done`` or
``failed``, with a JSON summary) is recorded in that row and in ``outcome.json`` next to the
files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from collector.faults.scheduling import JobLock
from collector.registry.fleet_file import Fleet
from collector.registry.store_read import read_fleet
from collector.settlement.counter_segments import CounterReadings
from collector.settlement.engine import settle
from collector.settlement.inputs import BilledPart, SettlementInputs, correction_periods
from collector.settlement.ledger import billed_parts, record_run, run_of
from collector.settlement.periods import AMSTERDAM, Period, month_period
from collector.statements.bookkeeping import export_run
from collector.statements.config import StatementsConfig
from collector.statements.data import cooperative
from collector.statements.mailer import Mailer, MailError, statement_message, summary_message
from collector.statements.render import render_run
from collector.statements.sepa import build_sepa
from collector.store.alert_models import JobRunRow
from collector.timeseries.influx import InfluxClient

log = logging.getLogger(__name__)

JOB = "monthly-statements"

#: Reads the counters a settlement needs: (fleet, period, billed history, correction months).
ReadingsLoader = Callable[
    [Fleet, Period, Sequence[BilledPart], Sequence[str]], Mapping[str, CounterReadings]
]


def month_to_settle(now: datetime, config: StatementsConfig) -> Period | None:
    """The month whose settlement is due at ``now``: the previous local month, once the
    configured day and hour of the current month have come; None before that."""
    local = now.astimezone(AMSTERDAM)
    due = datetime(
        local.year,
        local.month,
        config.schedule.day_of_month,
        config.schedule.hour,
        tzinfo=AMSTERDAM,
    )
    if local < due:
        return None
    first = date(local.year, local.month, 1) - timedelta(days=1)
    return month_period(first.year, first.month)


@dataclass
class MonthlyOutcome:
    period: str
    ran: bool
    outcome: str = "skipped"
    summary: dict[str, Any] | None = None


@dataclass
class MonthlyJob:
    """One month's pipeline; every part is a real component (store, renderer, SMTP)."""

    sessions: sessionmaker[Session]
    config: StatementsConfig
    out_root: Path
    load_readings: ReadingsLoader
    lock: JobLock
    mailer: Mailer
    readings_source: str = "influxdb"
    #: Where the homes' meter days are, for the statements' self-consumption box.
    influx: InfluxClient | None = None

    def maybe_run(self, now: datetime | None = None) -> MonthlyOutcome | None:
        """Run the due month if it is due (the lock makes it once across instances)."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        period = month_to_settle(now, self.config)
        return None if period is None else self.run(period, now)

    def retry_failed(self, period: Period) -> bool:
        """Forget a failed attempt at ``period`` so it can run again; True when one was removed."""
        with self.sessions.begin() as session:
            removed = session.execute(
                delete(JobRunRow).where(
                    JobRunRow.job == JOB,
                    JobRunRow.slot == period.label,
                    JobRunRow.outcome == "failed",
                )
            )
        return bool(getattr(removed, "rowcount", 0))

    def run(self, period: Period, now: datetime | None = None) -> MonthlyOutcome:
        now = (now or datetime.now(UTC)).astimezone(UTC)
        if not self.lock.claim(JOB, period.label, now):
            log.info("%s %s: another instance has it", JOB, period.label)
            return MonthlyOutcome(period.label, ran=False)
        try:
            summary = self._pipeline(period, now)
        except Exception as exc:
            self.lock.finish(JOB, period.label, datetime.now(UTC), "failed", repr(exc)[:2000])
            log.exception("%s %s failed", JOB, period.label)
            return MonthlyOutcome(
                period.label, ran=True, outcome="failed", summary={"error": repr(exc)}
            )
        outcome = "done" if not summary["mail_failed"] else "done_with_errors"
        self.lock.finish(
            JOB,
            period.label,
            datetime.now(UTC),
            outcome,
            json.dumps(summary, sort_keys=True)[:4000],
        )
        return MonthlyOutcome(period.label, ran=True, outcome=outcome, summary=summary)

    def _settle(self, session: Session, period: Period, now: datetime) -> str:
        existing = run_of(session, period.label)
        if existing is not None:
            return existing.run_id
        fleet = read_fleet(session)
        billed = billed_parts(session)
        correct = tuple(
            p.label for p in correction_periods(billed, period, self.config.schedule.correct_months)
        )
        readings = self.load_readings(fleet, period, billed, correct)
        inputs = SettlementInputs(
            period=period,
            fleet=fleet,
            readings=dict(readings),
            billed=tuple(billed),
            correct_periods=correct,
        )
        run_id = record_run(
            session,
            settle(inputs),
            fleet=fleet,
            correct_periods=correct,
            readings_source=self.readings_source,
            issued_at=now,
        )
        session.commit()
        return run_id

    def _pipeline(self, period: Period, now: datetime) -> dict[str, Any]:
        out = self.out_root / period.label
        with self.sessions() as session:
            run_id = self._settle(session, period, now)
            rendered = render_run(session, run_id, out / "statements", influx=self.influx)
            csv = export_run(session, run_id, out, self.config.ledger_accounts)
            sepa = build_sepa(
                session, run_id, out, self.config.sepa, today=now.astimezone(AMSTERDAM).date()
            )
            coop = cooperative(session)
        smtp = self.config.smtp
        mailed_file = out / "mailed.json"
        already: list[str] = (
            json.loads(mailed_file.read_text(encoding="utf-8")) if mailed_file.exists() else []
        )
        messages = []
        no_email = []
        empty = []
        for r in rendered:
            if r.member_id in already:
                continue
            if r.lines == 0 and r.guarantees == 0:  # e.g. a member who left: nothing to send
                empty.append(r.member_id)
                continue
            if r.email:
                messages.append(
                    (
                        r.member_id,
                        statement_message(
                            r, period=period.label, sender=smtp.sender, cooperative=coop.name
                        ),
                    )
                )
            else:
                no_email.append(r.member_id)
        mail_failed: dict[str, str] = {}
        sent: list[str] = []
        try:
            report = self.mailer.send_all(messages)
            sent, mail_failed = report.sent, report.failed
        except MailError as exc:
            mail_failed = {key: str(exc) for key, _ in messages}
        # who has their statement: a retried run does not send it twice
        mailed_file.write_text(json.dumps(sorted([*already, *sent])) + "\n", encoding="utf-8")
        summary: dict[str, Any] = {
            "period": period.label,
            "run_id": run_id,
            "statements": len(rendered),
            "total_excl_vat_eur": str(csv.total_excl_vat_eur),
            "vat_eur": str(csv.vat_eur),
            "bookkeeping_csv": str(csv.lines_path),
            "direct_debit_file": None if sepa.debit_path is None else str(sepa.debit_path),
            "direct_debits": sepa.debits,
            "direct_debit_total_eur": str(sepa.debit_total_eur),
            "credit_transfer_file": None if sepa.transfer_path is None else str(sepa.transfer_path),
            "credit_transfers": sepa.transfers,
            "credit_transfer_total_eur": str(sepa.transfer_total_eur),
            "payment_problems": [str(p) for p in sepa.problems],
            "mailed": len(sent),
            "mailed_before": len(already),
            "mail_failed": mail_failed,
            "no_email": no_email,
            "empty_not_mailed": empty,
        }
        (out / "outcome.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        if smtp.operators:
            msg = summary_message(
                sender=smtp.sender,
                operators=smtp.operators,
                subject=f"Zonnewijk: settlement {period.label} ({run_id})",
                body=operator_summary(summary),
            )
            try:
                self.mailer.send_all([("operators", msg)])
            except MailError as exc:
                summary["mail_failed"]["operators"] = str(exc)
        return summary


def operator_summary(summary: Mapping[str, Any]) -> str:
    """The operators' e-mail: what ran, the totals, the files, what needs a person."""
    lines = [
        f"Settlement {summary['period']} (run {summary['run_id']})",
        "",
        f"Statements rendered: {summary['statements']}",
        f"Total excl. VAT: {summary['total_excl_vat_eur']} EUR, VAT {summary['vat_eur']} EUR",
        f"Bookkeeping CSV: {summary['bookkeeping_csv']}",
        f"Direct debits (pain.008): {summary['direct_debits']}, "
        f"{summary['direct_debit_total_eur']} EUR: {summary['direct_debit_file']}",
        f"Credit transfers (pain.001): {summary['credit_transfers']}, "
        f"{summary['credit_transfer_total_eur']} EUR: {summary['credit_transfer_file']}",
        f"Statements e-mailed: {summary['mailed']}",
    ]
    problems = list(summary["payment_problems"])
    if problems:
        lines += ["", "Not in a payment file (handle by hand):", *(f"- {p}" for p in problems)]
    if summary["mail_failed"]:
        lines += [
            "",
            "E-mail failed:",
            *(f"- {k}: {v}" for k, v in sorted(summary["mail_failed"].items())),
        ]
    if summary["no_email"]:
        lines += ["", "No e-mail address: " + ", ".join(summary["no_email"])]
    return "\n".join(lines) + "\n"


def build_scheduler(job: MonthlyJob, *, blocking: bool) -> BaseScheduler:
    """APScheduler 3: check every hour (at minute 7, Amsterdam time) whether a month is due."""
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=AMSTERDAM)
        if blocking
        else BackgroundScheduler(timezone=AMSTERDAM)
    )

    def tick() -> None:
        try:
            job.maybe_run()
        except Exception:
            log.exception("monthly statements check failed")

    scheduler.add_job(
        tick,
        CronTrigger(minute=7, timezone=AMSTERDAM),
        id=JOB,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    return scheduler
