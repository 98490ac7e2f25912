"""Fleet and neighbourhood self-consumption per day, from a real InfluxDB, written only for
groups of at least five households. Powers are constant per home, so each expected figure
is power x 24 h."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from collector.cli import main
from collector.dashboards.daily_self_consumption import (
    HOURLY_MEASUREMENT,
    HOUSEHOLD_MEASUREMENT,
    MEASUREMENT,
    area_of,
    write_days,
)
from collector.dashboards.generate import load_committed
from collector.dashboards.panel_queries import panel_queries
from collector.registry.fleet_file import Fleet, dump_fleet_yaml
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
    write_days(influx, fleet, [DAY])  # four homes with meters: no group is published
    assert not influx.query_records(f'SELECT * FROM "{MEASUREMENT}"')
    assert not influx.query_records(f'SELECT * FROM "{HOURLY_MEASUREMENT}"')
    # ... but each home's own day is kept (personal data, for the member's portal)
    own = influx.query_records(f'SELECT * FROM "{HOUSEHOLD_MEASUREMENT}" GROUP BY "site"')
    assert sorted(r["site"] for r in own) == sorted(sites[:4])
    first = next(r for r in own if r["site"] == sites[0])
    assert first["production_kwh"] == pytest.approx(1000.0 * 24 / 1000)
    assert first["self_consumed_kwh"] == pytest.approx(600.0 * 24 / 1000)
    assert first["export_kwh"] == pytest.approx(400.0 * 24 / 1000)

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


def test_the_self_consumption_dashboard_queries_run_on_influxdb(influx: InfluxClient) -> None:
    simulated = to_registry_fleet(generate_fleet(8, 3))
    # One neighbourhood: every home in postal area 5211, so that it has five metered homes.
    fleet = simulated.model_copy(
        update={
            "sites": tuple(
                s.model_copy(
                    update={"address": s.address.model_copy(update={"postal_code": "5211 AB"})}
                )
                for s in simulated.sites
            )
        }
    )
    sites = [s.site_id for s in fleet.sites if fleet.devices_of_site(s.site_id)][:5]
    productions = [800.0, 900.0, 1000.0, 1100.0, 1200.0]
    for site_id, production_w in zip(sites, productions, strict=True):
        _write_home(influx, fleet, site_id, production_w, 600.0)
    assert write_days(influx, fleet, [DAY]) >= 1
    now = datetime(2026, 6, 16, 12, tzinfo=UTC)
    queries = panel_queries(load_committed()["self-consumption"], now=now)
    assert len(queries) >= 8
    values: dict[str, list[float]] = {}
    for q in queries:
        rows = influx.query_records(q.query)
        assert rows, f"no rows: {q.panel_title}: {q.query}"
        if q.panel_title.startswith("Fleet self-consumption rate"):
            values["rate"] = [float(v) for r in rows for k, v in r.items() if k != "time"]
        if q.panel_title.startswith("Self-consumption rate per neighbourhood"):
            assert {r["area"] for r in rows} == {"5211"}
        if q.panel_title.startswith("Fleet per hour"):
            hours = [r for r in rows if r.get("sum") is not None]
            assert len(hours) == 24
    expected = sum(min(p, 600.0) for p in productions) / sum(productions)
    assert values["rate"] == [pytest.approx(expected)]
    hourly = influx.query_records(
        'SELECT "consumption_kwh", "households" FROM "fleet_self_consumption_hourly"'
    )
    assert len(hourly) == 24
    assert all(r["households"] == 5 for r in hourly)
    assert all(r["consumption_kwh"] == pytest.approx(5 * 600.0 / 1000) for r in hourly)


def test_the_command_writes_a_day_and_says_what_is_wrong(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = to_registry_fleet(generate_fleet(8, 3))
    sites = [s.site_id for s in fleet.sites if fleet.devices_of_site(s.site_id)][:5]
    for site_id in sites:
        _write_home(influx, fleet, site_id, 1000.0, 600.0)
    path = tmp_path / "fleet.yaml"
    path.write_text(dump_fleet_yaml(fleet))
    argv = ["dashboards", "self-consumption", "--fleet", str(path), "--day", DAY.isoformat()]
    argv += ["--influx-url", influx.url, "--influx-db", influx.database]
    assert main(argv) == 0
    # One fleet point for the day, one per hour of it, and each of the five homes' own day.
    assert "fleet_self_consumption: 30 points for 1 day(s)" in capsys.readouterr().out
    assert main([*argv[:3], str(tmp_path / "missing.yaml"), *argv[4:]]) == 2
    assert main([*argv[:-4], "--influx-url", "http://127.0.0.1:9", "--influx-db", "x"]) == 1
    assert "fleet_self_consumption:" in capsys.readouterr().err
    # As a service (compose's self-consumption): recomputes every --every seconds; a rerun
    # overwrites the day's points instead of adding to them.
    assert main([*argv, "--every", "0.01", "--runs", "2"]) == 0
    assert capsys.readouterr().out.count("fleet_self_consumption: 30 points for 1 day(s)") == 2
    rows = influx.query_records(f'SELECT * FROM "{MEASUREMENT}" WHERE "scope" = \'fleet\'')
    assert len(rows) == 1
