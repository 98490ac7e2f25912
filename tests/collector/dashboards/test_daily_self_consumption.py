"""Fleet and neighbourhood self-consumption per day, from a real InfluxDB, written only for
groups of at least five households. Powers are constant per home, so each expected figure
is power x 24 h."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from collector.dashboards.daily_self_consumption import MEASUREMENT, area_of, write_days
from collector.registry.fleet_file import Fleet
from collector.settlement.self_consumption import day_span
from collector.simulator.fleet import generate_fleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.timeseries.influx import InfluxClient, Point
from collector.timeseries.measurements import meter_points
from zonnewijk_wire.meter import MeterReading, MeterSource

DAY = date(2026, 6, 15)


def _write_home(
    influx: InfluxClient, fleet: Fleet, site_id: str, production_w: float, load_w: float
) -> None:
    site = next(s for s in fleet.sites if s.site_id == site_id)
    device = fleet.devices_of_site(site_id)[0]
    start, end = day_span(DAY)
    export_w, import_w = max(production_w - load_w, 0.0), max(load_w - production_w, 0.0)
    points = []
    t = start - timedelta(minutes=10)
    while t <= end + timedelta(minutes=10):
        h = (t - start).total_seconds() / 3600
        tags = {"gateway": site.gateway_id, "device": device.device_id}
        points.append(Point("inverter", tags, {"ac_energy_wh": 1e6 + production_w * h}, t))
        reading = MeterReading(
            device_id="p1", ts=t, source=MeterSource.P1, interval_s=300,
            import_energy_wh=2e6 + import_w * h, export_energy_wh=3e5 + export_w * h,
        )  # fmt: skip
        points.extend(meter_points(site.gateway_id, reading))
        t += timedelta(minutes=5)
    influx.write_points(points)


def test_fleet_point_only_for_five_homes_with_meters(influx: InfluxClient) -> None:
    fleet = to_registry_fleet(generate_fleet(8, 3))
    sites = [s.site_id for s in fleet.sites if fleet.devices_of_site(s.site_id)]
    assert len(sites) >= 6
    for k, site_id in enumerate(sites[:4]):
        _write_home(influx, fleet, site_id, 1000.0 + 100 * k, 600.0)
    assert write_days(influx, fleet, [DAY]) == 0  # four homes with meters: nothing published

    _write_home(influx, fleet, sites[4], 300.0, 600.0)  # uses more than it makes
    assert write_days(influx, fleet, [DAY]) >= 1
    rows = influx.query_records(f'SELECT * FROM "{MEASUREMENT}" WHERE "scope" = \'fleet\'')
    assert len(rows) == 1
    row = rows[0]
    productions = [1000.0, 1100.0, 1200.0, 1300.0, 300.0]
    self_used = [min(p, 600.0) for p in productions]
    assert row["households"] == 5
    assert row["production_kwh"] == pytest.approx(sum(productions) * 24 / 1000)
    assert row["self_consumed_kwh"] == pytest.approx(sum(self_used) * 24 / 1000)
    assert row["consumption_kwh"] == pytest.approx(5 * 600.0 * 24 / 1000)
    assert row["self_consumption_ratio"] == pytest.approx(sum(self_used) / sum(productions))
    assert row["self_sufficiency_ratio"] == pytest.approx(sum(self_used) / (5 * 600.0))
    # Neighbourhoods with fewer than five metered homes are not written.
    areas: dict[str, int] = {}
    for s in fleet.sites:
        if s.site_id in sites[:5]:
            areas[area_of(s.address.postal_code)] = areas.get(area_of(s.address.postal_code), 0) + 1
    written = {
        r["area"]: r["households"]
        for r in influx.query_records(
            f'SELECT "households" FROM "{MEASUREMENT}" WHERE "scope" = \'pc4\' GROUP BY "area"'
        )
    }
    assert written == {a: n for a, n in areas.items() if n >= 5}


def test_area_is_the_four_digits_of_a_dutch_postal_code() -> None:
    assert area_of("5211 AB") == "5211"
    assert area_of("5211AB") == "5211"
