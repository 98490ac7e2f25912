"""Relational store: the registry tables (SQLAlchemy 2 typed ORM).

All tables share :class:`Base`; the settlement ledger adds its tables on the same Base in
``collector/store/ledger_models.py``. Schema changes go through alembic migrations in
``collector/store/migrations/versions`` (``zonnewijk db revision -m ...`` drafts one from the
models; ``zonnewijk db migrate`` applies them).

Registry rows mirror the fleet file (natural ids as primary keys, so ledgers on SQLite and
PostgreSQL are identical row for row); every change a load makes is written to
``registry_changes`` with the old and new value, so history survives edits and removals.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from collector.store.types import ExactDecimal, UtcDateTime

#: Deterministic constraint names, so migrations work the same on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(64)


class Base(DeclarativeBase):
    """Declarative base of every Zonnewijk table (registry and ledger)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CooperativeRow(Base):
    """The cooperative itself; one row with ``id = 1``."""

    __tablename__ = "cooperative"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    email: Mapped[str | None] = mapped_column(String(320))
    iban: Mapped[str | None] = mapped_column(String(34))
    creditor_id: Mapped[str | None] = mapped_column(String(200))


class MemberRow(Base):
    __tablename__ = "members"

    member_id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    email: Mapped[str] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(2))
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    mandate_id: Mapped[str | None] = mapped_column(String(35))
    mandate_date: Mapped[date | None] = mapped_column(Date)


class SiteRow(Base):
    __tablename__ = "sites"

    site_id: Mapped[str] = mapped_column(ID, primary_key=True)
    street: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    kwp: Mapped[Decimal] = mapped_column(ExactDecimal)
    tilt_deg: Mapped[float] = mapped_column(Float)
    azimuth_deg: Mapped[float] = mapped_column(Float)
    gateway_id: Mapped[str] = mapped_column(ID, index=True)


class DeviceRow(Base):
    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(ID, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), index=True)
    gateway_id: Mapped[str | None] = mapped_column(ID)
    family: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    ac_rating_w: Mapped[int] = mapped_column(Integer)
    mppt_count: Mapped[int] = mapped_column(Integer)
    kwp: Mapped[Decimal] = mapped_column(ExactDecimal)
    installed_on: Mapped[date] = mapped_column(Date)
    removed_on: Mapped[date | None] = mapped_column(Date)
    replaced_by: Mapped[str | None] = mapped_column(ID)


class DeviceReplacementRow(Base):
    """A device taking over from another: the old counter's last and the new one's first."""

    __tablename__ = "device_replacements"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), primary_key=True)
    replaced_device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    old_last_energy_wh: Mapped[Decimal] = mapped_column(ExactDecimal)
    new_first_energy_wh: Mapped[Decimal] = mapped_column(ExactDecimal)
    reason: Mapped[str | None] = mapped_column(String(200))


class CounterResetRow(Base):
    """A known jump of a device's lifetime counter."""

    __tablename__ = "counter_resets"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    last_energy_wh: Mapped[Decimal] = mapped_column(ExactDecimal)
    first_energy_wh: Mapped[Decimal] = mapped_column(ExactDecimal)
    reason: Mapped[str | None] = mapped_column(String(200))


class TariffPlanRow(Base):
    __tablename__ = "tariff_plans"

    plan_id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class TariffVersionRow(Base):
    """One version of a tariff plan (all prices excluding VAT)."""

    __tablename__ = "tariff_versions"

    plan_id: Mapped[str] = mapped_column(ForeignKey("tariff_plans.plan_id"), primary_key=True)
    valid_from: Mapped[date] = mapped_column(Date, primary_key=True)
    monthly_fee_eur: Mapped[Decimal] = mapped_column(ExactDecimal)
    price_eur_per_kwh: Mapped[Decimal] = mapped_column(ExactDecimal)
    guarantee_kwh_per_year: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    guarantee_kwh_per_kwp_per_year: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    compensation_eur_per_kwh: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    indexation_per_year: Mapped[Decimal] = mapped_column(ExactDecimal)
    vat_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    note: Mapped[str] = mapped_column(String(500))


class ContractRow(Base):
    """A member renting a site's panels; dates are inclusive Europe/Amsterdam days."""

    __tablename__ = "contracts"
    __table_args__ = (Index("ix_contracts_site_start", "site_id", "start_date"),)

    contract_id: Mapped[str] = mapped_column(ID, primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.member_id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    tariff_plan_id: Mapped[str] = mapped_column(ForeignKey("tariff_plans.plan_id"))
    year_anchor: Mapped[date | None] = mapped_column(Date)


class RegistryLoadRow(Base):
    """One load (fleet file or CSV import) that changed the registry."""

    __tablename__ = "registry_loads"

    load_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    inserted: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer, default=0)


class RegistryChangeRow(Base):
    """One field of one row changed by a load (``insert``/``update``/``delete``)."""

    __tablename__ = "registry_changes"

    change_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    load_id: Mapped[int] = mapped_column(ForeignKey("registry_loads.load_id"), index=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_key: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(8))
    field: Mapped[str | None] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)


Index("ix_registry_changes_entity", RegistryChangeRow.entity, RegistryChangeRow.entity_key)
