"""Statements as HTML and PDF, both from ``templates/statement.html.j2``.

The HTML is the PDF's source (WeasyPrint lays it out with the system's Pango), so the two
never disagree. Texts are Dutch by default, English on request; line descriptions are built
here from the line's kind and days (the ledger's own descriptions are English, for operators).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from collector.settlement.periods import AMSTERDAM
from collector.statements import formatting
from collector.statements.data import Line, StatementData, load_statement, members_of_run, run
from collector.timeseries.influx import InfluxClient

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Afrekening",
        "member_number": "Lidnummer",
        "period": "Periode",
        "to": "t/m",
        "statement_date": "Datum",
        "reference": "Kenmerk",
        "meters": "Meterstanden (omvormer)",
        "contract": "Contract",
        "device": "Omvormer",
        "from": "Begin",
        "until": "Eind",
        "reading": "Stand",
        "difference": "Verschil",
        "no_meter": "geen meterstanden in deze periode",
        "no_reading": "geschat",
        "production": "Opgewekte energie",
        "measured": "Gemeten",
        "estimated": "Geschat",
        "completeness": "Volledigheid",
        "total": "Totaal",
        "estimate_note": "Waar metingen ontbraken is de opbrengst geschat uit die van de "
        "andere installaties in de wijk; komen de metingen later alsnog binnen, dan "
        "verrekenen we het verschil op een volgende afrekening.",
        "self_consumption": "Eigen verbruik van uw zonnestroom",
        "sc_produced": "Opgewekt",
        "sc_self_consumed": "Zelf verbruikt",
        "sc_exported": "Teruggeleverd",
        "sc_imported": "Van het net",
        "sc_rate": "Eigen verbruik",
        "sc_sufficiency": "Zelfvoorziening",
        "sc_note": "Ter informatie, niet in rekening gebracht: uit de slimme meter van uw "
        "woning, over {measured} van de {days} dagen van deze periode. Sinds 1 januari 2027 "
        "wordt teruggeleverde stroom niet meer verrekend met wat u afneemt: zonnestroom die u "
        "zelf gebruikt is het meest waard.",
        "lines": "Specificatie",
        "description": "Omschrijving",
        "quantity": "Aantal",
        "unit": "Eenheid",
        "unit_price": "Prijs",
        "vat": "btw",
        "amount": "Bedrag",
        "corrections": "Correcties op eerdere perioden",
        "total_excl": "Totaal excl. btw",
        "over": "over",
        "total_incl": "Totaal incl. btw",
        "we_collect": "Dit bedrag schrijven wij automatisch af van uw rekening (SEPA-incasso).",
        "we_pay": "Dit bedrag maken wij over naar uw rekening.",
        "please_pay": "Wilt u dit bedrag binnen 14 dagen overmaken naar {iban} onder "
        "vermelding van {ref}?",
        "nothing_due": "Er hoeft niets betaald te worden.",
        "guarantee": "Opbrengstgarantie (contractjaar tot nu toe)",
        "contract_year": "Contractjaar",
        "guaranteed": "Gegarandeerd",
        "produced_so_far": "Opgewekt",
        "shortfall": "Tekort",
        "status": "Stand",
        "settled": "afgerekend",
        "not_settled": "niet volledig gemeten; de coöperatie rekent dit jaar apart af",
        "year_to_date": "tot nu toe",
        "footer": "Afrekening",
        "day": "dag",
        "days": "dagen",
        "fee": "Vaste vergoeding {start} t/m {end}",
        "energy": "Opgewekte energie {start} t/m {end}",
        "energy_correction": "Correctie {month} ({start} t/m {end}): nagekomen meetgegevens",
        "guarantee_compensation": "Vergoeding opbrengstgarantie contractjaar {start} t/m {end}",
    },
    "en": {
        "title": "Statement",
        "member_number": "Member number",
        "period": "Period",
        "to": "to",
        "statement_date": "Date",
        "reference": "Reference",
        "meters": "Meter readings (inverter)",
        "contract": "Contract",
        "device": "Inverter",
        "from": "Start",
        "until": "End",
        "reading": "Reading",
        "difference": "Difference",
        "no_meter": "no meter readings in this period",
        "no_reading": "estimated",
        "production": "Energy produced",
        "measured": "Measured",
        "estimated": "Estimated",
        "completeness": "Completeness",
        "total": "Total",
        "estimate_note": "Where readings were missing, the yield was estimated from the other "
        "installations in the neighbourhood; readings that arrive later are settled on a "
        "following statement.",
        "self_consumption": "Your own use of your solar power",
        "sc_produced": "Produced",
        "sc_self_consumed": "Used at home",
        "sc_exported": "Exported",
        "sc_imported": "From the grid",
        "sc_rate": "Self-consumption",
        "sc_sufficiency": "Self-sufficiency",
        "sc_note": "For information, not billed: from your home's smart meter, over {measured} "
        "of the {days} days of this period. Since 1 January 2027 exported power is no longer "
        "netted against what you import: solar power used at home is worth the most.",
        "lines": "Details",
        "description": "Description",
        "quantity": "Quantity",
        "unit": "Unit",
        "unit_price": "Price",
        "vat": "VAT",
        "amount": "Amount",
        "corrections": "Corrections of earlier periods",
        "total_excl": "Total excl. VAT",
        "over": "on",
        "total_incl": "Total incl. VAT",
        "we_collect": "We will collect this amount from your account (SEPA direct debit).",
        "we_pay": "We will transfer this amount to your account.",
        "please_pay": "Please transfer this amount within 14 days to {iban}, quoting {ref}.",
        "nothing_due": "Nothing is due.",
        "guarantee": "Yield guarantee (contract year to date)",
        "contract_year": "Contract year",
        "guaranteed": "Guaranteed",
        "produced_so_far": "Produced",
        "shortfall": "Shortfall",
        "status": "Status",
        "settled": "settled",
        "not_settled": "not fully measured; the cooperative settles this year separately",
        "year_to_date": "to date",
        "footer": "Statement",
        "day": "day",
        "days": "days",
        "fee": "Fixed fee {start} to {end}",
        "energy": "Energy produced {start} to {end}",
        "energy_correction": "Correction {month} ({start} to {end}): late readings",
        "guarantee_compensation": "Yield guarantee compensation, contract year {start} to {end}",
    },
}


@dataclass(frozen=True)
class Formatter:
    """The formatting functions the template uses, bound to one language."""

    language: str

    @property
    def t(self) -> dict[str, str]:
        return TEXTS[self.language]

    def amount(self, value: Decimal) -> str:
        return formatting.amount(value, self.language)

    def euro(self, value: Decimal) -> str:
        return formatting.euro(value, self.language)

    def unit_price(self, value: Decimal) -> str:
        return formatting.unit_price(value, self.language)

    def kwh(self, value: Decimal) -> str:
        return formatting.kwh(value, self.language)

    def meter(self, value: Decimal) -> str:
        return formatting.meter(value, self.language)

    def percent(self, value: Decimal) -> str:
        return formatting.percent(value, self.language)

    def rate(self, value: Decimal) -> str:
        return formatting.rate(value, self.language)

    def long_date(self, day: date) -> str:
        return formatting.long_date(day, self.language)

    def short_date(self, day: date) -> str:
        return formatting.short_date(day, self.language)

    def day_before(self, day: date) -> date:
        return day - timedelta(days=1)

    def local_time(self, instant: datetime) -> str:
        local = instant.astimezone(AMSTERDAM)
        return f"{formatting.short_date(local.date(), self.language)} {local:%H:%M}"

    def quantity(self, line: Line) -> str:
        if line.unit == "kWh":
            return formatting.meter(line.quantity, self.language)
        return formatting.quantity(line.quantity, self.language)

    def unit(self, unit: str) -> str:
        return self.t["days"] if unit == "day" else unit

    def describe(self, line: Line) -> str:
        """The line's description in the statement's language."""
        key = "fee" if line.kind == "monthly_fee" else line.kind
        template = self.t.get(key)
        if template is None:
            return line.description
        return template.format(
            start=self.short_date(line.period_start),
            end=self.short_date(line.period_end - timedelta(days=1)),
            month=formatting.month_name(line.corrects or "", self.language)
            if line.corrects
            else "",
        )


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_ENV = _environment()
_CSS = (TEMPLATES / "statement.css").read_text(encoding="utf-8")


def render_html(statement: StatementData) -> str:
    """The statement as a complete HTML document (styles inline)."""
    fmt = Formatter(statement.language)
    context: dict[str, Any] = {
        "s": statement,
        "t": fmt.t,
        "fmt": fmt,
        "lang": statement.language,
        "css": _CSS,
        "month": formatting.month_name(statement.period, statement.language),
        "last_day": statement.period_end - timedelta(days=1),
        "issued_day": statement.issued_at.astimezone(AMSTERDAM).date(),
    }
    return _ENV.get_template("statement.html.j2").render(context)


def render_pdf(statement: StatementData) -> bytes:
    """The statement as PDF, laid out from :func:`render_html`."""
    from weasyprint import HTML  # imported here: it loads Pango, which takes a moment

    pdf = HTML(string=render_html(statement), base_url=str(TEMPLATES)).write_pdf()
    assert pdf is not None
    return bytes(pdf)


def statement_filename(statement: StatementData, suffix: str) -> str:
    """``2026-10_M0001.pdf``."""
    return f"{statement.period}_{statement.member_id}.{suffix}"


@dataclass(frozen=True)
class RenderedStatement:
    member_id: str
    email: str | None
    language: str
    total_incl_vat_eur: Decimal
    lines: int
    guarantees: int
    html_path: Path
    pdf_path: Path


def render_run(
    session: Session,
    run_id: str,
    out_dir: Path,
    *,
    language: str | None = None,
    members: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    influx: InfluxClient | None = None,
) -> list[RenderedStatement]:
    """Write ``<period>_<member>.html`` and ``.pdf`` for every member in a run.

    Parameters
    ----------
    language
        Override every member's language (``nl``/``en``); default: each member's own.
    members
        Only these members (default: all with a statement in the run).
    influx
        Where the homes' meter days are, for the self-consumption box (None: no box).
    """
    run(session, run_id)  # refuses an unknown run with the known ones
    if influx is not None and not influx.ping():
        log.warning(
            "InfluxDB at %s does not answer: statements without self-consumption", influx.url
        )
        influx = None
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = members if members is not None else members_of_run(session, run_id)
    done: list[RenderedStatement] = []
    for i, statement in enumerate(_statements(session, run_id, wanted, language, influx), start=1):
        html_path = out_dir / statement_filename(statement, "html")
        pdf_path = out_dir / statement_filename(statement, "pdf")
        html_path.write_text(render_html(statement), encoding="utf-8")
        pdf_path.write_bytes(render_pdf(statement))
        done.append(
            RenderedStatement(
                member_id=statement.member_id,
                email=statement.member.email,
                language=statement.language,
                total_incl_vat_eur=statement.total_incl_vat_eur,
                lines=len(statement.lines),
                guarantees=len(statement.guarantees),
                html_path=html_path,
                pdf_path=pdf_path,
            )
        )
        if progress is not None:
            progress(i, len(wanted))
    return done


def _statements(
    session: Session,
    run_id: str,
    members: list[str],
    language: str | None,
    influx: InfluxClient | None,
) -> Iterator[StatementData]:
    for member_id in members:
        yield load_statement(session, run_id, member_id, language=language, influx=influx)
