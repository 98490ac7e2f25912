"""The daily_yield rollup: local days, counter rises, registry tags, guarantee proration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from collector.dashboards.daily_yield import (
    MEASUREMENT,
    DeviceDay,
    contract_year_start,
    daily_yield_points,
    day_bounds_utc,
    day_energy_wh,
    guarantee_kwh_for_day,
    specific_yield_kwh_per_kwp,
)
from collector.registry.fleet_file import Fleet, load_fleet_file
from collector.timeseries.influx import InfluxClient

from .conftest import NOW

FLEET = load_fleet_file(Path(__file__).resolve().parents[3] / "config" / "fleet.small.yaml")


def test_local_days_on_dst_changes_have_23_and_25_hours() -> None:
    start, end = day_bounds_utc(date(2026, 3, 29))
    assert start == datetime(2026, 3, 28, 23, tzinfo=UTC) and end - start == timedelta(hours=23)
    start, end = day_bounds_utc(date(2026, 10, 25))
    assert end - start == timedelta(hours=25)


def test_day_energy_is_the_counter_rise_and_survives_a_reset() -> None:
    assert day_energy_wh(DeviceDay("d", 1000.0, 1000.0, 13500.0, 200)) == 12500.0
    # No reading before the day: from its first reading.
    assert day_energy_wh(DeviceDay("d", None, 2000.0, 5000.0, 10)) == 3000.0
    # The counter stepped back (replacement): count from the first reading of the day.
    assert day_energy_wh(DeviceDay("d", 4_312_870.0, 12.0, 8012.0, 100)) == 8000.0


def test_specific_yield_refuses_zero_kwp() -> None:
    assert specific_yield_kwh_per_kwp(12.6, 4.2) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        specific_yield_kwh_per_kwp(1.0, 0)


def test_contract_years_follow_the_anchor() -> None:
    chloe = next(c for c in FLEET.contracts if c.contract_id == "C0003")  # anchor 2026-03-16
    assert contract_year_start(chloe, date(2026, 3, 15)) == date(2025, 3, 16)
    assert contract_year_start(chloe, date(2026, 3, 16)) == date(2026, 3, 16)


def test_guarantee_is_prorated_per_day_of_the_contract_year() -> None:
    anna = next(c for c in FLEET.contracts if c.contract_id == "C0001")
    # 2026 version: 900 kWh per kWp per year, site S001 has 4.2 kWp; the contract year
    # 2026-03-01 .. 2027-02-28 has 365 days.
    value = guarantee_kwh_for_day(FLEET, anna, Decimal("4.2"), date(2026, 6, 17))
    assert value == pytest.approx(900 * 4.2 / 365)
    per_kwh = next(c for c in FLEET.contracts if c.contract_id == "C0003")
    assert guarantee_kwh_for_day(FLEET, per_kwh, Decimal("3.6"), date(2026, 6, 17)) is None


def test_points_carry_registry_tags_and_the_fleet_median() -> None:
    day = date(2026, 6, 17)
    days = {
        "inv-s001-b": DeviceDay("inv-s001-b", 1000.0, 1000.0, 1000.0 + 21_000.0, 288),
        "inv-s002": DeviceDay("inv-s002", 500.0, 500.0, 500.0 + 10_800.0, 144),
    }
    points = {p.tags["device"]: p for p in daily_yield_points(FLEET, day, days)}
    assert set(points) == {"inv-s001-b", "inv-s002"}  # inv-s001-a was removed in May
    a, b = points["inv-s001-b"], points["inv-s002"]
    assert a.measurement == MEASUREMENT
    assert a.time == datetime(2026, 6, 16, 22, tzinfo=UTC)  # local midnight
    assert a.tags == {
        "gateway": "gw-s001",
        "device": "inv-s001-b",
        "site": "S001",
        "member": "M0001",
        "contract_year": "2026-03-01",
    }
    assert a.fields["specific_yield_kwh_per_kwp"] == pytest.approx(5.0)
    assert b.fields["specific_yield_kwh_per_kwp"] == pytest.approx(3.0)
    assert b.fields["coverage"] == pytest.approx(0.5)
    assert b.tags["member"] == "M0003" and "guarantee_kwh" not in b.fields
    assert a.fields["fleet_median_kwh_per_kwp"] == pytest.approx(4.0)
    assert b.fields["relative_yield"] == pytest.approx(0.75)
    # Below half coverage a device does not count towards the median.
    days["inv-s002"] = DeviceDay("inv-s002", 500.0, 500.0, 500.0 + 10_800.0, 100)
    thin = {p.tags["device"]: p for p in daily_yield_points(FLEET, day, days)}
    assert thin["inv-s002"].fields["fleet_median_kwh_per_kwp"] == pytest.approx(5.0)


def test_a_whole_day_gap_is_a_zero_coverage_point() -> None:
    days = {"inv-s001-b": DeviceDay("inv-s001-b", 0.0, 0.0, 9000.0, 288)}
    points = {p.tags["device"]: p for p in daily_yield_points(FLEET, date(2026, 6, 17), days)}
    gap = points["inv-s002"]
    assert gap.fields["readings"] == 0 and gap.fields["coverage"] == 0.0
    assert "specific_yield_kwh_per_kwp" not in gap.fields
    assert daily_yield_points(FLEET, date(2026, 6, 17), {}) == []


def test_written_daily_yield_matches_the_raw_counter_rise(
    filled: InfluxClient, fleet: Fleet
) -> None:
    start, end = day_bounds_utc(NOW.date() - timedelta(days=1))
    raw = {
        r["device"]: r["e"]
        for r in filled.query_records(
            'SELECT spread("ac_energy_wh") AS "e" FROM "inverter" '
            f"WHERE time >= {int(start.timestamp() * 1000)}ms AND time < {int(end.timestamp() * 1000)}ms "
            'GROUP BY "device"'
        )
    }
    rows = filled.query_records(
        'SELECT "energy_kwh" FROM "daily_yield" '
        f'WHERE time = {int(start.timestamp() * 1000)}ms GROUP BY "device"'
    )
    assert {r["device"] for r in rows} == set(raw)
    for r in rows:
        # Counter rise since the last reading before midnight ≥ rise within the day.
        assert r["energy_kwh"] * 1000 == pytest.approx(raw[r["device"]], rel=0.02, abs=1.0)


def test_daily_panels_bucket_local_days_across_dst(influx: InfluxClient) -> None:
    """The fleet comparison's per-day query groups by Amsterdam days, also on the 23-hour day."""
    from collector.dashboards.generate import load_committed
    from collector.dashboards.panel_queries import panel_queries

    days = [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]
    for i, day in enumerate(days):
        device_days = {
            "inv-s001-b": DeviceDay("inv-s001-b", 0.0, 0.0, 4200.0 * (i + 1), 100),
            "inv-s002": DeviceDay("inv-s002", 0.0, 0.0, 3600.0 * (i + 1), 100),
        }
        # inv-s001-b is installed in May 2026; pretend it was there (the test is about days).
        fleet = FLEET.model_copy(
            update={
                "devices": tuple(
                    d.model_copy(update={"installed_on": date(2025, 1, 1), "removed_on": None})
                    for d in FLEET.devices
                )
            }
        )
        influx.write_points(daily_yield_points(fleet, day, device_days))
    dashboard = load_committed()["fleet-comparison"]
    now = datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    query = next(
        q for q in panel_queries(dashboard, now=now) if q.ref_id == "B" and "median" in q.query
    )
    series = influx.query(query.query)[0]
    stamps = [datetime.fromtimestamp(row[0] / 1000, tz=UTC) for row in series[0].values]
    assert stamps == [day_bounds_utc(d)[0] for d in days]
    medians = [row[1] for row in series[0].values]
    assert medians == pytest.approx([1.0, 2.0, 3.0])
