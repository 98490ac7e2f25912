"""The pure functions that turn a period's yield into money lines, by a tariff plan.

Tariff plans are registry data (:mod:`collector.registry.tariff_plans`). A plan has versions (each valid from a date until the next one starts). A version combines,
all optional: a monthly fee (prorated by the contract's days in the month), a price per kWh
produced, a yield guarantee (guaranteed kWh per contract year, compensation per kWh of
shortfall, settled at the contract year's end) and a yearly indexation of all prices. Every
version names its VAT rate.

Sign convention: a positive amount is owed by the member to the cooperative, a negative
amount (guarantee compensation) is owed to the member.

Rounding rules (decimal, never float):

- indexed unit prices are rounded half up to :data:`PRICE_QUANTUM` (0.0001 EUR);
- energy quantities are rounded half up to :data:`KWH_QUANTUM` (0.001 kWh = 1 Wh);
- each line's amount is rounded half up to cents once (``quantity × unit price``), and its
  VAT is ``amount × VAT rate`` rounded half up to cents, per line.
  Half up means ties move away from zero (Decimal ``ROUND_HALF_UP``), for credits too.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from collector.registry.tariff_plans import ZERO, Guarantee, TariffError, TariffPlan, TariffVersion

CENT = Decimal("0.01")
PRICE_QUANTUM = Decimal("0.0001")
KWH_QUANTUM = Decimal("0.001")


def round_cents(amount_eur: Decimal) -> Decimal:
    """Round an amount half up (away from zero on ties) to whole cents.

    Parameters
    ----------
    amount_eur : Decimal
        Amount to round [EUR].
    """
    return amount_eur.quantize(CENT, rounding=ROUND_HALF_UP)


def round_kwh(energy_kwh: Decimal) -> Decimal:
    """Round an energy quantity half up to whole Wh.

    Parameters
    ----------
    energy_kwh : Decimal
        Energy [kWh].
    """
    return energy_kwh.quantize(KWH_QUANTUM, rounding=ROUND_HALF_UP)


def round_price(price_eur: Decimal) -> Decimal:
    """Round a unit price half up to :data:`PRICE_QUANTUM`.

    Parameters
    ----------
    price_eur : Decimal
        Unit price [EUR per unit].
    """
    return price_eur.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------- prices in force


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def index_years(version: TariffVersion, day: date) -> int:
    """How many anniversaries of the version's ``valid_from`` have passed on ``day``."""
    years = day.year - version.valid_from.year
    if _add_years(version.valid_from, years) > day:
        years -= 1
    return max(years, 0)


@dataclass(frozen=True)
class PricesInForce:
    """The (indexed) unit prices of one version on one day, excl. VAT."""

    label: str
    version: TariffVersion
    index_years: int
    monthly_fee_eur: Decimal
    price_eur_per_kwh: Decimal
    compensation_eur_per_kwh: Decimal | None
    vat_rate: Decimal


def prices_on(plan: TariffPlan, day: date) -> PricesInForce:
    """The unit prices in force on ``day``: the version's prices × (1 + indexation)^years.

    Indexed prices are rounded half up to :data:`PRICE_QUANTUM`; with no indexation the
    version's prices are used as written.
    """
    version = plan.version_at(day)
    years = index_years(version, day)
    factor = (Decimal(1) + version.indexation_per_year) ** years

    def indexed(price: Decimal) -> Decimal:
        return price if years == 0 or factor == 1 else round_price(price * factor)

    guarantee = version.guarantee
    return PricesInForce(
        label=plan.version_label(version),
        version=version,
        index_years=years,
        monthly_fee_eur=indexed(version.monthly_fee_eur),
        price_eur_per_kwh=indexed(version.price_eur_per_kwh),
        compensation_eur_per_kwh=(
            None if guarantee is None else indexed(guarantee.compensation_eur_per_kwh)
        ),
        vat_rate=version.vat_rate,
    )


@dataclass(frozen=True)
class PriceSpan:
    """Consecutive days ``[start, end)`` over which the prices in force do not change."""

    start: date
    end: date
    prices: PricesInForce

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def price_spans(plan: TariffPlan, start: date, end: date) -> list[PriceSpan]:
    """Split the days ``[start, end)`` where a version starts or an indexation anniversary falls.

    Usually one span per month; two when a new version or an index step begins mid-month.
    """
    if end <= start:
        return []
    spans: list[PriceSpan] = []
    span_start = start
    current = prices_on(plan, start)
    day = start + timedelta(days=1)
    while day < end:
        prices = prices_on(plan, day)
        if prices != current:
            spans.append(PriceSpan(span_start, day, current))
            span_start, current = day, prices
        day += timedelta(days=1)
    spans.append(PriceSpan(span_start, end, current))
    return spans


# --------------------------------------------------------------------------- statement lines


class LineKind(enum.StrEnum):
    """What a statement line charges or credits."""

    MONTHLY_FEE = "monthly_fee"
    ENERGY = "energy"
    GUARANTEE_COMPENSATION = "guarantee_compensation"
    ENERGY_CORRECTION = "energy_correction"


@dataclass(frozen=True)
class StatementLine:
    """One line of a statement: ``amount = round(quantity × unit price)``, VAT per line.

    Parameters
    ----------
    quantity : Decimal
        Number of units (days, kWh) [unit].
    unit_price_eur : Decimal
        Price per unit, excl. VAT [EUR/unit].
    amount_eur : Decimal
        Amount excl. VAT, rounded to cents [EUR].
    vat_rate : Decimal
        VAT rate as a fraction [1].
    vat_eur : Decimal
        VAT of this line, rounded to cents [EUR].
    """

    kind: LineKind
    description: str
    quantity: Decimal
    unit: str
    unit_price_eur: Decimal
    amount_eur: Decimal
    vat_rate: Decimal
    vat_eur: Decimal
    tariff: str
    period_start: date
    period_end: date

    @property
    def total_incl_vat_eur(self) -> Decimal:
        return self.amount_eur + self.vat_eur

    def to_json(self) -> dict[str, str]:
        """Every field as text (decimals exactly as computed), for JSON output and the ledger."""
        return {
            "kind": self.kind.value,
            "description": self.description,
            "quantity": str(self.quantity),
            "unit": self.unit,
            "unit_price_eur": str(self.unit_price_eur),
            "amount_eur": str(self.amount_eur),
            "vat_rate": str(self.vat_rate),
            "vat_eur": str(self.vat_eur),
            "tariff": self.tariff,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> StatementLine:
        return cls(
            kind=LineKind(data["kind"]),
            description=data["description"],
            quantity=Decimal(data["quantity"]),
            unit=data["unit"],
            unit_price_eur=Decimal(data["unit_price_eur"]),
            amount_eur=Decimal(data["amount_eur"]),
            vat_rate=Decimal(data["vat_rate"]),
            vat_eur=Decimal(data["vat_eur"]),
            tariff=data["tariff"],
            period_start=date.fromisoformat(data["period_start"]),
            period_end=date.fromisoformat(data["period_end"]),
        )


def make_line(
    *,
    kind: LineKind,
    description: str,
    quantity: Decimal,
    unit: str,
    unit_price_eur: Decimal,
    vat_rate: Decimal,
    tariff: str,
    period_start: date,
    period_end: date,
    amount_eur: Decimal | None = None,
) -> StatementLine:
    """Build a line; the amount is ``quantity × unit price`` rounded to cents unless given.

    Parameters
    ----------
    quantity : Decimal
        Number of units [unit].
    unit_price_eur : Decimal
        Price per unit excl. VAT [EUR/unit].
    vat_rate : Decimal
        VAT rate as a fraction [1].
    amount_eur : Decimal, optional
        Amount excl. VAT when it is not simply quantity × unit price [EUR]; rounded to cents.
    """
    amount = round_cents(quantity * unit_price_eur if amount_eur is None else amount_eur)
    return StatementLine(
        kind=kind,
        description=description,
        quantity=quantity,
        unit=unit,
        unit_price_eur=unit_price_eur,
        amount_eur=amount,
        vat_rate=vat_rate,
        vat_eur=round_cents(amount * vat_rate),
        tariff=tariff,
        period_start=period_start,
        period_end=period_end,
    )


def monthly_fee_line(span: PriceSpan, days_in_month: int) -> StatementLine | None:
    """The prorated monthly fee for a span of contract days inside one calendar month.

    ``amount = round(fee × contract days / days in month)``; the line shows the days as its
    quantity and ``fee / days in month`` (rounded to 0.0001 EUR, for reading only) as its unit
    price. No line when the fee is zero.

    Parameters
    ----------
    span : PriceSpan
        The contract days with one set of prices [days].
    days_in_month : int
        Days of the calendar month the span lies in [days].
    """
    fee = span.prices.monthly_fee_eur
    if fee == 0 or span.days <= 0:
        return None
    return make_line(
        kind=LineKind.MONTHLY_FEE,
        description=f"monthly fee {fee} EUR × {span.days}/{days_in_month} days",
        quantity=Decimal(span.days),
        unit="day",
        unit_price_eur=round_price(fee / Decimal(days_in_month)),
        amount_eur=fee * Decimal(span.days) / Decimal(days_in_month),
        vat_rate=span.prices.vat_rate,
        tariff=span.prices.label,
        period_start=span.start,
        period_end=span.end,
    )


def energy_line(span: PriceSpan, energy_kwh: Decimal) -> StatementLine | None:
    """The charge for the energy produced over one price span.

    Parameters
    ----------
    span : PriceSpan
        The days the energy was produced in, with their prices [days].
    energy_kwh : Decimal
        Energy produced (measured + estimated) over the span [kWh]; rounded to 1 Wh.
    """
    price = span.prices.price_eur_per_kwh
    if price == 0:
        return None
    quantity = round_kwh(energy_kwh)
    return make_line(
        kind=LineKind.ENERGY,
        description=f"energy produced {span.start.isoformat()} to {span.end.isoformat()}",
        quantity=quantity,
        unit="kWh",
        unit_price_eur=price,
        vat_rate=span.prices.vat_rate,
        tariff=span.prices.label,
        period_start=span.start,
        period_end=span.end,
    )


def energy_correction_line(
    *,
    delta_kwh: Decimal,
    unit_price_eur: Decimal,
    vat_rate: Decimal,
    tariff: str,
    start: date,
    end: date,
    period_label: str,
) -> StatementLine | None:
    """A correction of an issued period's energy after late readings changed its yield.

    The corrected days keep the unit price and VAT rate they were billed at.

    Parameters
    ----------
    delta_kwh : Decimal
        New yield minus the yield billed so far [kWh]; rounded to 1 Wh.
    unit_price_eur : Decimal
        The price the days were billed at [EUR/kWh].
    vat_rate : Decimal
        Their VAT rate [1].
    """
    quantity = round_kwh(delta_kwh)
    if quantity == 0 or unit_price_eur == 0:
        return None
    return make_line(
        kind=LineKind.ENERGY_CORRECTION,
        description=(
            f"correction of {period_label} ({start.isoformat()} to {end.isoformat()}): "
            "late readings changed its yield"
        ),
        quantity=quantity,
        unit="kWh",
        unit_price_eur=unit_price_eur,
        vat_rate=vat_rate,
        tariff=tariff,
        period_start=start,
        period_end=end,
    )


@dataclass(frozen=True)
class GuaranteeOutcome:
    """Where a contract year stands against its guarantee.

    Parameters
    ----------
    guaranteed_kwh : Decimal
        Guaranteed energy for the (possibly shortened) contract year [kWh].
    yield_kwh : Decimal
        Energy produced so far in the contract year [kWh].
    shortfall_kwh : Decimal
        ``max(0, guaranteed - yield)``, rounded to 1 Wh [kWh].
    covered_days : int
        Contract days in the contract year [days].
    known_days : int, optional
        Of those, days whose yield is known (settled in the ledger or in this run) [days];
        when fewer than ``covered_days`` at the year's end, the year is not settled
        automatically (its early months predate the ledger).
    """

    year_start: date
    year_end: date
    guaranteed_kwh: Decimal
    yield_kwh: Decimal
    shortfall_kwh: Decimal
    final: bool
    covered_days: int | None = None
    known_days: int | None = None

    @property
    def complete(self) -> bool:
        """Whether the yield of every contract day of the year is known."""
        return (
            self.known_days is None
            or self.covered_days is None
            or self.known_days >= self.covered_days
        )

    def to_json(self) -> dict[str, str | bool | int | None]:
        return {
            "year_start": self.year_start.isoformat(),
            "year_end": self.year_end.isoformat(),
            "guaranteed_kwh": str(self.guaranteed_kwh),
            "yield_kwh": str(self.yield_kwh),
            "shortfall_kwh": str(self.shortfall_kwh),
            "final": self.final,
            "covered_days": self.covered_days,
            "known_days": self.known_days,
            "complete": self.complete,
        }


def guarantee_outcome(
    guarantee: Guarantee,
    *,
    kwp: Decimal,
    year_start: date,
    year_end: date,
    covered_days: int,
    yield_kwh: Decimal,
    final: bool,
    known_days: int | None = None,
) -> GuaranteeOutcome:
    """Compare a contract year's yield with its guarantee.

    A contract year the contract does not fully cover (it ends early) is guaranteed in
    proportion ``covered_days / days of the contract year``.

    Parameters
    ----------
    kwp : Decimal
        The site's peak power [kWp].
    covered_days : int
        Contract days in the contract year [days].
    yield_kwh : Decimal
        Energy produced in the contract year (so far) [kWh].
    final : bool
        True at the contract year's (or contract's) end, when the shortfall is settled.
    """
    year_days = (year_end - year_start).days
    guaranteed = round_kwh(
        guarantee.guaranteed_kwh(kwp) * Decimal(covered_days) / Decimal(year_days)
    )
    produced = round_kwh(yield_kwh)
    shortfall = max(ZERO, guaranteed - produced)
    return GuaranteeOutcome(
        year_start, year_end, guaranteed, produced, shortfall, final, covered_days, known_days
    )


def guarantee_line(outcome: GuaranteeOutcome, prices: PricesInForce) -> StatementLine | None:
    """The compensation (a credit, negative amount) for a settled contract year's shortfall.

    ``prices`` are those in force on the contract year's last day. No line for a year whose
    yield is not known for every day (:attr:`GuaranteeOutcome.complete`).
    """
    if not outcome.final or outcome.shortfall_kwh == 0 or not outcome.complete:
        return None
    if prices.compensation_eur_per_kwh is None:
        raise TariffError(f"{prices.label} has no guarantee to settle")
    return make_line(
        kind=LineKind.GUARANTEE_COMPENSATION,
        description=(
            f"yield guarantee {outcome.year_start.isoformat()} to {outcome.year_end.isoformat()}: "
            f"{outcome.guaranteed_kwh} kWh guaranteed, {outcome.yield_kwh} kWh produced"
        ),
        quantity=-outcome.shortfall_kwh,
        unit="kWh",
        unit_price_eur=prices.compensation_eur_per_kwh,
        vat_rate=prices.vat_rate,
        tariff=prices.label,
        period_start=outcome.year_start,
        period_end=outcome.year_end,
    )


def line_totals(lines: Sequence[StatementLine]) -> tuple[Decimal, Decimal]:
    """Total excl. VAT and total VAT of some lines [EUR]: sums of the rounded line amounts."""
    return (
        sum((line.amount_eur for line in lines), ZERO),
        sum((line.vat_eur for line in lines), ZERO),
    )


def iter_days(start: date, end: date) -> Iterator[date]:
    """Every day of ``[start, end)``."""
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)
