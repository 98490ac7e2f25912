"""Tariff plans: validation, prices in force, rounding and VAT per line, by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from collector.registry.tariff_plans import (
    Guarantee,
    TariffError,
    load_tariff_plans,
    parse_tariff_plans,
)
from collector.settlement.tariffs import (
    PriceSpan,
    energy_line,
    guarantee_line,
    guarantee_outcome,
    monthly_fee_line,
    price_spans,
    prices_on,
    round_cents,
)

D = Decimal
REPO = Path(__file__).resolve().parents[3]


def plan_data(**version: object) -> dict[str, object]:
    base: dict[str, object] = {"valid_from": "2025-01-01", "vat_rate": "0.21"}
    base.update(version)
    return {"plans": [{"plan_id": "p", "versions": [base]}]}


def test_round_half_up_to_cents_also_for_credits() -> None:
    assert round_cents(D("0.005")) == D("0.01")
    assert round_cents(D("2.625")) == D("2.63")
    assert round_cents(D("-5.2794")) == D("-5.28")
    assert round_cents(D("-0.005")) == D("-0.01")
    assert round_cents(D("1.2749999")) == D("1.27")


def test_energy_line_rounds_quantity_to_wh_then_amount_and_vat_per_line() -> None:
    plan = parse_tariff_plans(plan_data(price_eur_per_kwh="0.0950"))["p"]
    (span,) = price_spans(plan, date(2026, 3, 1), date(2026, 4, 1))
    line = energy_line(span, D("38.2995"))
    assert line is not None
    assert line.quantity == D("38.300")  # 38.2995 → 38.300 (half up, 1 Wh)
    assert line.amount_eur == D("3.64")  # 38.300 × 0.0950 = 3.6385
    assert line.vat_eur == D("0.76")  # 3.64 × 0.21 = 0.7644
    assert line.total_incl_vat_eur == D("4.40")


def test_monthly_fee_is_prorated_by_contract_days_of_that_month() -> None:
    plan = parse_tariff_plans(plan_data(monthly_fee_eur="12.50"))["p"]
    (february,) = price_spans(plan, date(2028, 2, 10), date(2028, 3, 1))  # leap year: 29 days
    line = monthly_fee_line(february, 29)
    assert line is not None
    assert (line.quantity, line.amount_eur, line.vat_eur) == (D(20), D("8.62"), D("1.81"))
    # 12.50 × 20 / 29 = 8.6206…; VAT 8.62 × 0.21 = 1.8102


def test_indexation_on_each_anniversary_compounds_and_rounds_the_unit_price() -> None:
    plan = parse_tariff_plans(
        plan_data(valid_from="2024-07-01", price_eur_per_kwh="0.0850", indexation_per_year="0.025")
    )["p"]
    assert prices_on(plan, date(2025, 6, 30)).price_eur_per_kwh == D("0.0850")
    assert prices_on(plan, date(2025, 7, 1)).price_eur_per_kwh == D("0.0871")  # 0.087125
    assert prices_on(plan, date(2026, 7, 1)).price_eur_per_kwh == D("0.0893")  # 0.08930…
    spans = price_spans(plan, date(2025, 6, 15), date(2025, 7, 15))
    assert [(s.start, s.end, s.prices.index_years) for s in spans] == [
        (date(2025, 6, 15), date(2025, 7, 1), 0),
        (date(2025, 7, 1), date(2025, 7, 15), 1),
    ]


def test_a_new_version_mid_month_splits_the_month() -> None:
    data = {
        "plans": [
            {
                "plan_id": "p",
                "versions": [
                    {"valid_from": "2025-01-01", "monthly_fee_eur": "10", "vat_rate": "0.21"},
                    {"valid_from": "2026-03-16", "monthly_fee_eur": "12", "vat_rate": "0.09"},
                ],
            }
        ]
    }
    plan = parse_tariff_plans(data)["p"]
    spans = price_spans(plan, date(2026, 3, 1), date(2026, 4, 1))
    lines = [monthly_fee_line(s, 31) for s in spans]
    assert [(x.amount_eur, x.vat_eur, x.tariff) for x in lines if x] == [
        (D("4.84"), D("1.02"), "p@2025-01-01"),  # 10 × 15/31 = 4.8387; VAT 1.0164
        (D("6.19"), D("0.56"), "p@2026-03-16"),  # 12 × 16/31 = 6.1935; VAT 9 % = 0.5571
    ]


def test_guarantee_per_kwp_shortfall_and_a_shortened_contract_year() -> None:
    guarantee = Guarantee(kwh_per_kwp_per_year=D("850"), compensation_eur_per_kwh=D("0.15"))
    outcome = guarantee_outcome(
        guarantee, kwp=D("3.6"), year_start=date(2025, 4, 1), year_end=date(2026, 4, 1),
        covered_days=365, yield_kwh=D("2900.4004"), final=True,
    )  # fmt: skip
    assert outcome.guaranteed_kwh == D("3060.000")
    assert outcome.shortfall_kwh == D("159.600")  # 3060 - 2900.400
    plan = parse_tariff_plans(
        plan_data(guarantee={"kwh_per_kwp_per_year": "850", "compensation_eur_per_kwh": "0.15"})
    )["p"]
    line = guarantee_line(outcome, prices_on(plan, date(2026, 3, 31)))
    assert line is not None
    assert (line.quantity, line.amount_eur, line.vat_eur) == (
        D("-159.600"), D("-23.94"), D("-5.03")  # VAT -5.0274
    )  # fmt: skip
    # a member leaving after 146 of 365 days is guaranteed 146/365 of the year
    short = guarantee_outcome(
        guarantee, kwp=D("3.6"), year_start=date(2025, 4, 1), year_end=date(2026, 4, 1),
        covered_days=146, yield_kwh=D("1300"), final=True,
    )  # fmt: skip
    assert short.guaranteed_kwh == D("1224.000")
    assert short.shortfall_kwh == D(0)
    assert guarantee_line(short, prices_on(plan, date(2025, 8, 24))) is None


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ({"vat_rate": "1.21"}, "vat_rate"),
        ({"price_eur_per_kwh": "-0.01"}, "price_eur_per_kwh"),
        ({"monthly_fee": "5"}, "monthly_fee"),
        ({"guarantee": {"compensation_eur_per_kwh": "0.1"}}, "exactly one"),
    ],
)
def test_invalid_plans_are_refused_naming_the_field(
    version: dict[str, object], message: str
) -> None:
    with pytest.raises(TariffError, match=message):
        parse_tariff_plans(plan_data(**version))


def test_versions_must_be_in_order_and_cover_the_day_asked() -> None:
    data = {"plans": [{"plan_id": "p", "versions": [
        {"valid_from": "2026-01-01", "vat_rate": "0.21"},
        {"valid_from": "2025-01-01", "vat_rate": "0.21"},
    ]}]}  # fmt: skip
    with pytest.raises(TariffError, match="increasing"):
        parse_tariff_plans(data)
    plan = parse_tariff_plans(plan_data())["p"]
    with pytest.raises(TariffError, match="no version in force on 2024-12-31"):
        plan.version_at(date(2024, 12, 31))


def test_the_shipped_tariff_file_loads() -> None:
    plans = load_tariff_plans(REPO / "config" / "tariffs" / "plans.yaml")
    assert set(plans) == {"huur-basis", "huur-garantie"}
    assert isinstance(monthly_fee_line(PriceSpan(date(2026, 1, 1), date(2026, 2, 1),
                      prices_on(plans["huur-basis"], date(2026, 1, 1))), 31).amount_eur, Decimal)  # type: ignore[union-attr]  # fmt: skip
