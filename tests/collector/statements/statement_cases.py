"""A store with the settlement tests' fleet (plus bank details) and issued runs.

By default the ledger holds a year of issued runs: April 2025 - February 2026 (the history),
March 2026 (``2026-03.1``) and April 2026 (``2026-04.1``, with d4's late March readings, so
M5 gets a correction line for March). Every counter rises 100 Wh per hour from 29 March 2025
on (:func:`year_readings`), the same counters as the settlement cases' :func:`readings` from
26 February 2026, so the March figures are theirs. Hand-computed figures for M1 in March:
contract C1 ends on 15 March; fee 12,50 × 15/31 = 6,05; 360 hours × 100 Wh = 36,000 kWh ×
0,0950 = 3,42; VAT 21 % per line 1,27 + 0,72 = 1,99; total 11,46.

Contract C4 (plan p-guar: 1.000 kWh a year guaranteed, 0,20 per kWh short) ends its first
contract year 1 April 2025 - 31 March 2026 in March: the ledger knows every day of it, so the
March run credits the shortfall. The year runs from 1 April 2025 00:00 to 1 April 2026 00:00
local, summer time at both ends (22:00 UTC): 365 × 24 = 8.760 hours × 100 Wh = 876,000 kWh,
124,000 kWh short × 0,20 = 24,80 credited, 21 % VAT 5,21: -30,01.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from settle_cases import END, FLEET_YAML, S4_STOP, START, SWAP, readings, steady_pairs
from sqlalchemy.orm import Session

from collector.registry.fleet_file import Fleet, parse_fleet
from collector.registry.store_sync import sync_fleet
from collector.settlement.counter_segments import CounterReadings
from collector.settlement.engine import settle
from collector.settlement.inputs import SettlementInputs, correction_periods, readings_window
from collector.settlement.ledger import billed_parts, record_run
from collector.settlement.periods import local_midnight_utc, parse_month

ISSUED_AT = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
IBANS = {
    "M1": "NL91ABNA0417164300",
    "M2": "NL44RABO0123456789",
    "M3": "NL21INGB0987654321",
    "M4": "NL75ABNA0555555555",
}
COOP_IBAN = "NL22RABO0444444444"
CREDITOR_ID = "NL08ZZZ123456780000"

#: The months issued before March 2026: C4's contract year began on 1 April 2025.
HISTORY = tuple(f"{2025 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}" for m in range(4, 15))
HISTORY_START = datetime(2025, 3, 29, tzinfo=UTC)  # before April 2025's readings window
#: d4's counter stands this much higher than in the settlement cases (yields are differences,
#: so nothing billed changes); a counter rising 100 Wh/h since 29 March 2025 cannot have read
#: only 300.000 Wh on 26 February 2026 [Wh]
D4_OFFSET_WH = 1_000_000.0


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


def _since_history(wh_at_start: float) -> float:
    """A counter's value at HISTORY_START when it reads ``wh_at_start`` at START (100 Wh/h)."""
    return wh_at_start - 100.0 * (START - HISTORY_START) / timedelta(hours=1)


def year_readings(s4_late: Iterable[tuple[datetime, float]] = ()) -> dict[str, CounterReadings]:
    """The fleet's counters from 29 March 2025 to 3 April 2026, every 30 minutes.

    From 26 February 2026 on they are the settlement cases' :func:`readings` (d4 raised by
    D4_OFFSET_WH): d2a is replaced by d2b on 10 March 2026 and d4 stops on 25 March 2026.
    """
    half_hour = timedelta(minutes=30)
    d4_start = _since_history(300_000.0 + D4_OFFSET_WH)
    pairs = {
        "d1": steady_pairs(HISTORY_START, END, 100.0, _since_history(1_000_000.0)),
        "d2a": steady_pairs(HISTORY_START, SWAP - half_hour, 100.0, _since_history(4_970_000.0)),
        "d2b": steady_pairs(SWAP + half_hour, END, 100.0, 60.0),
        "d3": steady_pairs(HISTORY_START, END, 100.0, _since_history(2_000_000.0)),
        "d4": [*steady_pairs(HISTORY_START, S4_STOP, 100.0, d4_start), *s4_late],
    }
    return {device: CounterReadings.from_pairs(device, p) for device, p in pairs.items()}


def d4_late_readings() -> list[tuple[datetime, float]]:
    """d4's last week of March, arriving in April: 110 Wh/h from its last reading on."""
    return steady_pairs(S4_STOP + timedelta(minutes=30), END, 110.0, 364_755.0 + D4_OFFSET_WH)


def in_window(
    data: Mapping[str, CounterReadings], period: str, correct: Iterable[str]
) -> dict[str, CounterReadings]:
    """The readings a source would give for a run: those in its window, a day's margin more."""
    first, end = readings_window(parse_month(period), tuple(correct))
    lo = local_midnight_utc(first - timedelta(days=1)).timestamp()
    hi = local_midnight_utc(end + timedelta(days=1)).timestamp()
    out = {}
    for device, r in data.items():
        keep = (r.ts_s >= lo) & (r.ts_s <= hi)
        if np.any(keep):
            out[device] = CounterReadings.from_arrays(device, r.ts_s[keep], r.wh[keep])
    return out


def issued_at(period: str) -> datetime:
    """A month's run is issued on the 2nd of the next month, 09:00 UTC."""
    end_day: date = parse_month(period).end_day
    return datetime.combine(end_day + timedelta(days=1), time(9), tzinfo=UTC)


def issue(
    session: Session, period: str, data: Mapping[str, CounterReadings], months: int = 1
) -> str:
    """Settle ``period`` with the engine and record it in the ledger; returns the run id."""
    billed = billed_parts(session)
    target = parse_month(period)
    correct = tuple(p.label for p in correction_periods(billed, target, months))
    inputs = SettlementInputs(
        target,
        fleet(),
        in_window(data, period, correct),
        billed=tuple(billed),
        correct_periods=correct,
    )
    run_id = record_run(
        session,
        settle(inputs),
        fleet=inputs.fleet,
        correct_periods=correct,
        readings_source="test",
        issued_at=issued_at(period),
    )
    session.commit()
    return run_id


def load_registry(session: Session) -> None:
    sync_fleet(session, fleet(), source="statement-test-fleet")
    session.commit()


def issue_history(session: Session, data: Mapping[str, CounterReadings] | None = None) -> None:
    """Issue April 2025 - February 2026, one run a month, as the cooperative did."""
    data = year_readings() if data is None else data
    for period in HISTORY:
        issue(session, period, data)


def issue_march_and_april(session: Session, *, history: bool = True) -> tuple[str, str]:
    """Registry plus the issued runs (the history unless ``history`` is false); returns the
    ids of March's and April's runs.

    Without the history the ledger begins in March 2026, so C4's contract year is not known
    for every day and its shortfall is not credited.
    """
    load_registry(session)
    if history:
        issue_history(session)
        march = issue(session, "2026-03", year_readings())
        april = issue(session, "2026-04", year_readings(d4_late_readings()))
        return march, april
    march = issue(session, "2026-03", readings())
    late = steady_pairs(S4_STOP + timedelta(minutes=30), END, 110.0, 364_755.0)
    april = issue(session, "2026-04", readings(s4_late=late))
    return march, april
