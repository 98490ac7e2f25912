"""Consent to read a member's smart meter (issue 17), on the shared Base.

A household's consumption every few minutes shows when people are home: personal data under
the GDPR. Nothing of a member's meter is collected or stored without a row here:

- ``meter_consents``: one opt-in of a member for the meter at one site, with its date, scope
  (electricity, and gas or not) and granularity (the shortest interval the member allows, in
  seconds). Withdrawal sets ``withdrawn_at`` (collection stops: the collector refuses the
  meter's readings from then on) and ``delete_by`` (when the stored readings must be gone);
  the purge sets ``deleted_at`` once they are. A row is never deleted: it is the proof of
  what the member agreed to and when.
- ``consent_events``: every opt-in, withdrawal, deletion and refusal, with who did it.
- ``personal_data_access``: every time a person looked at one member's meter data (who, whose,
  why), so an operator's access is on record.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from collector.store.models import ID, Base
from collector.store.types import UtcDateTime


class MeterConsentRow(Base):
    __tablename__ = "meter_consents"
    __table_args__ = (Index("ix_meter_consents_gateway_device", "gateway_id", "device_id"),)

    consent_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.member_id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"))
    gateway_id: Mapped[str] = mapped_column(ID)
    #: the meter's device id on the wire (``zonnewijk_wire.MeterReading.device_id``)
    device_id: Mapped[str] = mapped_column(ID)
    electricity: Mapped[bool] = mapped_column(Boolean)
    gas: Mapped[bool] = mapped_column(Boolean)
    #: shortest interval of a stored reading the member allows [s]
    granularity_s: Mapped[int] = mapped_column(Integer)
    given_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_by: Mapped[str] = mapped_column(String(200))
    #: how the member gave it (signed form, portal, e-mail) and where the proof is kept
    evidence: Mapped[str | None] = mapped_column(String(500))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    delete_by: Mapped[datetime | None] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ConsentEventRow(Base):
    __tablename__ = "consent_events"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("meter_consents.consent_id"))
    member_id: Mapped[str] = mapped_column(ID, index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: given | withdrawn | deleted | refused
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(String(1000))


class PersonalDataAccessRow(Base):
    __tablename__ = "personal_data_access"

    access_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: who looked (portal account e-mail, or an operator's name on the command line)
    actor: Mapped[str] = mapped_column(String(320))
    #: member | operator
    role: Mapped[str] = mapped_column(String(16))
    #: whose data
    member_id: Mapped[str] = mapped_column(ID, index=True)
    what: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(500))
