"""A store with the settlement tests' fleet (plus bank details) and issued runs.

March 2026 (``2026-03.1``) and April 2026 (``2026-04.1``, with d4's late March readings, so
M5 gets a correction line for March). Hand-computed figures for M1 in March: contract C1
ends on 15 March; fee 12,50 × 15/31 = 6,05; 360 hours × 100 Wh = 36,000 kWh × 0,0950 = 3,42;
VAT 21 % per line 1,27 + 0,72 = 1,99; total 11,46.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from settle_cases import END, FLEET_YAML, S4_STOP, readings, steady_pairs
from sqlalchemy.orm import Session

from collector.registry.fleet_file import Fleet, parse_fleet
from collector.registry.store_sync import sync_fleet
from collector.settlement.engine import SettlementInputs, correction_periods, settle
from collector.settlement.ledger import billed_parts, record_run
from collector.settlement.periods import parse_month

ISSUED_AT = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
IBANS = {
    "M1": "NL91ABNA0417164300",
    "M2": "NL44RABO0123456789",
    "M3": "NL21INGB0987654321",
    "M4": "NL75ABNA0555555555",
}
COOP_IBAN = "NL22RABO0444444444"
CREDITOR_ID = "NL08ZZZ123456780000"


def fleet_yaml() -> str:
    """The settlement cases' fleet; M1-M4 have a mandate, M5 none; the cooperative a creditor id."""
    members = []
    for i in range(1, 6):
        bank = ""
        if f"M{i}" in IBANS:
            bank = f", iban: {IBANS[f'M{i}']}, mandate_id: ZW-M{i}-2025, mandate_date: 2025-01-0{i}"
        lang = ", language: en" if i == 2 else ""
        members.append(
            f"  - {{member_id: M{i}, name: Lid {i}, email: lid{i}@example.org{bank}{lang},"
            f" address: {{street: Dieze {i}, postal_code: 8011 AB, city: Zwolle}}}}"
        )
    sites = "\n".join(
        f"  - {{site_id: S{i}, address: {{street: Dieze {i}, postal_code: 8011 AB, city: Zwolle}},"
        f" lat: 52.52, lon: 6.10, kwp: 4, tilt_deg: 35, azimuth_deg: 180, gateway_id: gw-s{i}}}"
        for i in range(1, 5)
    )
    text = FLEET_YAML % {"members": "\n".join(members), "sites": sites}
    return text.replace(
        "  name: Testcoöperatie\n",
        "  name: Testcoöperatie\n"
        f"  email: bestuur@example.org\n  iban: {COOP_IBAN}\n  creditor_id: {CREDITOR_ID}\n",
    )


def fleet() -> Fleet:
    return parse_fleet(fleet_yaml(), "statement-test-fleet")


def issue(session: Session, period: str, data: dict[str, object], months: int = 1) -> str:
    billed = billed_parts(session)
    target = parse_month(period)
    correct = tuple(p.label for p in correction_periods(billed, target, months))
    inputs = SettlementInputs(
        target,
        fleet(),
        data,  # type: ignore[arg-type]
        billed=tuple(billed),
        correct_periods=correct,
    )
    run_id = record_run(
        session,
        settle(inputs),
        fleet=inputs.fleet,
        correct_periods=correct,
        readings_source="test",
        issued_at=ISSUED_AT if period == "2026-03" else ISSUED_AT + timedelta(days=30),
    )
    session.commit()
    return run_id


def load_registry(session: Session) -> None:
    sync_fleet(session, fleet(), source="statement-test-fleet")
    session.commit()


def issue_march_and_april(session: Session) -> tuple[str, str]:
    """Registry plus the two issued runs; returns their ids."""
    load_registry(session)
    march = issue(session, "2026-03", readings())
    late = steady_pairs(S4_STOP + timedelta(minutes=30), END, 110.0, 364_755.0)
    april = issue(session, "2026-04", readings(s4_late=late))
    return march, april
