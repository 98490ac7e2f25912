"""Settlement ledger tables, on the registry's :class:`~collector.store.models.Base`.

A run is written once, complete, and issued in the same transaction; nothing in it is ever
updated or deleted (:mod:`collector.settlement.ledger` refuses such flushes). Late readings
produce correction rows in a later run. Keys are natural (run id ``YYYY-MM.N``, contract ids,
line numbers), so SQLite and PostgreSQL hold identical rows for identical runs.

Recorded inputs: the inputs' SHA-256 and (when written) the data-set file, the engine settings,
the code version, the tariff versions used (as JSON), every counter reading a part's yield was
interpolated from, and every estimate with its basis.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, ForeignKeyConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collector.store.models import ID, Base
from collector.store.types import ExactDecimal, UtcDateTime


class SettlementRunRow(Base):
    """One issued settlement of a month."""

    __tablename__ = "settlement_runs"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    code_version: Mapped[str] = mapped_column(String(200))
    inputs_sha256: Mapped[str] = mapped_column(String(64))
    inputs_file: Mapped[str | None] = mapped_column(Text)
    readings_source: Mapped[str] = mapped_column(String(500))
    settings_json: Mapped[str] = mapped_column(Text)
    correct_periods: Mapped[str] = mapped_column(String(200))
    contracts: Mapped[int] = mapped_column(Integer)
    total_excl_vat_eur: Mapped[Decimal] = mapped_column(ExactDecimal)
    vat_eur: Mapped[Decimal] = mapped_column(ExactDecimal)


class SettlementTariffRow(Base):
    """A tariff version a run used, as it was then."""

    __tablename__ = "settlement_tariffs"

    run_id: Mapped[str] = mapped_column(ForeignKey("settlement_runs.run_id"), primary_key=True)
    tariff: Mapped[str] = mapped_column(String(100), primary_key=True)
    version_json: Mapped[str] = mapped_column(Text)


class SettlementStatementRow(Base):
    """One contract's settlement in a run."""

    __tablename__ = "settlement_statements"

    run_id: Mapped[str] = mapped_column(ForeignKey("settlement_runs.run_id"), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ID, primary_key=True)
    member_id: Mapped[str] = mapped_column(ID, index=True)
    site_id: Mapped[str] = mapped_column(ID)
    start_day: Mapped[date | None] = mapped_column(Date)
    end_day: Mapped[date | None] = mapped_column(Date)
    measured_kwh: Mapped[Decimal] = mapped_column(ExactDecimal)
    estimated_kwh: Mapped[Decimal] = mapped_column(ExactDecimal)
    completeness: Mapped[Decimal] = mapped_column(ExactDecimal)
    total_excl_vat_eur: Mapped[Decimal] = mapped_column(ExactDecimal)
    vat_eur: Mapped[Decimal] = mapped_column(ExactDecimal)
    guarantees_json: Mapped[str] = mapped_column(Text)
    anomalies_json: Mapped[str] = mapped_column(Text)


class SettlementLineRow(Base):
    """One statement line: amount = quantity × unit price rounded to cents, VAT per line."""

    __tablename__ = "settlement_lines"
    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "contract_id"],
            ["settlement_statements.run_id", "settlement_statements.contract_id"],
        ),
    )

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ID, primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    unit: Mapped[str] = mapped_column(String(16))
    unit_price_eur: Mapped[Decimal] = mapped_column(ExactDecimal)
    amount_eur: Mapped[Decimal] = mapped_column(ExactDecimal)
    vat_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    vat_eur: Mapped[Decimal] = mapped_column(ExactDecimal)
    tariff: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)


class SettlementPartRow(Base):
    """The yield of a contract's days as billed (``kind`` billed) or re-measured (correction).

    What a contract's days have been billed so far is the billed row plus the ``delta_kwh`` of
    every later correction row for the same contract and days.
    """

    __tablename__ = "settlement_parts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "contract_id"],
            ["settlement_statements.run_id", "settlement_statements.contract_id"],
        ),
    )

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    start_day: Mapped[date] = mapped_column(Date, primary_key=True)
    end_day: Mapped[date] = mapped_column(Date)
    period: Mapped[str] = mapped_column(String(7), index=True)
    measured_kwh: Mapped[Decimal] = mapped_column(ExactDecimal)
    estimated_kwh: Mapped[Decimal] = mapped_column(ExactDecimal)
    completeness: Mapped[Decimal] = mapped_column(ExactDecimal)
    kwh: Mapped[Decimal] = mapped_column(ExactDecimal)
    delta_kwh: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    tariff: Mapped[str] = mapped_column(String(100))
    unit_price_eur: Mapped[Decimal] = mapped_column(ExactDecimal)
    vat_rate: Mapped[Decimal] = mapped_column(ExactDecimal)


class SettlementCounterRow(Base):
    """A counter reading pair a part's boundary was interpolated from."""

    __tablename__ = "settlement_counter_readings"
    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "contract_id"],
            ["settlement_statements.run_id", "settlement_statements.contract_id"],
        ),
    )

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(ID)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    before_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    before_wh: Mapped[Decimal] = mapped_column(ExactDecimal)
    after_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    after_wh: Mapped[Decimal] = mapped_column(ExactDecimal)
    counter_wh: Mapped[Decimal] = mapped_column(ExactDecimal)


class SettlementEstimateRow(Base):
    """Energy a run estimated, and how."""

    __tablename__ = "settlement_estimates"
    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "contract_id"],
            ["settlement_statements.run_id", "settlement_statements.contract_id"],
        ),
    )

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str | None] = mapped_column(ID)
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    wh: Mapped[Decimal] = mapped_column(ExactDecimal)
    basis: Mapped[str] = mapped_column(Text)


LEDGER_MODELS = (
    SettlementRunRow,
    SettlementTariffRow,
    SettlementStatementRow,
    SettlementLineRow,
    SettlementPartRow,
    SettlementCounterRow,
    SettlementEstimateRow,
)
