"""Statement PDFs (text extracted with pdftotext) show the hand-computed figures."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from statement_cases import issue_march_and_april

from collector.statements import formatting
from collector.statements.data import StatementDataError, load_statement
from collector.statements.render import render_html, render_pdf, render_run
from collector.store.ledger_models import SettlementStatementRow
from collector.store.testing import temporary_database


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "s.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    )
    return " ".join(out.stdout.split())  # one line, single spaces


def test_dutch_formatting() -> None:
    assert formatting.amount(Decimal("1234.56"), "nl") == "1.234,56"
    assert formatting.amount(Decimal("1234.56"), "en") == "1,234.56"
    assert formatting.euro(Decimal("-185.14"), "nl") == "-€ 185,14"
    assert formatting.long_date(date(2026, 10, 31), "nl") == "31 oktober 2026"
    assert formatting.long_date(date(2026, 10, 31), "en") == "31 October 2026"
    assert formatting.month_name("2026-03", "nl") == "maart 2026"
    assert formatting.unit_price(Decimal("0.095"), "nl") == "0,0950"
    assert formatting.rate(Decimal("0.21"), "nl") == "21%"
    assert formatting.rate(Decimal("0.09"), "nl") == "9%"
    assert formatting.meter(Decimal("4977.1"), "nl") == "4.977,100"
    with pytest.raises(ValueError, match="use nl or en"):
        formatting.amount(Decimal(1), "de")


def test_hand_computed_statement_pdf(issued: tuple[Engine, str, str], tmp_path: Path) -> None:
    # M1, March 2026: contract C1 ends on 15 March. Counter d1 rises 100 Wh/h from 1,000,000 Wh
    # at 26 Feb 00:00 UTC; 1 March 00:00 local = 28 Feb 23:00 UTC is 71 h later: 1.007,100 kWh;
    # 16 March 00:00 local is 360 h later still: 1.043,100 kWh, 36,000 kWh in the period.
    # Fee 12,50 × 15/31 = 6,05 (unit price 0,4032/day); energy 36,000 × 0,0950 = 3,42;
    # VAT 1,27 + 0,72 = 1,99; total 9,47 excl., 11,46 incl.
    engine, march, _ = issued
    with Session(engine) as session:
        statement = load_statement(session, march, "M1")
    text = pdf_text(render_pdf(statement), tmp_path)
    for expected in (
        "Testcoöperatie",
        "Dieze 1",
        "Afrekening maart 2026",
        "Lidnummer M1",
        "Lid 1",
        "1 maart 2026 t/m 31 maart 2026",
        "C1 d1 01-03-2026 00:00 1.007,100 16-03-2026 00:00 1.043,100 36,000",
        "C1 36,0 0,0 100,0%",
        "Vaste vergoeding 01-03-2026 t/m 15-03-2026 15 dagen 0,4032 21% 6,05",
        "Opgewekte energie 01-03-2026 t/m 15-03-2026 36,000 kWh 0,0950 21% 3,42",
        "Totaal excl. btw € 9,47",
        "btw 21% over € 9,47 € 1,99",
        "Totaal incl. btw € 11,46",
        "SEPA-incasso",
    ):
        assert expected in text, expected
    html = render_html(statement)
    assert "€ 11,46" in html and "1.043,100" in html


def test_replaced_inverter_shows_both_counters(
    issued: tuple[Engine, str, str], tmp_path: Path
) -> None:
    # d2a ran from 4.970,000 kWh at 26 Feb 00:00 UTC: 4.977,100 at 1 March local; the registry
    # has its last value 5.000,000 and d2b's first 0,010 at 10 March 12:00 UTC (13:00 local);
    # d2b reaches 0,060 + 100 Wh/h... = 51,410 at 1 April local. 22,900 + 51,400 = 74,300 kWh.
    engine, march, _ = issued
    with Session(engine) as session:
        text = pdf_text(render_pdf(load_statement(session, march, "M3")), tmp_path)
    assert "C3 d2a 01-03-2026 00:00 4.977,100 10-03-2026 13:00 5.000,000 22,900" in text
    assert "C3 d2b 10-03-2026 13:00 0,010 01-04-2026 00:00 51,410 51,400" in text
    assert "74,300 kWh 0,0950 21% 7,06" in text


def test_correction_line_names_the_period_it_corrects(
    issued: tuple[Engine, str, str], tmp_path: Path
) -> None:
    # d4's last week of March arrived in April: March is re-measured and the difference billed.
    engine, _, april = issued
    with Session(engine) as session:
        statement = load_statement(session, april, "M5")
    text = pdf_text(render_pdf(statement), tmp_path)
    assert "Correcties op eerdere perioden" in text
    assert "Correctie maart 2026 (01-03-2026 t/m 31-03-2026)" in text
    (correction,) = statement.correction_lines
    assert correction.corrects == "2026-03"
    assert f"{formatting.meter(correction.quantity, 'nl')} kWh 0,0950 21% " in text
    assert formatting.amount(correction.amount_eur, "nl") in text
    assert "geschat" in text  # d4 has no reading at the end of April: estimated
    # M5 has no direct debit mandate: asked to transfer, not told it will be collected
    assert "overmaken naar NL22RABO0444444444 onder vermelding van 2026-04.1/M5" in text
    assert "SEPA-incasso" not in text


def test_guarantee_and_credit(issued: tuple[Engine, str, str], tmp_path: Path) -> None:
    # C4's contract year 1 April 2025 - 31 March 2026 guarantees 1.000 kWh; the ledger holds
    # every month of it (April 2025 - February 2026 issued before March). d3 rises 100 Wh/h
    # over the year's 365 × 24 = 8.760 hours (summer time at both ends): 876,000 kWh, of which
    # March's 743 hours are 74,300. Shortfall 1.000 - 876 = 124,000 kWh × 0,2000 = -24,80;
    # VAT 21 % × -24,80 = -5,208 → -5,21; total -30,01 (C4's plan has no fee and no price).
    engine, march, _ = issued
    with Session(engine) as session:
        statement = load_statement(session, march, "M4")
    text = pdf_text(render_pdf(statement), tmp_path)
    (credit,) = statement.lines
    assert (credit.kind, credit.quantity, credit.amount_eur, credit.vat_eur) == (
        "guarantee_compensation",
        Decimal("-124.000"),
        Decimal("-24.80"),
        Decimal("-5.21"),
    )
    assert (  # the description's dates wrap below the amounts
        "Vergoeding opbrengstgarantie contractjaar -124,000 kWh 0,2000 21% -24,80 "
        "01-04-2025 t/m 31-03-2026"
    ) in text
    assert "Totaal excl. btw -€ 24,80" in text
    assert "btw 21% over -€ 24,80 -€ 5,21" in text
    assert "Totaal incl. btw -€ 30,01" in text
    assert "C4 01-04-2025 – 31-03-2026 1.000,0 876,0 124,0 afgerekend" in text
    assert "maken wij over naar uw rekening" in text


def test_incomplete_contract_year_gets_no_credit(tmp_path: Path) -> None:
    # A ledger that begins in March 2026 knows only March of C4's contract year 1 April 2025 -
    # 31 March 2026 (74,300 kWh of 1.000 guaranteed): the year ends, but crediting 925,700 kWh
    # "short" would pay for eleven months nobody measured. No line; nothing to pay or collect.
    with temporary_database("sqlite") as engine:
        with Session(engine) as session:
            march, _ = issue_march_and_april(session, history=False)
            statement = load_statement(session, march, "M4")
            stored = session.scalars(
                select(SettlementStatementRow).where(
                    SettlementStatementRow.run_id == march,
                    SettlementStatementRow.contract_id == "C4",
                )
            ).one()
        text = pdf_text(render_pdf(statement), tmp_path)
    (year,) = json.loads(stored.guarantees_json)
    assert (year["year_start"], year["year_end"]) == ("2025-04-01", "2026-04-01")
    assert (year["yield_kwh"], year["shortfall_kwh"]) == ("74.300", "925.700")
    assert year["final"] is True and year["complete"] is False
    assert statement.lines == () and statement.total_incl_vat_eur == 0
    assert "Vergoeding opbrengstgarantie" not in text
    assert "-925,700 kWh" not in text and "185,14" not in text
    assert "C4 01-04-2025 – 31-03-2026 1.000,0 74,3 925,7" in text  # the position is shown
    assert "maken wij over naar uw rekening" not in text
    assert "niet volledig gemeten" in text and "afgerekend" not in text.split("925,7", 1)[1][:40]


def test_english_statement(issued: tuple[Engine, str, str], tmp_path: Path) -> None:
    engine, march, _ = issued
    with Session(engine) as session:
        statement = load_statement(session, march, "M2")  # M2's language is English
    text = pdf_text(render_pdf(statement), tmp_path)
    assert statement.language == "en"
    assert "Statement March 2026" in text
    assert "1 March 2026 to 31 March 2026" in text
    assert f"Total incl. VAT €{formatting.amount(statement.total_incl_vat_eur, 'en')}" in text


def test_render_run_writes_html_and_pdf_per_member(
    issued: tuple[Engine, str, str], tmp_path: Path
) -> None:
    engine, march, _ = issued
    seen: list[tuple[int, int]] = []
    with Session(engine) as session:
        done = render_run(session, march, tmp_path, progress=lambda d, t: seen.append((d, t)))
        with pytest.raises(StatementDataError, match=r"no settlement run '2099-01\.1'"):
            load_statement(session, "2099-01.1", "M1")
    assert [r.member_id for r in done] == ["M1", "M2", "M3", "M4", "M5"]
    assert seen[-1] == (5, 5)
    for r in done:
        assert r.pdf_path.read_bytes().startswith(b"%PDF")
        assert r.member_id in r.html_path.read_text(encoding="utf-8")
