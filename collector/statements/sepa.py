"""SEPA payment files of a settlement run, built with sepaxml and checked against its XSDs.

- **pain.008** direct debit: members whose statement total (incl. VAT) is positive, from
  their mandate in the registry (IBAN, BIC, mandate id and date);
- **pain.001** credit transfer: members the cooperative owes (a negative total, e.g.
  guarantee compensation), to their IBAN.

Every member with money due is accounted for: a payment in a file, or a problem naming the
member number (no mandate, no IBAN, an IBAN whose checksum fails, a wrong BIC). IBANs are
checked with schwifty (ISO 13616 checksum and country format) here even though the registry
checks them on load, because rows can reach the store in other ways.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import sepaxml
import xmlschema
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sepaxml import SepaDD, SepaTransfer
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.statements.config import SepaConfig
from collector.statements.data import run as run_row
from collector.store.ledger_models import SettlementStatementRow
from collector.store.models import CooperativeRow, MemberRow

SCHEMA_DIR = Path(os.path.dirname(sepaxml.__file__)) / "schemas"
CENTS = Decimal("0.01")


class SepaError(ValueError):
    """The payment files cannot be made at all (e.g. the cooperative lacks a creditor id)."""


@dataclass(frozen=True)
class Problem:
    """A member whose payment is not in a file, and why."""

    member_id: str
    amount_eur: Decimal
    reason: str

    def __str__(self) -> str:
        return f"member {self.member_id} ({self.amount_eur} EUR): {self.reason}"


@dataclass
class SepaResult:
    """What was written and what was left out."""

    debit_path: Path | None = None
    transfer_path: Path | None = None
    debits: int = 0
    debit_total_eur: Decimal = Decimal(0)
    transfers: int = 0
    transfer_total_eur: Decimal = Decimal(0)
    problems: list[Problem] = field(default_factory=list)
    zero: list[str] = field(default_factory=list)


def check_iban(value: str | None, member_id: str) -> str:
    """The compact IBAN, or :class:`ValueError` naming the member and what is wrong."""
    if not value:
        raise ValueError(f"member {member_id} has no IBAN in the registry")
    try:
        return str(IBAN(value).compact)
    except SchwiftyException as exc:
        raise ValueError(f"member {member_id}: IBAN {value!r} is not valid ({exc})") from None


def check_bic(value: str | None, iban: str, member_id: str) -> str | None:
    """The member's BIC: the registry's (checked) or the one the IBAN's bank code gives."""
    try:
        if value:
            return str(BIC(value).compact)
        bic = IBAN(iban).bic
        return None if bic is None else str(bic.compact)
    except SchwiftyException as exc:
        raise ValueError(f"member {member_id}: BIC {value!r} is not valid ({exc})") from None


def validate_xml(xml: bytes, schema: str) -> None:
    """Raise :class:`SepaError` with the first XSD violation (schemas shipped with sepaxml)."""
    xsd = xmlschema.XMLSchema(SCHEMA_DIR / f"{schema}.xsd")
    errors = list(xsd.iter_errors(xml.decode("utf-8")))
    if errors:
        raise SepaError(f"{schema} file does not validate: {errors[0].reason} at {errors[0].path}")


def _cents(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


def _creditor(session: Session, config: SepaConfig) -> tuple[CooperativeRow, str, str | None]:
    coop = session.get(CooperativeRow, 1)
    if coop is None:
        raise SepaError("the registry has no cooperative: load the fleet file first")
    if not coop.iban:
        raise SepaError("the cooperative has no iban in the fleet file; SEPA files need it")
    try:
        iban = str(IBAN(coop.iban).compact)
    except SchwiftyException as exc:
        raise SepaError(f"the cooperative's IBAN {coop.iban!r} is not valid ({exc})") from None
    bic = config.creditor_bic
    if bic is None:
        found = IBAN(iban).bic
        bic = None if found is None else str(found.compact)
    return coop, iban, bic


def member_totals(session: Session, run_id: str) -> dict[str, Decimal]:
    """Each member's total incl. VAT in a run [EUR] (positive: the member owes)."""
    out: dict[str, Decimal] = {}
    for s in session.scalars(
        select(SettlementStatementRow).where(SettlementStatementRow.run_id == run_id)
    ):
        out[s.member_id] = out.get(s.member_id, Decimal(0)) + s.total_excl_vat_eur + s.vat_eur
    return out


def build_sepa(
    session: Session,
    run_id: str,
    out_dir: Path,
    config: SepaConfig,
    *,
    today: date,
    progress: Callable[[int, int], None] | None = None,
) -> SepaResult:
    """Write ``<period>.pain.008.xml`` and ``<period>.pain.001.xml`` (only those with payments).

    Parameters
    ----------
    today
        The day the files are made; collection and execution are
        ``config.collection_delay_days`` later.
    """
    run = run_row(session, run_id)
    coop, coop_iban, coop_bic = _creditor(session, config)
    totals = member_totals(session, run_id)
    members = {m.member_id: m for m in session.scalars(select(MemberRow))}
    due = today + timedelta(days=config.collection_delay_days)
    result = SepaResult()
    debit_needed = any(v > 0 for v in totals.values())
    if debit_needed and not coop.creditor_id:
        raise SepaError(
            "the cooperative has no creditor_id in the fleet file; direct debits need it"
        )
    base = {"name": coop.name, "IBAN": coop_iban, "batch": True, "currency": "EUR"}
    if coop_bic:
        base["BIC"] = coop_bic
    debit = SepaDD(
        {**base, "creditor_id": coop.creditor_id or ""}, schema=config.direct_debit_schema
    )
    transfer = SepaTransfer(dict(base), schema=config.credit_transfer_schema)
    description = f"{coop.name} afrekening {run.period}"
    for i, (member_id, total) in enumerate(sorted(totals.items()), start=1):
        if progress is not None:
            progress(i, len(totals))
        amount = total.quantize(CENTS)
        if amount == 0:
            result.zero.append(member_id)
            continue
        member = members.get(member_id)
        if member is None:
            result.problems.append(Problem(member_id, amount, "not in the registry"))
            continue
        if amount > 0 and (not member.mandate_id or member.mandate_date is None):
            result.problems.append(
                Problem(
                    member_id,
                    amount,
                    f"member {member_id} has no direct debit mandate (iban, mandate_id and "
                    "mandate_date in the registry); collect this amount another way",
                )
            )
            continue
        try:
            iban = check_iban(member.iban, member_id)
            bic = check_bic(member.bic, iban, member_id)
        except ValueError as exc:
            result.problems.append(Problem(member_id, amount, str(exc)))
            continue
        payment: dict[str, object] = {
            "name": member.name,
            "IBAN": iban,
            "amount": _cents(abs(amount)),
            "description": f"{description} lid {member_id}",
            "endtoend_id": f"ZW{run.period.replace('-', '')}{member_id}"[:35],
        }
        if bic:
            payment["BIC"] = bic
        if amount > 0:
            payment.update(
                type=config.sequence_type,
                collection_date=due,
                mandate_id=member.mandate_id,
                mandate_date=member.mandate_date,
            )
            debit.add_payment(payment)
            result.debits += 1
            result.debit_total_eur += amount
        else:
            payment["execution_date"] = due
            transfer.add_payment(payment)
            result.transfers += 1
            result.transfer_total_eur += -amount
    out_dir.mkdir(parents=True, exist_ok=True)
    if result.debits:
        xml = debit.export(validate=False)
        validate_xml(xml, config.direct_debit_schema)
        result.debit_path = out_dir / f"{run.period}.{config.direct_debit_schema}.xml"
        result.debit_path.write_bytes(xml)
    if result.transfers:
        xml = transfer.export(validate=False)
        validate_xml(xml, config.credit_transfer_schema)
        result.transfer_path = out_dir / f"{run.period}.{config.credit_transfer_schema}.xml"
        result.transfer_path.write_bytes(xml)
    return result
