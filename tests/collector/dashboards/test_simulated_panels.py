"""Every InfluxQL panel query, once more, on a database filled from the fleet simulator.

The deterministic sample (conftest ``filled``) guarantees every case a panel must show; this
runs the same committed queries on what the simulator, the collector's point mapping, the
collector's gateway points, the rollups and daily_yield make of a few days of a small fleet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from collector.dashboards.generate import load_committed
from collector.dashboards.panel_queries import panel_queries, variable_queries
from collector.dashboards.simulated_data import DEMO_NOW, SimulatedFleet, fill_simulated
from collector.devtools.services import Influxd
from collector.timeseries.influx import InfluxClient

DASHBOARDS = {
    name: d
    for name, d in load_committed().items()
    if any(
        q.language == "influxql"
        for q in panel_queries(d, now=DEMO_NOW, chosen={"device": ("x",), "period": ("x",)})
    )
}


@pytest.fixture(scope="module")
def simulated(monitored_influxd: Influxd) -> Iterator[tuple[InfluxClient, SimulatedFleet]]:
    client = InfluxClient(monitored_influxd.url, f"sim_{uuid.uuid4().hex[:10]}")
    sim = fill_simulated(client, sites=8, days=4, seed=11, now=DEMO_NOW)
    yield client, sim
    client.query(f'DROP DATABASE "{client.database}"', database="", epoch=None)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_queries_on_simulated_data(
    simulated: tuple[InfluxClient, SimulatedFleet], name: str
) -> None:
    client, sim = simulated
    faulty = sim.fleet.sites[-1]  # in fault state since the morning
    chosen: dict[str, tuple[str, ...] | None] = {"device": (faulty.device_id,)}
    flag_rows = 0
    for q in panel_queries(DASHBOARDS[name], now=DEMO_NOW, chosen=chosen):
        if "_internal" in q.raw:
            live = panel_queries(DASHBOARDS[name], now=datetime.now(UTC), chosen=chosen)
            q = next(p for p in live if p.panel_id == q.panel_id and p.ref_id == q.ref_id)
        series = client.query(q.query)[0]
        if '"flags" =~' in q.raw:
            # Which flags a few simulated days raise is up to the simulator's faults.
            flag_rows += sum(len(s.values) for s in series)
            continue
        if not series and q.no_value is not None:
            continue
        assert series and all(s.values for s in series), f"{name} / {q.panel_title}: {q.query}"
    if name == "data-quality":
        assert flag_rows, "the simulator's glitches and spool replays show up as flagged readings"


def test_variables_list_the_simulated_fleet(simulated: tuple[InfluxClient, SimulatedFleet]) -> None:
    client, sim = simulated
    devices = {site.device_id for site in sim.fleet.sites}
    for name, dashboard in DASHBOARDS.items():
        for vq in variable_queries(dashboard, now=DEMO_NOW):
            values = {r["value"] for r in client.query_records(vq.query)}
            assert values, f"{name}: {vq.name}"
            if vq.name == "device":
                assert values == devices
