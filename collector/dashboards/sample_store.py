"""Fill a relational store with what the alerts-and-ledger dashboard reads, through the real
services: fault alerts through :class:`collector.faults.alerts.AlertService` and an issued
settlement month through the settlement engine and ledger (readings from InfluxDB).

For tests and pictures; production stores are filled by ``zonnewijk faults serve`` and
``zonnewijk settle``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from collector.faults.alerts import AlertService
from collector.faults.model import FaultKind, Finding, Severity
from collector.registry.fleet_file import Fleet
from collector.settlement.engine import settle
from collector.settlement.influx_source import load_readings, source_label
from collector.settlement.inputs import SettlementInputs
from collector.settlement.ledger import record_run
from collector.settlement.periods import parse_month
from collector.timeseries.influx import InfluxClient


def _finding(fleet: Fleet, device_id: str, kind: FaultKind, start: datetime, now: datetime,
             *, ongoing: bool = True, severity: Severity = Severity.CRITICAL,
             message: str = "") -> Finding:  # fmt: skip
    device = fleet.device(device_id)
    return Finding(
        kind=kind,
        device_id=device_id,
        gateway_id=fleet.gateway_of(device),
        start=start,
        last=now,
        ongoing=ongoing,
        severity=severity,
        evidence={"since": start.isoformat()},
        message=message or f"{kind.value} on {device_id}",
    )


def fill_alerts(
    sessions: sessionmaker[Session], fleet: Fleet, now: datetime, *, fault_device: str | None = None
) -> None:
    """Three detector runs: an alert that opened and resolved last week, and two open now: a
    critical fault state on ``fault_device`` (default: the last device in service) and a
    warning on the first device in service."""
    service = AlertService(sessions)
    in_service = [d.device_id for d in fleet.devices if d.removed_on is None]
    first, second = in_service[0], fault_device or in_service[-1]
    kinds = [FaultKind.DEVICE_OFFLINE, FaultKind.FAULT_STATE, FaultKind.UNDERPERFORMANCE]
    week_ago = now - timedelta(days=7)
    service.apply(
        [_finding(fleet, first, FaultKind.DEVICE_OFFLINE, week_ago - timedelta(hours=3), week_ago,
                  message="no readings for 3 hours while its gateway reports")],
        evaluated_kinds=kinds, now=week_ago,
    )  # fmt: skip
    service.apply([], evaluated_kinds=kinds, now=week_ago + timedelta(hours=1))
    service.apply(
        [
            _finding(fleet, second, FaultKind.FAULT_STATE, now - timedelta(minutes=90), now,
                     message="inverter reports fault (ground_fault) and produces nothing"),
            _finding(fleet, first, FaultKind.UNDERPERFORMANCE, now - timedelta(days=3), now,
                     severity=Severity.WARNING,
                     message="specific yield 18 % below its usual ratio to the fleet median"),
        ],
        evaluated_kinds=kinds, now=now,
    )  # fmt: skip


def fill_settlement(
    sessions: sessionmaker[Session], influx: InfluxClient, fleet: Fleet, month: str, now: datetime
) -> str:
    """Settle ``month`` from InfluxDB's readings and record it as issued; returns the run id."""
    period = parse_month(month)
    readings = load_readings(influx, fleet, period)
    result = settle(SettlementInputs(period=period, fleet=fleet, readings=readings))
    with sessions() as session:
        run_id = record_run(
            session,
            result,
            fleet=fleet,
            correct_periods=(),
            readings_source=source_label(influx),
            issued_at=now,
        )
        session.commit()
    return run_id
