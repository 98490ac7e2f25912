"""The alert lifecycle and the small Python API the operator API and portal use.

An alert is unique per (device, kind) while it is live. :meth:`AlertService.apply` takes one
detector run's findings and

- opens an alert for a condition that has no live alert (``opened``),
- updates a live alert's evidence and last-seen time, raising its severity if the new
  finding is worse (``escalated``),
- resolves live alerts of the kinds that were evaluated whose condition no longer holds
  (``resolved``): automatically, whether or not someone acknowledged them,
- records a short episode that started and ended between two runs as opened and resolved.

:meth:`AlertService.acknowledge` marks an alert as seen by an operator (``acknowledged``);
it stays live until its condition clears. Every change is returned as an
:class:`AlertChange` for the notifier and written to ``alert_events``.

The database keeps the uniqueness itself (``alerts.open_key`` is unique), so two server
instances that race to open the same alert cannot both succeed: the loser's transaction
fails and the next run updates the winner's alert.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from collector.faults.model import FaultKind, Finding, Severity
from collector.store.alert_models import AlertEventRow, AlertRow

log = logging.getLogger(__name__)


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


LIVE = (AlertStatus.OPEN.value, AlertStatus.ACKNOWLEDGED.value)


class AlertEvent(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertNotFoundError(LookupError):
    """No alert with that id."""


class AlertResolvedError(ValueError):
    """The alert is resolved already; there is nothing to acknowledge."""


@dataclass(frozen=True)
class Alert:
    """An alert as the API hands it out (a detached snapshot of its row)."""

    id: int
    kind: FaultKind
    device_id: str
    gateway_id: str
    severity: Severity
    status: AlertStatus
    message: str
    evidence: dict[str, Any]
    condition_since: datetime
    last_seen: datetime
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledge_note: str | None
    resolved_at: datetime | None

    @classmethod
    def from_row(cls, row: AlertRow) -> Alert:
        return cls(
            id=row.id,
            kind=FaultKind(row.kind),
            device_id=row.device_id,
            gateway_id=row.gateway_id,
            severity=Severity(row.severity),
            status=AlertStatus(row.status),
            message=row.message,
            evidence=dict(row.evidence),
            condition_since=row.condition_since,
            last_seen=row.last_seen,
            opened_at=row.opened_at,
            acknowledged_at=row.acknowledged_at,
            acknowledged_by=row.acknowledged_by,
            acknowledge_note=row.acknowledge_note,
            resolved_at=row.resolved_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (notifications, the operator API)."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "device_id": self.device_id,
            "gateway_id": self.gateway_id,
            "severity": self.severity.name.lower(),
            "status": self.status.value,
            "message": self.message,
            "evidence": self.evidence,
            "condition_since": _iso(self.condition_since),
            "last_seen": _iso(self.last_seen),
            "opened_at": _iso(self.opened_at),
            "acknowledged_at": _iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "acknowledge_note": self.acknowledge_note,
            "resolved_at": _iso(self.resolved_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class AlertChange:
    """One lifecycle step of one alert, for notifications."""

    event: AlertEvent
    alert: Alert
    at: datetime


def _key(device_id: str, kind: FaultKind | str) -> str:
    return f"{device_id}|{FaultKind(kind).value}"


def _require_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return value.astimezone(UTC)


class AlertService:
    """Alerts in the relational store: apply findings, list, acknowledge.

    Parameters
    ----------
    sessions
        Session factory of a migrated store (:func:`collector.store.db.session_factory`).
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # --- the detector side ----------------------------------------------------------------

    def apply(
        self,
        found: Iterable[Finding],
        *,
        evaluated_kinds: Collection[FaultKind],
        now: datetime,
        devices: Collection[str] | None = None,
    ) -> list[AlertChange]:
        """Bring the alerts in line with one detector run.

        Parameters
        ----------
        found
            The run's findings (ongoing or ended within the evaluated window).
        evaluated_kinds
            Kinds the run judged: live alerts of these kinds without an ongoing finding are
            resolved. Kinds not evaluated are left alone (the daily comparison does not resolve
            an offline alert).
        now
            Time of the run, UTC.
        devices
            Devices the run covered (None: all); live alerts of other devices are left alone.
        """
        now = _require_utc(now, "now")
        kinds = {FaultKind(k).value for k in evaluated_kinds}
        changes: list[AlertChange] = []
        ongoing: dict[str, Finding] = {}
        ended: list[Finding] = []
        for f in found:
            if f.kind.value not in kinds:
                raise ValueError(
                    f"finding of kind {f.kind.value} in a run that did not evaluate it"
                )
            if f.ongoing:
                key = _key(f.device_id, f.kind)
                if key in ongoing:
                    raise ValueError(f"two ongoing findings for {key}")
                ongoing[key] = f
            else:
                ended.append(f)
        with self._sessions.begin() as session:
            live = {
                row.open_key: row
                for row in session.scalars(
                    select(AlertRow).where(AlertRow.status.in_(LIVE), AlertRow.kind.in_(kinds))
                )
                if row.open_key is not None
            }
            for key, f in ongoing.items():
                row = live.pop(key, None)
                if row is None:
                    row = self._open(session, f, now)
                    changes.append(AlertChange(AlertEvent.OPENED, Alert.from_row(row), now))
                    continue
                row.last_seen = f.last
                row.evidence = dict(f.evidence)
                row.condition_since = min(row.condition_since, f.start)
                if int(f.severity) > row.severity:
                    row.severity = int(f.severity)
                    self._event(session, row, AlertEvent.ESCALATED, now, {"severity": row.severity})
                    changes.append(AlertChange(AlertEvent.ESCALATED, Alert.from_row(row), now))
            for key, row in live.items():
                if devices is not None and row.device_id not in devices:
                    continue
                self._resolve(session, row, now)
                changes.append(AlertChange(AlertEvent.RESOLVED, Alert.from_row(row), now))
                log.info("alert %s resolved: %s", row.id, key)
            for f in ended:
                known = session.scalar(
                    select(AlertRow.id).where(
                        AlertRow.device_id == f.device_id,
                        AlertRow.kind == f.kind.value,
                        AlertRow.condition_since <= f.last,
                        AlertRow.last_seen >= f.start,
                    )
                )
                if known is not None:
                    continue
                row = self._open(session, f, now)
                changes.append(AlertChange(AlertEvent.OPENED, Alert.from_row(row), now))
                self._resolve(session, row, now)
                changes.append(AlertChange(AlertEvent.RESOLVED, Alert.from_row(row), now))
        return changes

    def _open(self, session: Session, f: Finding, now: datetime) -> AlertRow:
        row = AlertRow(
            kind=f.kind.value,
            device_id=f.device_id,
            gateway_id=f.gateway_id,
            severity=int(f.severity),
            status=AlertStatus.OPEN.value,
            open_key=_key(f.device_id, f.kind),
            message=f.message,
            evidence=dict(f.evidence),
            condition_since=f.start,
            last_seen=f.last,
            opened_at=now,
        )
        session.add(row)
        session.flush()
        self._event(session, row, AlertEvent.OPENED, now, {"evidence": dict(f.evidence)})
        log.info("alert %s opened: %s %s", row.id, f.kind.value, f.device_id)
        return row

    @staticmethod
    def _resolve(session: Session, row: AlertRow, now: datetime) -> None:
        row.status = AlertStatus.RESOLVED.value
        row.open_key = None
        row.resolved_at = now
        session.flush()
        AlertService._event(session, row, AlertEvent.RESOLVED, now, {})

    @staticmethod
    def _event(
        session: Session, row: AlertRow, event: AlertEvent, at: datetime, detail: dict[str, Any]
    ) -> None:
        session.add(AlertEventRow(alert_id=row.id, at=at, event=event.value, detail=detail))

    # --- the operator side ----------------------------------------------------------------

    def list(
        self,
        *,
        status: AlertStatus | Sequence[AlertStatus] | None = None,
        device_ids: Collection[str] | None = None,
        kind: FaultKind | None = None,
        min_severity: Severity | None = None,
        limit: int = 500,
    ) -> list[Alert]:
        """Alerts, newest first.

        Parameters
        ----------
        status
            One status or several; None: all.
        device_ids
            Only these devices (the portal passes a member's own devices).
        kind
            Only this kind.
        min_severity
            Only at least this severe.
        limit
            At most this many (1..10000).
        """
        if not 1 <= limit <= 10_000:
            raise ValueError("limit must be between 1 and 10000")
        query = select(AlertRow).order_by(AlertRow.opened_at.desc(), AlertRow.id.desc())
        if status is not None:
            wanted = [status] if isinstance(status, AlertStatus) else list(status)
            query = query.where(AlertRow.status.in_([AlertStatus(s).value for s in wanted]))
        if device_ids is not None:
            query = query.where(AlertRow.device_id.in_(list(device_ids)))
        if kind is not None:
            query = query.where(AlertRow.kind == FaultKind(kind).value)
        if min_severity is not None:
            query = query.where(AlertRow.severity >= int(min_severity))
        with self._sessions() as session:
            return [Alert.from_row(row) for row in session.scalars(query.limit(limit))]

    def get(self, alert_id: int) -> Alert:
        """One alert; raises :class:`AlertNotFoundError`."""
        with self._sessions() as session:
            row = session.get(AlertRow, alert_id)
            if row is None:
                raise AlertNotFoundError(f"no alert with id {alert_id}")
            return Alert.from_row(row)

    def history(self, alert_id: int) -> builtins.list[tuple[datetime, AlertEvent, dict[str, Any]]]:
        """The lifecycle of one alert, oldest first."""
        with self._sessions() as session:
            if session.get(AlertRow, alert_id) is None:
                raise AlertNotFoundError(f"no alert with id {alert_id}")
            rows = session.scalars(
                select(AlertEventRow)
                .where(AlertEventRow.alert_id == alert_id)
                .order_by(AlertEventRow.at, AlertEventRow.id)
            )
            return [(r.at, AlertEvent(r.event), dict(r.detail)) for r in rows]

    def acknowledge(
        self, alert_id: int, *, by: str, now: datetime, note: str | None = None
    ) -> AlertChange:
        """An operator has seen the alert; it stays live until its condition clears.

        Acknowledging twice keeps the first acknowledgement. Raises
        :class:`AlertNotFoundError` or :class:`AlertResolvedError`.
        """
        now = _require_utc(now, "now")
        by = by.strip()
        if not by:
            raise ValueError("say who acknowledges (by=...)")
        with self._sessions.begin() as session:
            row = session.get(AlertRow, alert_id, with_for_update=True)
            if row is None:
                raise AlertNotFoundError(f"no alert with id {alert_id}")
            if row.status == AlertStatus.RESOLVED.value:
                raise AlertResolvedError(
                    f"alert {alert_id} was resolved at {_iso(row.resolved_at)}"
                )
            if row.status == AlertStatus.OPEN.value:
                row.status = AlertStatus.ACKNOWLEDGED.value
                row.acknowledged_at = now
                row.acknowledged_by = by
                row.acknowledge_note = note
                self._event(session, row, AlertEvent.ACKNOWLEDGED, now, {"by": by, "note": note})
            return AlertChange(AlertEvent.ACKNOWLEDGED, Alert.from_row(row), now)
