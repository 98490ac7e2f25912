"""The monthly job: settles, renders, exports and e-mails through a real local SMTP server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from smtp_inbox import Inbox
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from statement_cases import HISTORY, IBANS, issue_history, load_registry, year_readings

from collector.faults.scheduling import JobLock
from collector.registry.fleet_file import Fleet
from collector.settlement.counter_segments import CounterReadings
from collector.settlement.inputs import BilledPart
from collector.settlement.periods import Period, parse_month
from collector.statements.config import SmtpConfig, StatementsConfig, load_config
from collector.statements.mailer import Mailer
from collector.statements.monthly import JOB, MonthlyJob, build_scheduler, month_to_settle
from collector.store.alert_models import JobRunRow
from collector.store.db import session_factory
from collector.store.ledger_models import SettlementRunRow
from collector.store.testing import temporary_database

# 5 April 2026 06:00 Amsterdam (summer time) = 04:00 UTC: the configured day and hour
DUE = datetime(2026, 4, 5, 4, 0, tzinfo=UTC)


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    """The registry and the issued months April 2025 - February 2026 (C4's contract year)."""
    with temporary_database("sqlite") as engine:
        with Session(engine) as session:
            load_registry(session)
            issue_history(session)
        yield session_factory(engine)


def march_readings(
    fleet: Fleet, period: Period, billed: Sequence[BilledPart], correct: Sequence[str]
) -> Mapping[str, CounterReadings]:
    assert period.label == "2026-03"
    assert tuple(correct) == ("2025-12", "2026-01", "2026-02")  # correct_months: 3
    return year_readings()


def config_for(port: int) -> StatementsConfig:
    base = load_config()
    return base.model_copy(
        update={
            "smtp": SmtpConfig(
                host="127.0.0.1",
                port=port,
                sender="administratie@example.org",
                operators=["ops@example.org"],
            )
        }
    )


def make_job(
    sessions: sessionmaker[Session], port: int, out: Path, holder: str, loader: Any = None
) -> MonthlyJob:
    config = config_for(port)
    return MonthlyJob(
        sessions=sessions,
        config=config,
        out_root=out,
        load_readings=loader or march_readings,
        lock=JobLock(sessions, holder=holder),
        mailer=Mailer(config.smtp),
        readings_source="test readings",
    )


def test_due_month() -> None:
    config = load_config()  # day 5, 06:00 local
    assert month_to_settle(datetime(2026, 4, 5, 3, 59, tzinfo=UTC), config) is None
    assert month_to_settle(DUE, config) == parse_month("2026-03")
    assert month_to_settle(datetime(2026, 4, 30, 12, tzinfo=UTC), config) == parse_month("2026-03")
    # 5 January 06:00 local is 05:00 UTC in winter: December of the year before
    assert month_to_settle(datetime(2027, 1, 5, 4, 59, tzinfo=UTC), config) is None
    assert month_to_settle(datetime(2027, 1, 5, 5, 0, tzinfo=UTC), config) == parse_month("2026-12")


def test_monthly_job_settles_renders_exports_and_mails_once(
    sessions: sessionmaker[Session], smtp: tuple[int, Inbox], tmp_path: Path
) -> None:
    port, inbox = smtp
    first = make_job(sessions, port, tmp_path, holder="server-a")
    second = make_job(sessions, port, tmp_path, holder="server-b")
    assert first.maybe_run(datetime(2026, 4, 4, 12, tzinfo=UTC)) is None  # not due yet

    outcome = first.maybe_run(DUE)
    assert outcome is not None and outcome.ran and outcome.outcome == "done"
    again = second.maybe_run(DUE)  # another instance, same slot: skipped
    assert again is not None and not again.ran

    with sessions() as session:
        runs = list(session.scalars(select(SettlementRunRow)))
        job_row = session.get(JobRunRow, (JOB, "2026-03"))
    assert [r.run_id for r in runs] == [*(f"{p}.1" for p in HISTORY), "2026-03.1"]
    assert job_row is not None and job_row.outcome == "done" and job_row.holder == "server-a"
    recorded = json.loads(job_row.detail or "{}")
    assert recorded["statements"] == 5 and recorded["mailed"] == 5

    out = tmp_path / "2026-03"
    assert (out / "2026-03.bookkeeping.csv").exists()
    assert (out / "2026-03.pain.008.001.02.xml").exists()
    # the credit transfer pays M4 the shortfall of C4's contract year April 2025 - March 2026:
    # (1.000 - 8.760 h × 100 Wh = 124,000 kWh) × 0,20 = 24,80 + 21 % VAT 5,21 = 30,01
    transfer = (out / "2026-03.pain.001.001.03.xml").read_text(encoding="utf-8")
    assert transfer.count("<CdtTrfTxInf>") == 1
    assert IBANS["M4"] in transfer and ">30.01</InstdAmt>" in transfer
    assert json.loads((out / "outcome.json").read_text())["run_id"] == "2026-03.1"

    members = {rcpt[0]: msg for rcpt, msg in inbox.messages if rcpt != ["ops@example.org"]}
    assert sorted(members) == [f"lid{i}@example.org" for i in range(1, 6)]
    m1 = members["lid1@example.org"]
    assert m1["Subject"] == "Uw afrekening van maart 2026"
    assert members["lid2@example.org"]["Subject"] == "Your statement for March 2026"
    (attachment,) = list(m1.iter_attachments())
    assert attachment.get_filename() == "2026-03_M1.pdf"
    assert attachment.get_content_type() == "application/pdf"
    pdf = attachment.get_content()
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF")
    path = tmp_path / "m1.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "€ 11,46" in text and "M1" in text

    (ops,) = [msg for rcpt, msg in inbox.messages if rcpt == ["ops@example.org"]]
    body = ops.get_content()
    assert ops["Subject"] == "Zonnewijk: settlement 2026-03 (2026-03.1)"
    assert "Statements rendered: 5" in body
    assert "member M5" in body and "no direct debit mandate" in body
    assert len(inbox.messages) == 6  # nothing sent twice


def test_a_failed_run_is_recorded_and_can_be_retried(
    sessions: sessionmaker[Session], smtp: tuple[int, Inbox], tmp_path: Path
) -> None:
    port, inbox = smtp

    def broken(*_: Any) -> Mapping[str, CounterReadings]:
        raise ConnectionError("InfluxDB does not answer")

    failing = make_job(sessions, port, tmp_path, holder="a", loader=broken)
    outcome = failing.run(parse_month("2026-03"), DUE)
    assert outcome.outcome == "failed"
    with sessions() as session:
        row = session.get(JobRunRow, (JOB, "2026-03"))
        assert row is not None and row.outcome == "failed"
        assert "InfluxDB does not answer" in (row.detail or "")
        periods = list(session.scalars(select(SettlementRunRow.period)))
        assert sorted(periods) == list(HISTORY)  # nothing issued for March
    assert inbox.messages == []
    working = make_job(sessions, port, tmp_path, holder="b")
    assert not working.run(parse_month("2026-03"), DUE).ran  # the failed slot stays claimed
    assert working.retry_failed(parse_month("2026-03"))
    assert working.run(parse_month("2026-03"), DUE).outcome == "done"
    assert len(inbox.messages) == 6  # five members and the operators


def test_members_without_lines_get_no_mail(
    sessions: sessionmaker[Session], smtp: tuple[int, Inbox], tmp_path: Path
) -> None:
    port, _ = smtp

    def both_months(
        fleet: Fleet, period: Period, billed: Sequence[BilledPart], correct: Sequence[str]
    ) -> Mapping[str, CounterReadings]:
        return year_readings()

    job = make_job(sessions, port, tmp_path, holder="a", loader=both_months)
    assert job.run(parse_month("2026-03"), DUE).outcome == "done"
    april = job.run(parse_month("2026-04"), DUE + timedelta(days=30))
    assert april.summary is not None
    # M1's contract ended on 15 March: an April statement without lines, not sent; M4's
    # plan has neither fee nor price, but its statement shows the guarantee year to date
    assert april.summary["empty_not_mailed"] == ["M1"]
    assert april.summary["mailed"] == 4


def test_a_retry_does_not_mail_members_twice(
    sessions: sessionmaker[Session], smtp: tuple[int, Inbox], tmp_path: Path
) -> None:
    port, inbox = smtp
    job = make_job(sessions, port, tmp_path, holder="a")
    assert job.run(parse_month("2026-03"), DUE).outcome == "done"
    with sessions.begin() as session:  # as if it had failed after mailing
        row = session.get(JobRunRow, (JOB, "2026-03"))
        assert row is not None
        row.outcome = "failed"
    assert job.retry_failed(parse_month("2026-03"))
    again = job.run(parse_month("2026-03"), DUE)
    assert again.summary is not None
    assert again.summary["mailed"] == 0 and again.summary["mailed_before"] == 5
    members = [rcpt for rcpt, _ in inbox.messages if rcpt != ["ops@example.org"]]
    assert len(members) == 5  # each member once; the operators got two summaries


def test_scheduler_checks_hourly_in_amsterdam_time(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    scheduler = build_scheduler(make_job(sessions, 25, tmp_path, holder="x"), blocking=False)
    (job,) = scheduler.get_jobs()
    assert job.id == JOB
    assert isinstance(job.trigger, CronTrigger)
    assert str(job.trigger.timezone) == "Europe/Amsterdam"
    assert "minute='7'" in str(job.trigger)
