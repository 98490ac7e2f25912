"""Alert lifecycle in the relational store, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from collector.faults.alerts import (
    AlertEvent,
    AlertNotFoundError,
    AlertResolvedError,
    AlertService,
    AlertStatus,
)
from collector.faults.model import FaultKind, Finding, Severity
from collector.faults.pipeline import DAILY_KINDS, RECENT_KINDS
from collector.store.alert_models import AlertRow
from collector.store.db import session_factory
from collector.store.testing import DatabaseUnavailableError, temporary_database

T0 = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    try:
        with temporary_database(request.param) as eng:
            yield eng
    except DatabaseUnavailableError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))


@pytest.fixture
def service(engine: Engine) -> AlertService:
    return AlertService(session_factory(engine))


def finding(
    kind: FaultKind = FaultKind.FAULT_STATE,
    device: str = "inv01",
    start: datetime = T0,
    last: datetime = T0 + timedelta(minutes=10),
    *,
    ongoing: bool = True,
    severity: Severity = Severity.CRITICAL,
    value: float = 7.0,
) -> Finding:
    return Finding(
        kind=kind,
        device_id=device,
        gateway_id=f"gw-{device}",
        start=start,
        last=last,
        ongoing=ongoing,
        severity=severity,
        evidence={"state_code": value},
        message=f"{kind.value} on {device}",
    )


def test_open_update_resolve(service: AlertService) -> None:
    changes = service.apply([finding()], evaluated_kinds=RECENT_KINDS, now=T0)
    assert [c.event for c in changes] == [AlertEvent.OPENED]
    alert = changes[0].alert
    assert alert.status == AlertStatus.OPEN and alert.evidence == {"state_code": 7.0}

    # the next run still sees it: no new alert, evidence and last-seen updated
    later = T0 + timedelta(minutes=5)
    changes = service.apply(
        [finding(last=later + timedelta(minutes=10), value=8.0)],
        evaluated_kinds=RECENT_KINDS,
        now=later,
    )
    assert changes == []
    (live,) = service.list(status=AlertStatus.OPEN)
    assert live.id == alert.id and live.evidence == {"state_code": 8.0}
    assert live.last_seen == later + timedelta(minutes=10)

    # the condition cleared: resolved automatically
    changes = service.apply([], evaluated_kinds=RECENT_KINDS, now=later + timedelta(minutes=5))
    assert [c.event for c in changes] == [AlertEvent.RESOLVED]
    assert service.get(alert.id).status == AlertStatus.RESOLVED
    assert [e for _, e, _ in service.history(alert.id)] == [AlertEvent.OPENED, AlertEvent.RESOLVED]


def test_deduplicated_per_device_and_kind(service: AlertService) -> None:
    service.apply(
        [
            finding(),
            finding(FaultKind.NO_PRODUCTION, severity=Severity.CRITICAL),
            finding(device="inv02"),
        ],
        evaluated_kinds=RECENT_KINDS,
        now=T0,
    )
    service.apply([finding(), finding(device="inv02")], evaluated_kinds=RECENT_KINDS, now=T0)
    alerts = service.list()
    assert sorted((a.device_id, a.kind.value, a.status.value) for a in alerts) == [
        ("inv01", "fault_state", "open"),
        ("inv01", "no_production", "resolved"),
        ("inv02", "fault_state", "open"),
    ]
    with pytest.raises(ValueError, match="two ongoing findings"):
        service.apply([finding(), finding()], evaluated_kinds=RECENT_KINDS, now=T0)


def test_the_database_refuses_a_second_live_alert(engine: Engine, service: AlertService) -> None:
    service.apply([finding()], evaluated_kinds=RECENT_KINDS, now=T0)
    sessions = session_factory(engine)
    with pytest.raises(IntegrityError), sessions.begin() as session:  # what a racing instance gets
        session.add(
            AlertRow(
                kind="fault_state",
                device_id="inv01",
                gateway_id="gw",
                severity=30,
                status="open",
                open_key="inv01|fault_state",
                message="m",
                evidence={},
                condition_since=T0,
                last_seen=T0,
                opened_at=T0,
            )
        )


def test_acknowledged_alert_stays_until_the_condition_clears(service: AlertService) -> None:
    (opened,) = service.apply([finding()], evaluated_kinds=RECENT_KINDS, now=T0)
    ack = service.acknowledge(opened.alert.id, by="operator Anna", now=T0, note="technician called")
    assert ack.event == AlertEvent.ACKNOWLEDGED
    assert ack.alert.status == AlertStatus.ACKNOWLEDGED
    assert ack.alert.acknowledged_by == "operator Anna"
    # still there: the next run updates it, it does not open a new one
    assert service.apply([finding()], evaluated_kinds=RECENT_KINDS, now=T0) == []
    (live,) = service.list(status=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])
    assert live.status == AlertStatus.ACKNOWLEDGED
    # acknowledging again keeps the first acknowledgement
    again = service.acknowledge(opened.alert.id, by="someone else", now=T0 + timedelta(hours=1))
    assert again.alert.acknowledged_by == "operator Anna"
    (resolved,) = service.apply([], evaluated_kinds=RECENT_KINDS, now=T0 + timedelta(hours=2))
    assert resolved.event == AlertEvent.RESOLVED
    with pytest.raises(AlertResolvedError):
        service.acknowledge(opened.alert.id, by="operator Anna", now=T0 + timedelta(hours=3))
    with pytest.raises(AlertNotFoundError):
        service.acknowledge(999_999, by="operator Anna", now=T0)
    with pytest.raises(ValueError, match="who"):
        service.acknowledge(opened.alert.id, by="  ", now=T0)


def test_escalation_on_higher_severity(service: AlertService) -> None:
    service.apply(
        [finding(FaultKind.UNDERPERFORMANCE, severity=Severity.WARNING)],
        evaluated_kinds=DAILY_KINDS,
        now=T0,
    )
    (change,) = service.apply(
        [finding(FaultKind.UNDERPERFORMANCE, severity=Severity.CRITICAL)],
        evaluated_kinds=DAILY_KINDS,
        now=T0 + timedelta(days=1),
    )
    assert change.event == AlertEvent.ESCALATED and change.alert.severity == Severity.CRITICAL


def test_a_run_resolves_only_what_it_evaluated(service: AlertService) -> None:
    service.apply([finding(FaultKind.DEVICE_OFFLINE)], evaluated_kinds=RECENT_KINDS, now=T0)
    service.apply(
        [finding(FaultKind.UNDERPERFORMANCE, severity=Severity.WARNING)],
        evaluated_kinds=DAILY_KINDS,
        now=T0,
    )
    # the daily run finds nothing: its own alert resolves, the offline one stays
    service.apply([], evaluated_kinds=DAILY_KINDS, now=T0 + timedelta(days=1))
    statuses = {a.kind: a.status for a in service.list()}
    assert statuses == {
        FaultKind.DEVICE_OFFLINE: AlertStatus.OPEN,
        FaultKind.UNDERPERFORMANCE: AlertStatus.RESOLVED,
    }
    # a run over other devices leaves inv01 alone
    service.apply([], evaluated_kinds=RECENT_KINDS, now=T0, devices={"inv02"})
    assert service.list(kind=FaultKind.DEVICE_OFFLINE)[0].status == AlertStatus.OPEN
    with pytest.raises(ValueError, match="did not evaluate"):
        service.apply([finding(FaultKind.DEVICE_OFFLINE)], evaluated_kinds=DAILY_KINDS, now=T0)


def test_short_episode_between_runs_is_recorded_once(service: AlertService) -> None:
    short = finding(
        FaultKind.COUNTER_ANOMALY,
        ongoing=False,
        last=T0 + timedelta(minutes=5),
        severity=Severity.INFO,
    )
    changes = service.apply([short], evaluated_kinds=RECENT_KINDS, now=T0 + timedelta(minutes=20))
    assert [c.event for c in changes] == [AlertEvent.OPENED, AlertEvent.RESOLVED]
    # the next window still contains the same episode: nothing new
    again = service.apply([short], evaluated_kinds=RECENT_KINDS, now=T0 + timedelta(minutes=25))
    assert again == []
    assert len(service.list()) == 1


def test_list_filters(service: AlertService) -> None:
    service.apply(
        [
            finding(device="inv01"),
            finding(FaultKind.FROZEN_VALUE, device="inv02", severity=Severity.WARNING),
            finding(FaultKind.COUNTER_ANOMALY, device="inv03", severity=Severity.INFO),
        ],
        evaluated_kinds=RECENT_KINDS,
        now=T0,
    )
    assert {a.device_id for a in service.list(device_ids={"inv02", "inv03"})} == {"inv02", "inv03"}
    assert {a.device_id for a in service.list(min_severity=Severity.WARNING)} == {"inv01", "inv02"}
    assert [a.kind for a in service.list(kind=FaultKind.FROZEN_VALUE)] == [FaultKind.FROZEN_VALUE]
    assert len(service.list(limit=1)) == 1
    with pytest.raises(ValueError):
        service.list(limit=0)
    as_dict = service.list(kind=FaultKind.FAULT_STATE)[0].to_dict()
    assert as_dict["severity"] == "critical" and as_dict["opened_at"] == "2026-06-10T10:00:00Z"


def test_rows_hold_the_evidence(engine: Engine, service: AlertService) -> None:
    service.apply([finding(value=7.0)], evaluated_kinds=RECENT_KINDS, now=T0)
    with session_factory(engine)() as session:
        row = session.scalars(select(AlertRow)).one()
        assert row.evidence == {"state_code": 7.0}
        assert row.condition_since == T0
