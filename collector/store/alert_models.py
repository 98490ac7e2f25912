"""Alert tables of the relational store (fault detection, issue 8), on the shared Base.

- ``alerts``: one row per alert; ``open_key`` is ``<device>|<kind>`` while the alert is open
  or acknowledged and NULL once resolved, and is unique, so the database itself keeps one
  live alert per device and kind however many server instances run the detectors;
- ``alert_events``: the history of each alert (opened, escalated, acknowledged, resolved);
- ``alert_notifications``: every delivery attempt per channel (sent, failed, rate-limited),
  which is also what the rate limit counts, across instances;
- ``job_runs``: one row per scheduled job and time slot; the primary key makes the first
  instance to insert it the only one that runs the job for that slot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collector.store.models import ID, Base
from collector.store.types import UtcDateTime


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_device_kind", "device_id", "kind"),
        Index("ix_alerts_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str] = mapped_column(ID)
    gateway_id: Mapped[str] = mapped_column(ID)
    severity: Mapped[int] = mapped_column(Integer)
    #: open | acknowledged | resolved
    status: Mapped[str] = mapped_column(String(16))
    #: ``<device>|<kind>`` while not resolved, else NULL (unique: one live alert per pair)
    open_key: Mapped[str | None] = mapped_column(String(112), unique=True)
    message: Mapped[str] = mapped_column(Text)
    #: the numbers that raised it, updated while it stays open
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    condition_since: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledge_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AlertEventRow(Base):
    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: opened | escalated | acknowledged | resolved
    event: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class AlertNotificationRow(Base):
    __tablename__ = "alert_notifications"
    __table_args__ = (Index("ix_alert_notifications_channel_at", "channel", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: sent | failed | rate_limited
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class JobRunRow(Base):
    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: the period this run covers, e.g. ``2026-11-28T12:05`` or the local date for daily jobs
    slot: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: running | done | failed
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
