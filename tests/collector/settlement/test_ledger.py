"""The settlement ledger on SQLite and PostgreSQL: immutable runs, corrections, equal rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from settle_cases import END, S4_STOP, fleet, readings, steady_pairs
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collector.settlement.engine import settle
from collector.settlement.inputs import SettlementInputs, correction_periods
from collector.settlement.ledger import (
    LedgerError,
    LedgerImmutableError,
    billed_parts,
    issued_periods,
    ledger_snapshot,
    record_run,
)
from collector.settlement.periods import parse_month
from collector.store.ledger_models import SettlementLineRow, SettlementRunRow
from collector.store.testing import DatabaseUnavailableError, temporary_database

ISSUED_AT = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    try:
        with temporary_database(request.param) as eng:
            yield eng
    except DatabaseUnavailableError as exc:  # pragma: no cover - machine without PostgreSQL
        pytest.skip(str(exc))


def issue(session: Session, period: str, data: dict[str, object], months: int = 1) -> str:
    billed = billed_parts(session)
    target = parse_month(period)
    correct = tuple(p.label for p in correction_periods(billed, target, months))
    inputs = SettlementInputs(
        target,
        fleet(),
        data,
        billed=tuple(billed),
        correct_periods=correct,  # type: ignore[arg-type]
    )
    result = settle(inputs)
    run_id = record_run(
        session,
        result,
        fleet=inputs.fleet,
        correct_periods=correct,
        readings_source="test",
        issued_at=ISSUED_AT,
    )
    session.commit()
    return run_id


def march_then_april_with_late_data(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with Session(engine) as session:
        assert issue(session, "2026-03", readings()) == "2026-03.1"
        late = steady_pairs(S4_STOP + timedelta(minutes=30), END, 110.0, 364_755.0)
        assert issue(session, "2026-04", readings(s4_late=late)) == "2026-04.1"
        return ledger_snapshot(session)


def test_late_readings_are_corrected_in_the_next_run_and_march_stays_as_issued(
    engine: Engine,
) -> None:
    snapshot = march_then_april_with_late_data(engine)
    with Session(engine) as session:
        assert issued_periods(session) == ["2026-03", "2026-04"]
        march_lines = session.scalars(
            select(SettlementLineRow).where(
                SettlementLineRow.run_id == "2026-03.1", SettlementLineRow.contract_id == "C5"
            )
        ).all()
        assert [(x.kind, x.quantity, x.amount_eur) for x in march_lines] == [
            ("monthly_fee", Decimal(31), Decimal("12.50")),
            ("energy", Decimal("74.300"), Decimal("7.06")),
        ]
        fixes = session.scalars(
            select(SettlementLineRow).where(SettlementLineRow.kind == "energy_correction")
        ).all()
        assert [(x.run_id, x.contract_id, x.quantity, x.amount_eur, x.vat_eur) for x in fixes] == [
            ("2026-04.1", "C5", Decimal("1.670"), Decimal("0.16"), Decimal("0.03"))
        ]
        march_c5 = next(b for b in billed_parts(session) if b.contract_id == "C5")
        assert march_c5.kwh == Decimal("75.970")  # 74.300 billed + 1.670 corrected
    assert len(snapshot["settlement_counter_readings"]) > 0
    assert len(snapshot["settlement_estimates"]) > 0


def test_sqlite_and_postgresql_give_identical_ledgers() -> None:
    snapshots = []
    for backend in ("sqlite", "postgresql"):
        try:
            with temporary_database(backend) as eng:  # type: ignore[arg-type]
                snapshots.append(march_then_april_with_late_data(eng))
        except DatabaseUnavailableError as exc:  # pragma: no cover
            pytest.skip(str(exc))
    assert snapshots[0] == snapshots[1]
    assert sum(len(rows) for rows in snapshots[0].values()) > 50


def test_an_issued_month_is_never_settled_again(engine: Engine) -> None:
    with Session(engine) as session:
        issue(session, "2026-03", readings())
        with pytest.raises(LedgerError, match="never rewritten"):
            issue(session, "2026-03", readings())


def test_issued_rows_cannot_be_changed_or_deleted(engine: Engine) -> None:
    with Session(engine) as session:
        issue(session, "2026-03", readings())
        line = session.scalars(select(SettlementLineRow)).first()
        assert line is not None
        line.amount_eur = Decimal("0.00")
        with pytest.raises(LedgerImmutableError):
            session.flush()
        session.rollback()
        run = session.get(SettlementRunRow, "2026-03.1")
        session.delete(run)
        with pytest.raises(LedgerImmutableError):
            session.flush()
