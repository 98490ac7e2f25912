"""Bookkeeping export of a settlement run: one CSV row per statement line plus a summary.

Columns are stable (documented in ``docs/bookkeeping-export.md``); amounts are decimal
strings with a point and two decimals, exactly the ledger's values, so the file's totals equal
the ledger's. Ledger accounts come from ``config/statements.yaml``.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.statements.config import LedgerAccounts
from collector.statements.data import run as run_row
from collector.store.ledger_models import (
    SettlementLineRow,
    SettlementPartRow,
    SettlementStatementRow,
)

LINE_COLUMNS = (
    "run_id",
    "period",
    "member_number",
    "contract_id",
    "line_no",
    "kind",
    "corrects_period",
    "ledger_account",
    "description",
    "quantity",
    "unit",
    "unit_price_eur",
    "amount_excl_vat_eur",
    "vat_rate",
    "vat_eur",
    "amount_incl_vat_eur",
    "line_period_start",
    "line_period_end",
)
SUMMARY_COLUMNS = (
    "run_id",
    "period",
    "ledger_account",
    "kind",
    "vat_rate",
    "lines",
    "amount_excl_vat_eur",
    "vat_eur",
    "amount_incl_vat_eur",
)


class BookkeepingError(ValueError):
    """The export cannot be made; the message says why."""


@dataclass(frozen=True)
class ExportResult:
    lines_path: Path
    summary_path: Path
    lines: int
    total_excl_vat_eur: Decimal
    vat_eur: Decimal


def account_for(kind: str, accounts: LedgerAccounts) -> str:
    """The ledger account of a line kind; an unknown kind is refused, never booked silently."""
    account = getattr(accounts, kind, None)
    if not isinstance(account, str) or kind == "vat":
        raise BookkeepingError(
            f"no ledger account for line kind {kind!r}: add it under ledger_accounts in "
            "config/statements.yaml"
        )
    return account


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def export_run(
    session: Session,
    run_id: str,
    out_dir: Path,
    accounts: LedgerAccounts,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write ``<period>.bookkeeping.csv`` and ``<period>.bookkeeping-summary.csv``.

    The summary has one row per ledger account, kind and VAT rate, a row per VAT rate on the
    VAT account, and a ``total`` row; it is checked against the run's own totals.
    """
    run = run_row(session, run_id)
    members: dict[str, str] = {
        contract_id: member_id
        for contract_id, member_id in session.execute(
            select(SettlementStatementRow.contract_id, SettlementStatementRow.member_id).where(
                SettlementStatementRow.run_id == run_id
            )
        )
    }
    corrects = {
        (p.contract_id, p.start_day, p.end_day): p.period
        for p in session.scalars(
            select(SettlementPartRow).where(
                SettlementPartRow.run_id == run_id, SettlementPartRow.kind == "correction"
            )
        )
    }
    lines = list(
        session.scalars(
            select(SettlementLineRow)
            .where(SettlementLineRow.run_id == run_id)
            .order_by(SettlementLineRow.contract_id, SettlementLineRow.line_no)
        )
    )
    lines.sort(key=lambda r: (members[r.contract_id], r.contract_id, r.line_no))
    out_dir.mkdir(parents=True, exist_ok=True)
    lines_path = out_dir / f"{run.period}.bookkeeping.csv"
    summary_path = out_dir / f"{run.period}.bookkeeping-summary.csv"
    groups: dict[tuple[str, str, Decimal], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0), Decimal(0)]
    )
    vat_groups: dict[Decimal, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    total_excl = total_vat = Decimal(0)
    with lines_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(LINE_COLUMNS)
        for i, line in enumerate(lines, start=1):
            account = account_for(line.kind, accounts)
            corrected = ""
            if line.kind == "energy_correction":
                corrected = corrects.get(
                    (line.contract_id, line.period_start, line.period_end),
                    line.period_start.strftime("%Y-%m"),
                )
            rate = line.vat_rate.normalize()
            writer.writerow(
                (
                    run_id,
                    run.period,
                    members[line.contract_id],
                    line.contract_id,
                    line.line_no,
                    line.kind,
                    corrected,
                    account,
                    line.description,
                    str(line.quantity),
                    line.unit,
                    str(line.unit_price_eur),
                    _money(line.amount_eur),
                    str(rate),
                    _money(line.vat_eur),
                    _money(line.amount_eur + line.vat_eur),
                    line.period_start.isoformat(),
                    line.period_end.isoformat(),
                )
            )
            group = groups[(account, line.kind, rate)]
            group[0] += 1
            group[1] += line.amount_eur
            group[2] += line.vat_eur
            vat_groups[rate][0] += 1
            vat_groups[rate][1] += line.vat_eur
            total_excl += line.amount_eur
            total_vat += line.vat_eur
            if progress is not None and (i % 500 == 0 or i == len(lines)):
                progress(i, len(lines))
    if (total_excl, total_vat) != (run.total_excl_vat_eur, run.vat_eur):
        raise BookkeepingError(
            f"run {run_id}: its lines add up to {total_excl} + {total_vat} VAT but the run "
            f"records {run.total_excl_vat_eur} + {run.vat_eur}; the ledger is inconsistent"
        )
    with summary_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(SUMMARY_COLUMNS)
        for (account, kind, rate), (count, excl, vat) in sorted(groups.items()):
            writer.writerow(
                (
                    run_id,
                    run.period,
                    account,
                    kind,
                    str(rate),
                    int(count),
                    _money(excl),
                    _money(vat),
                    _money(excl + vat),
                )
            )
        for rate, (count, vat) in sorted(vat_groups.items()):
            writer.writerow(
                (
                    run_id,
                    run.period,
                    accounts.vat,
                    "vat",
                    str(rate),
                    int(count),
                    "0.00",
                    _money(vat),
                    _money(vat),
                )
            )
        writer.writerow(
            (
                run_id,
                run.period,
                "",
                "total",
                "",
                len(lines),
                _money(total_excl),
                _money(total_vat),
                _money(total_excl + total_vat),
            )
        )
    return ExportResult(lines_path, summary_path, len(lines), total_excl, total_vat)
