"""The bookkeeping CSV: one row per ledger line, totals equal to the ledger's."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from statement_cases import issue_march_and_april

from collector.statements.bookkeeping import (
    LINE_COLUMNS,
    SUMMARY_COLUMNS,
    BookkeepingError,
    account_for,
    export_run,
)
from collector.statements.config import LedgerAccounts, load_config
from collector.store.ledger_models import (
    SettlementLineRow,
    SettlementRunRow,
    SettlementStatementRow,
)
from collector.store.testing import DatabaseUnavailableError, temporary_database

ACCOUNTS = load_config().ledger_accounts


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(params=["sqlite", "postgresql"])
def both(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, str, str]]:
    try:
        with temporary_database(request.param) as engine:
            with Session(engine) as session:
                march, april = issue_march_and_april(session)
            yield engine, march, april
    except DatabaseUnavailableError as exc:  # pragma: no cover - machine without PostgreSQL
        pytest.skip(str(exc))


def test_csv_totals_equal_the_ledger(both: tuple[Engine, str, str], tmp_path: Path) -> None:
    engine, march, april = both
    with Session(engine) as session:
        for run_id in (march, april):
            result = export_run(session, run_id, tmp_path, ACCOUNTS)
            run = session.get(SettlementRunRow, run_id)
            assert run is not None
            lines = list(
                session.scalars(select(SettlementLineRow).where(SettlementLineRow.run_id == run_id))
            )
            rows = read_csv(result.lines_path)
            assert tuple(rows[0]) == LINE_COLUMNS
            assert len(rows) == len(lines) == result.lines
            excl = sum(Decimal(r["amount_excl_vat_eur"]) for r in rows)
            vat = sum(Decimal(r["vat_eur"]) for r in rows)
            incl = sum(Decimal(r["amount_incl_vat_eur"]) for r in rows)
            assert excl == run.total_excl_vat_eur == sum(x.amount_eur for x in lines)
            assert vat == run.vat_eur == sum(x.vat_eur for x in lines)
            assert incl == excl + vat
            # per member: the statements' totals
            for statement in session.scalars(
                select(SettlementStatementRow).where(SettlementStatementRow.run_id == run_id)
            ):
                mine = [r for r in rows if r["contract_id"] == statement.contract_id]
                assert {r["member_number"] for r in mine} <= {statement.member_id}
                assert sum(Decimal(r["amount_excl_vat_eur"]) for r in mine) == (
                    statement.total_excl_vat_eur
                )
            summary = read_csv(result.summary_path)
            assert tuple(summary[0]) == SUMMARY_COLUMNS
            (total,) = [r for r in summary if r["kind"] == "total"]
            assert Decimal(total["amount_excl_vat_eur"]) == run.total_excl_vat_eur
            assert Decimal(total["vat_eur"]) == run.vat_eur
            booked = [r for r in summary if r["kind"] not in ("total", "vat")]
            assert sum(Decimal(r["amount_excl_vat_eur"]) for r in booked) == excl
            assert sum(Decimal(r["vat_eur"]) for r in summary if r["kind"] == "vat") == vat


def test_accounts_and_corrections_in_the_csv(
    issued: tuple[Engine, str, str], tmp_path: Path
) -> None:
    engine, march, april = issued
    with Session(engine) as session:
        rows = read_csv(export_run(session, april, tmp_path, ACCOUNTS).lines_path)
        m1 = read_csv(export_run(session, march, tmp_path, ACCOUNTS).lines_path)[:2]
    (correction,) = [r for r in rows if r["kind"] == "energy_correction"]
    assert correction["member_number"] == "M5"
    assert correction["corrects_period"] == "2026-03"
    assert correction["ledger_account"] == ACCOUNTS.energy_correction
    assert {r["ledger_account"] for r in rows if r["kind"] == "monthly_fee"} == {
        ACCOUNTS.monthly_fee
    }
    # M1 in March, hand-computed (see statement_cases)
    assert [
        (r["member_number"], r["kind"], r["amount_excl_vat_eur"], r["vat_eur"]) for r in m1
    ] == [
        ("M1", "monthly_fee", "6.05", "1.27"),
        ("M1", "energy", "3.42", "0.72"),
    ]
    assert m1[0]["vat_rate"] == "0.21" and m1[0]["period"] == "2026-03"


def test_unknown_line_kind_is_refused() -> None:
    accounts = LedgerAccounts(
        monthly_fee="1", energy="2", energy_correction="3", guarantee_compensation="4", vat="5"
    )
    assert account_for("energy", accounts) == "2"
    with pytest.raises(BookkeepingError, match="no ledger account for line kind 'heat'"):
        account_for("heat", accounts)
