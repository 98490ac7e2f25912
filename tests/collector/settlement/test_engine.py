"""The settlement engine on a small fleet, against hand-computed statements."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from settle_cases import END, S4_STOP, fleet, readings, steady_pairs

from collector.settlement.engine import settle
from collector.settlement.inputs import BilledPart, SettlementInputs
from collector.settlement.periods import parse_month
from collector.settlement.tariffs import LineKind

D = Decimal


def march_inputs(**kwargs: object) -> SettlementInputs:
    return SettlementInputs(parse_month("2026-03"), fleet(), readings(), **kwargs)  # type: ignore[arg-type]


def by_contract(result: object) -> dict[str, object]:
    return {c.contract_id: c for c in result.contracts}  # type: ignore[attr-defined]


def amounts(contract: object) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    return [
        (line.kind.value, line.quantity, line.amount_eur, line.vat_eur)
        for line in contract.lines  # type: ignore[attr-defined]
    ]


def test_member_moving_out_mid_month_and_the_next_moving_in() -> None:
    contracts = by_contract(settle(march_inputs()))
    # C1: 1-15 March, 360 h × 100 Wh = 36 kWh; fee 12.50 × 15/31 = 6.048… → 6.05
    assert amounts(contracts["C1"]) == [
        ("monthly_fee", D(15), D("6.05"), D("1.27")),  # VAT 1.2705
        ("energy", D("36.000"), D("3.42"), D("0.72")),  # VAT 0.7182
    ]
    # C2: 16-31 March, 743 - 360 = 383 h (the 29th has 23 h); 12.50 × 16/31 = 6.4516 → 6.45
    assert amounts(contracts["C2"]) == [
        ("monthly_fee", D(16), D("6.45"), D("1.35")),  # VAT 1.3545
        ("energy", D("38.300"), D("3.64"), D("0.76")),  # 3.6385 → 3.64; VAT 0.7644
    ]
    c2 = contracts["C2"]
    assert c2.totals == (D("10.09"), D("2.11"))  # type: ignore[attr-defined]
    assert c2.completeness == 1.0  # type: ignore[attr-defined]


def test_inverter_replacement_mid_month_bills_the_whole_dst_month() -> None:
    c3 = by_contract(settle(march_inputs()))["C3"]
    assert amounts(c3) == [
        ("monthly_fee", D(31), D("12.50"), D("2.63")),  # VAT 2.625 → 2.63 (half up)
        ("energy", D("74.300"), D("7.06"), D("1.48")),  # 7.0585 → 7.06; VAT 1.4826
    ]
    assert c3.anomalies == ()  # type: ignore[attr-defined]


def test_missing_last_week_is_estimated_from_the_fleet() -> None:
    c5 = by_contract(settle(march_inputs()))["C5"]
    (part,) = c5.parts  # type: ignore[attr-defined]
    # measured until 25 March 00:00 local: 576 h; 167 h missing at 25 Wh/kWp/h × 4 kWp × 1.0
    assert part.measured_wh == pytest.approx(57_600.0)
    assert part.estimated_wh == pytest.approx(16_700.0)
    assert part.kwh == D("74.300")
    assert part.completeness == pytest.approx(576 / 743)
    assert [e.kind for e in part.estimates] == ["missing_stretch"]


def test_contract_year_ending_below_its_guarantee_is_compensated() -> None:
    # contract year 1 April 2025 - 1 April 2026; April-February billed 800 kWh in total
    history = (
        BilledPart(
            "C4",
            "2026-02",
            date(2025, 4, 1),
            date(2026, 3, 1),
            D("800.000"),
            D(0),
            D("0.21"),
            "p-guar@2025-01-01",
        ),
    )
    c4 = by_contract(settle(march_inputs(billed=history)))["C4"]
    (outcome,) = c4.guarantees  # type: ignore[attr-defined]
    assert outcome.final
    assert outcome.yield_kwh == D("874.300")
    assert outcome.shortfall_kwh == D("125.700")
    # 125.700 kWh × 0.20 = 25.14 credited; VAT -5.2794 → -5.28
    assert amounts(c4) == [("guarantee_compensation", D("-125.700"), D("-25.14"), D("-5.28"))]


def test_guarantee_year_to_date_is_shown_before_the_year_ends() -> None:
    inputs = SettlementInputs(parse_month("2026-02"), fleet(), readings())
    c4 = by_contract(settle(inputs))["C4"]
    (outcome,) = c4.guarantees  # type: ignore[attr-defined]
    assert not outcome.final
    assert c4.lines == ()  # type: ignore[attr-defined]
    assert outcome.guaranteed_kwh == D("1000.000")


def test_late_readings_after_issue_become_a_correction_line_next_month() -> None:
    march = settle(march_inputs())
    part = by_contract(march)["C5"].parts[0]  # type: ignore[attr-defined]
    billed = (
        BilledPart(
            "C5",
            "2026-03",
            part.start_day,
            part.end_day,
            part.kwh,
            part.unit_price_eur,
            part.vat_rate,
            part.tariff,
        ),
    )
    # the missing week arrives: d4 actually made 110 Wh/h from 25 March 00:00 local
    late = steady_pairs(S4_STOP + timedelta(minutes=30), END, 110.0, 364_700.0 + 55.0)
    april = settle(
        SettlementInputs(
            parse_month("2026-04"),
            fleet(),
            readings(s4_late=late),
            billed=billed,
            correct_periods=("2026-03",),
        )
    )
    c5 = by_contract(april)["C5"]
    (correction,) = c5.corrections  # type: ignore[attr-defined]
    # 576 h × 100 Wh + 167 h × 110 Wh = 75.970 kWh, billed 74.300 → +1.670 kWh
    assert correction.kwh == D("75.970")
    assert correction.delta_kwh == D("1.670")
    fixes = [line for line in c5.lines if line.kind is LineKind.ENERGY_CORRECTION]  # type: ignore[attr-defined]
    assert [(f.quantity, f.amount_eur, f.vat_eur) for f in fixes] == [
        (D("1.670"), D("0.16"), D("0.03"))  # 0.15865 → 0.16; VAT 0.0336 → 0.03
    ]


def test_same_inputs_give_identical_output() -> None:
    first, second = settle(march_inputs()), settle(march_inputs())
    assert first.dumps() == second.dumps()
    assert first.inputs_digest == second.inputs_digest


def test_json_result_per_member_has_the_documented_fields() -> None:
    members = settle(march_inputs()).to_json()["members"]
    assert [m["member_id"] for m in members] == ["M1", "M2", "M3", "M4", "M5"]
    m1 = members[0]
    assert set(m1) >= {
        "member_id",
        "period",
        "measured_kwh",
        "estimated_kwh",
        "completeness",
        "lines",
        "total_excl_vat_eur",
        "total_incl_vat_eur",
    }
    assert (m1["total_excl_vat_eur"], m1["total_incl_vat_eur"]) == ("9.47", "11.46")


def test_a_contract_year_the_ledger_only_partly_knows_is_not_compensated_automatically() -> None:
    # only January-February were settled by this system: the year's first nine months are
    # unknown, so March alone must not be taken for the year's yield
    history = (
        BilledPart("C4", "2026-02", date(2026, 1, 1), date(2026, 3, 1), D("100.000"), D(0),
                   D("0.21"), "p-guar@2025-01-01"),
    )  # fmt: skip
    c4 = by_contract(settle(march_inputs(billed=history)))["C4"]
    (outcome,) = c4.guarantees  # type: ignore[attr-defined]
    assert outcome.final
    assert (outcome.covered_days, outcome.known_days) == (365, 59 + 31)
    assert not outcome.complete
    assert outcome.to_json()["complete"] is False
    assert c4.lines == ()  # type: ignore[attr-defined]
