"""Running the detectors on a schedule, once per time slot across server instances.

:class:`FaultRunner` does one run: read recent data from InfluxDB, detect, update the alerts,
notify. :class:`JobLock` makes a run happen once per slot however many instances are
scheduled: each run first inserts ``(job, slot)`` into ``job_runs``; the primary key lets one
instance succeed and the others skip. :func:`build_scheduler` wires the runner into
APScheduler 3: the recent-data check every few minutes, the daily peer comparison checked
every ten minutes and run once per local day, after sunset in Zwolle.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from collector.faults.alerts import AlertChange, AlertService
from collector.faults.influx_source import DeviceSpec, known_reset_mask, load_daily, load_series
from collector.faults.model import FaultKind, Finding
from collector.faults.notify import Notifier
from collector.faults.pipeline import (
    DAILY_KINDS,
    RECENT_KINDS,
    DetectorConfig,
    daily_findings,
    recent_findings,
)
from collector.faults.solar import AMSTERDAM, sunset_utc
from collector.store.alert_models import JobRunRow
from collector.timeseries.influx import InfluxClient

log = logging.getLogger(__name__)

RECENT_JOB = "faults-recent"
DAILY_JOB = "faults-daily"


def default_holder() -> str:
    """Who holds a job run: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class JobLock:
    """Claim ``(job, slot)`` once across instances (a row in ``job_runs``)."""

    def __init__(self, sessions: sessionmaker[Session], holder: str | None = None) -> None:
        self._sessions = sessions
        self.holder = holder or default_holder()

    def claim(self, job: str, slot: str, now: datetime) -> bool:
        """True when this instance got the slot; False when another one has it."""
        try:
            with self._sessions.begin() as session:
                session.add(
                    JobRunRow(
                        job=job, slot=slot, holder=self.holder, started_at=now, outcome="running"
                    )
                )
        except IntegrityError:
            return False
        return True

    def finish(
        self, job: str, slot: str, now: datetime, outcome: str, detail: str | None = None
    ) -> None:
        with self._sessions.begin() as session:
            row = session.get(JobRunRow, (job, slot))
            if row is not None:
                row.finished_at = now
                row.outcome = outcome
                row.detail = detail


@dataclass
class RunReport:
    """What one run did."""

    job: str
    slot: str
    ran: bool
    findings: int = 0
    changes: list[AlertChange] = field(default_factory=list)


@dataclass
class FaultRunner:
    """One detector run at a time: data in, alerts and notifications out.

    Parameters
    ----------
    influx
        InfluxDB with the collector's measurements.
    devices
        Returns the registry's devices (called per run, so registry loads take effect).
    alerts, notifier, lock
        The alert store, the notifier (None: no notifications) and the run lock.
    config
        Detector parameters.
    step_s, window_s
        Grid step and look-back of the recent check [s].
    data_delay_s
        How far behind real time the data is complete (the gateways' batching) [s].
    daily_after_sunset_s
        The daily comparison runs this long after sunset [s].
    """

    influx: InfluxClient
    devices: Callable[[], Sequence[DeviceSpec]]
    alerts: AlertService
    notifier: Notifier | None
    lock: JobLock
    config: DetectorConfig = field(default_factory=DetectorConfig)
    step_s: int = 300
    window_s: int = 3 * 3600
    data_delay_s: int = 300
    daily_after_sunset_s: int = 30 * 60

    def run_recent(self, now: datetime | None = None) -> RunReport:
        """The every-few-minutes check of recent readings."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        end = now - timedelta(seconds=self.data_delay_s)
        slot_s = int(end.timestamp()) // self.step_s * self.step_s
        slot = datetime.fromtimestamp(slot_s, UTC).strftime("%Y-%m-%dT%H:%M")
        if not self.lock.claim(RECENT_JOB, slot, now):
            return RunReport(RECENT_JOB, slot, ran=False)
        try:
            devices = list(self.devices())
            series = load_series(
                self.influx, devices, end=end, window_s=self.window_s, step_s=self.step_s
            )
            found = recent_findings(series, self.config, known_reset_mask(devices, series))
            report = self._apply(RECENT_JOB, slot, found, RECENT_KINDS, now, devices)
        except Exception as exc:
            self.lock.finish(RECENT_JOB, slot, datetime.now(UTC), "failed", repr(exc)[:2000])
            raise
        self.lock.finish(RECENT_JOB, slot, datetime.now(UTC), "done", f"{report.findings} findings")
        return report

    def run_daily(self, day: date, now: datetime | None = None) -> RunReport:
        """The peer comparison of the local day ``day`` (and the days before it)."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        slot = day.isoformat()
        if not self.lock.claim(DAILY_JOB, slot, now):
            return RunReport(DAILY_JOB, slot, ran=False)
        try:
            devices = list(self.devices())
            daily = load_daily(self.influx, devices, last_day=day)
            found = daily_findings(daily, tuple(d.gateway_id for d in devices), self.config)
            # only what concerns the last two days: older episodes were judged by earlier runs
            recent = [f for f in found if f.ongoing or f.last.date() >= day - timedelta(days=1)]
            report = self._apply(DAILY_JOB, slot, recent, DAILY_KINDS, now, devices)
        except Exception as exc:
            self.lock.finish(DAILY_JOB, slot, datetime.now(UTC), "failed", repr(exc)[:2000])
            raise
        self.lock.finish(DAILY_JOB, slot, datetime.now(UTC), "done", f"{report.findings} findings")
        return report

    def maybe_run_daily(self, now: datetime | None = None) -> RunReport | None:
        """Run today's daily comparison if the sun has set long enough ago (else None)."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        today = now.astimezone(AMSTERDAM).date()
        if now < sunset_utc(today) + timedelta(seconds=self.daily_after_sunset_s):
            return None
        return self.run_daily(today, now)

    def _apply(
        self,
        job: str,
        slot: str,
        found: list[Finding],
        kinds: frozenset[FaultKind],
        now: datetime,
        devices: Sequence[DeviceSpec],
    ) -> RunReport:
        changes = self.alerts.apply(
            found,
            evaluated_kinds=kinds,
            now=now,
            devices={d.device_id for d in devices},
        )
        if self.notifier is not None and changes:
            self.notifier.notify(changes, now=now)
        log.info("%s %s: %d findings, %d alert changes", job, slot, len(found), len(changes))
        return RunReport(job, slot, ran=True, findings=len(found), changes=changes)


def build_scheduler(
    runner: FaultRunner, *, blocking: bool, daily_check_s: int = 600
) -> BaseScheduler:
    """An APScheduler 3 scheduler with the recent check and the daily comparison.

    Parameters
    ----------
    runner
        The runner to call.
    blocking
        A :class:`BlockingScheduler` (``zonnewijk faults serve``) or a background one.
    daily_check_s
        How often to check whether the daily comparison is due [s].
    """
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=UTC) if blocking else BackgroundScheduler(timezone=UTC)
    )

    def recent() -> None:
        try:
            runner.run_recent()
        except Exception:  # a failed run is logged and recorded; the next one tries again
            log.exception("recent fault check failed")

    def daily() -> None:
        try:
            runner.maybe_run_daily()
        except Exception:
            log.exception("daily fault comparison failed")

    now = datetime.now(UTC)
    scheduler.add_job(
        recent,
        IntervalTrigger(seconds=runner.step_s, timezone=UTC),
        id=RECENT_JOB,
        max_instances=1,
        coalesce=True,
        next_run_time=now,
    )
    scheduler.add_job(
        daily,
        IntervalTrigger(seconds=daily_check_s, timezone=UTC),
        id=DAILY_JOB,
        max_instances=1,
        coalesce=True,
        next_run_time=now,
    )
    return scheduler
