"""A small fleet with hand-computable numbers, shared by the settlement tests.

Every site has 4 kWp and (unless a case says otherwise) a counter rising 100 Wh per hour
(25 Wh/kWp/h), read every 30 minutes, from 26 February to 3 April 2026. March 2026 has 743
hours (summer time starts on the 29th).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from collector.registry.fleet_file import Fleet, parse_fleet
from collector.settlement.counter_segments import CounterReadings

START = datetime(2026, 2, 26, tzinfo=UTC)
END = datetime(2026, 4, 3, tzinfo=UTC)
SWAP = datetime(2026, 3, 10, 12, tzinfo=UTC)
S4_STOP = datetime(2026, 3, 24, 23, tzinfo=UTC)  # 25 March 00:00 local

FLEET_YAML = """
version: 1
cooperative:
  name: Testcoöperatie
  address: {street: Dieze 1, postal_code: 8011 AB, city: Zwolle}
tariff_plans:
  - plan_id: p-kwh
    versions:
      - valid_from: 2025-01-01
        monthly_fee_eur: "12.50"
        price_eur_per_kwh: "0.0950"
        vat_rate: "0.21"
  - plan_id: p-guar
    versions:
      - valid_from: 2025-01-01
        guarantee: {kwh_per_year: "1000", compensation_eur_per_kwh: "0.20"}
        vat_rate: "0.21"
members:
%(members)s
sites:
%(sites)s
devices:
  - {device_id: d1, site_id: S1, family: sunspec-int, ac_rating_w: 4000, kwp: 4, installed_on: 2025-01-01}
  - {device_id: d2a, site_id: S2, family: sunspec-int, ac_rating_w: 4000, kwp: 4, installed_on: 2025-01-01,
     removed_on: 2026-03-10, replaced_by: d2b}
  - device_id: d2b
    site_id: S2
    family: huawei
    ac_rating_w: 4000
    kwp: 4
    installed_on: 2026-03-10
    replaces: {device_id: d2a, at: "2026-03-10T12:00:00Z", old_last_energy_wh: 5000000, new_first_energy_wh: 10}
  - {device_id: d3, site_id: S3, family: sunspec-int, ac_rating_w: 4000, kwp: 4, installed_on: 2025-01-01}
  - {device_id: d4, site_id: S4, family: sunspec-int, ac_rating_w: 4000, kwp: 4, installed_on: 2025-01-01}
contracts:
  - {contract_id: C1, member_id: M1, site_id: S1, start_date: 2025-01-01, end_date: 2026-03-15, tariff_plan_id: p-kwh}
  - {contract_id: C2, member_id: M2, site_id: S1, start_date: 2026-03-16, tariff_plan_id: p-kwh}
  - {contract_id: C3, member_id: M3, site_id: S2, start_date: 2025-01-01, tariff_plan_id: p-kwh}
  - {contract_id: C4, member_id: M4, site_id: S3, start_date: 2025-04-01, tariff_plan_id: p-guar}
  - {contract_id: C5, member_id: M5, site_id: S4, start_date: 2025-01-01, tariff_plan_id: p-kwh}
"""


def fleet_yaml() -> str:
    """The fleet file text."""
    members = "\n".join(
        f"  - {{member_id: M{i}, name: Lid {i}, email: lid{i}@example.org,"
        f" address: {{street: Dieze {i}, postal_code: 8011 AB, city: Zwolle}}}}"
        for i in range(1, 6)
    )
    sites = "\n".join(
        f"  - {{site_id: S{i}, address: {{street: Dieze {i}, postal_code: 8011 AB, city: Zwolle}},"
        f" lat: 52.52, lon: 6.10, kwp: 4, tilt_deg: 35, azimuth_deg: 180, gateway_id: gw-s{i}}}"
        for i in range(1, 5)
    )
    return FLEET_YAML % {"members": members, "sites": sites}


def fleet() -> Fleet:
    return parse_fleet(fleet_yaml(), "test-fleet")


def steady_pairs(
    start: datetime, end: datetime, wh_per_h: float, first_wh: float, step_min: int = 30
) -> list[tuple[datetime, float]]:
    """Readings of a counter rising ``wh_per_h``, every ``step_min`` minutes in [start, end]."""
    out = []
    t, value = start, first_wh
    while t <= end:
        out.append((t, value))
        t += timedelta(minutes=step_min)
        value += wh_per_h * step_min / 60
    return out


def readings(
    s4_late: Iterable[tuple[datetime, float]] = (), s4_stop: datetime = S4_STOP
) -> dict[str, CounterReadings]:
    """The fleet's readings; d4 stops at ``s4_stop`` (its last week of March is missing)."""
    d4 = steady_pairs(START, s4_stop, 100.0, 300_000.0)
    pairs = {
        "d1": steady_pairs(START, END, 100.0, 1_000_000.0),
        "d2a": steady_pairs(START, SWAP - timedelta(minutes=30), 100.0, 5_000_000.0 - 100.0 * 300),
        "d2b": steady_pairs(SWAP + timedelta(minutes=30), END, 100.0, 60.0),
        "d3": steady_pairs(START, END, 100.0, 2_000_000.0),
        "d4": [*d4, *s4_late],
    }
    return {device: CounterReadings.from_pairs(device, p) for device, p in pairs.items()}


def sunny_pairs(
    start: datetime, end: datetime, peak_w: float, first_wh: float, step_min: int = 5
) -> list[tuple[datetime, float]]:
    """Readings of a counter that only rises in daylight (06:00-18:00 UTC, a sine bump)."""
    import math

    out = []
    t, value = start, first_wh
    while t <= end:
        out.append((t, round(value, 3)))
        hour = t.hour + t.minute / 60
        power = peak_w * math.sin(math.pi * (hour - 6) / 12) if 6 <= hour < 18 else 0.0
        value += power * step_min / 60
        t += timedelta(minutes=step_min)
    return out
