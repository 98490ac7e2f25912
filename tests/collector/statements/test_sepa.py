"""SEPA files: valid against the XSDs, one payment per member, problems named by member."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xmlschema
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from statement_cases import COOP_IBAN, IBANS, issue_march_and_april

from collector.statements.config import SepaConfig
from collector.statements.sepa import (
    SCHEMA_DIR,
    SepaError,
    build_sepa,
    check_iban,
    member_totals,
)
from collector.store.models import CooperativeRow, MemberRow
from collector.store.testing import temporary_database

TODAY = date(2026, 4, 5)


def payments(path: Path) -> dict[str, tuple[str, Decimal]]:
    """End-to-end id → (IBAN, amount) of every transaction in a pain file."""
    root = ET.parse(path).getroot()
    ns = {"p": root.tag.partition("}")[0][1:]}
    out = {}
    txs = [*root.iterfind(".//p:DrctDbtTxInf", ns), *root.iterfind(".//p:CdtTrfTxInf", ns)]
    for tx in txs:
        e2e = tx.findtext(".//p:EndToEndId", namespaces=ns)
        iban = tx.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=ns) or tx.findtext(
            ".//p:CdtrAcct/p:Id/p:IBAN", namespaces=ns
        )
        amount = tx.findtext(".//p:InstdAmt", namespaces=ns)
        assert e2e and iban and amount
        out[e2e] = (iban, Decimal(amount))
    return out


@pytest.mark.parametrize(
    ("debit_schema", "transfer_schema"),
    [("pain.008.001.02", "pain.001.001.03"), ("pain.008.001.08", "pain.001.001.09")],
)
def test_pain_files_validate_and_hold_every_member(
    issued: tuple[Engine, str, str], tmp_path: Path, debit_schema: str, transfer_schema: str
) -> None:
    engine, march, _ = issued
    config = SepaConfig(direct_debit_schema=debit_schema, credit_transfer_schema=transfer_schema)  # type: ignore[arg-type]
    with Session(engine) as session:
        result = build_sepa(session, march, tmp_path, config, today=TODAY)
        totals = member_totals(session, march)
    assert result.debit_path is not None and result.transfer_path is not None
    # validated here independently of the module, against the XSDs sepaxml ships
    xmlschema.XMLSchema(SCHEMA_DIR / f"{debit_schema}.xsd").validate(str(result.debit_path))
    xmlschema.XMLSchema(SCHEMA_DIR / f"{transfer_schema}.xsd").validate(str(result.transfer_path))
    debits = payments(result.debit_path)
    credits = payments(result.transfer_path)
    # M1-M3 owe (mandates), M4 gets the guarantee compensation, M5 owes but has no mandate
    assert debits == {f"ZW202603{m}": (IBANS[m], totals[m]) for m in ("M1", "M2", "M3")}
    assert debits["ZW202603M1"][1] == Decimal("11.46")  # hand-computed, see statement_cases
    # C4's complete contract year April 2025 - March 2026: 1.000 - 876,000 kWh (8.760 h × 100 Wh)
    # = 124,000 kWh short × 0,20 = 24,80 + 21 % VAT 5,21 = 30,01 (see test_statement_pdf)
    assert credits == {"ZW202603M4": (IBANS["M4"], Decimal("30.01"))}
    assert totals["M4"] == Decimal("-30.01")
    assert result.debit_total_eur == sum(totals[m] for m in ("M1", "M2", "M3"))
    assert [p.member_id for p in result.problems] == ["M5"]
    assert "M5 has no direct debit mandate" in str(result.problems[0])
    xml = result.debit_path.read_text(encoding="utf-8")
    assert "ZW-M1-2025" in xml and "2025-01-01" in xml  # mandate id and date
    assert "NL08ZZZ123456780000" in xml  # creditor id
    assert COOP_IBAN in xml


@pytest.fixture
def fresh() -> Iterator[tuple[Engine, str]]:
    with temporary_database("sqlite") as engine:
        with Session(engine) as session:
            march, _ = issue_march_and_april(session)
        yield engine, march


def test_wrong_iban_is_reported_with_the_member_number(
    fresh: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, march = fresh
    with Session(engine) as session:
        member = session.get(MemberRow, "M2")
        assert member is not None
        member.iban = "NL44RABO0123456780"  # one digit changed: the checksum fails
        session.commit()
        result = build_sepa(session, march, tmp_path, SepaConfig(), today=TODAY)
    problems = {p.member_id: str(p) for p in result.problems}
    assert set(problems) == {"M2", "M5"}
    assert "member M2" in problems["M2"] and "NL44RABO0123456780" in problems["M2"]
    assert "checksum" in problems["M2"].lower()
    assert result.debit_path is not None
    assert "NL44RABO0123456780" not in result.debit_path.read_text(encoding="utf-8")
    assert result.debits == 2


def test_check_iban_messages() -> None:
    assert check_iban("NL91 ABNA 0417 1643 00", "M9") == "NL91ABNA0417164300"
    with pytest.raises(ValueError, match="member M9 has no IBAN"):
        check_iban(None, "M9")
    with pytest.raises(ValueError, match="member M9: IBAN 'NL91ABNA0417164301'"):
        check_iban("NL91ABNA0417164301", "M9")


def test_cooperative_without_creditor_id_is_refused(
    fresh: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, march = fresh
    with Session(engine) as session:
        coop = session.get(CooperativeRow, 1)
        assert coop is not None
        coop.creditor_id = None
        session.commit()
        with pytest.raises(SepaError, match="no creditor_id"):
            build_sepa(session, march, tmp_path, SepaConfig(), today=TODAY)
