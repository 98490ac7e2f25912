"""Benchmark: a year of 5-minute readings of the 122-site fleet, simulated and written.

    .venv/bin/python bench/simulate.py [--sites 122] [--days 365] [--interval 300] [--keep DIR]

Prints the wall time of the whole run (physics + formatting + writing readings.jsonl,
ground truth, fleet file), the throughput, and the fleet's simulated yearly yield, both for
the faultless fleet and per orientation. The issue's target: under a minute.

    .venv/bin/python bench/simulate.py --backfill-days 60

instead measures the demo's backfill: the last 60 days of the fleet published through a
private Mosquitto to the real collector, which writes them to a private InfluxDB.

Figures (``bench/_figures.py``): the year's wall time (goal under 60 s, issue 3) and the
faultless fleet's specific yield (goal 850-950 kWh/kWp, rooftop PV in Zwolle, issue 15; the
test ``tests/collector/simulator/test_sim_year_gate.py`` checks the typical year over seeds).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from _figures import at_most, between, report

from collector.simulator.engine import Simulation, window
from collector.simulator.faults import generate_faults
from collector.simulator.fleet import generate_fleet
from collector.simulator.jsonl import format_rows
from collector.simulator.output import write_run
from collector.simulator.yields import fleet_yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=122)
    parser.add_argument("--days", type=float, default=365)
    parser.add_argument("--interval", type=int, default=300)
    parser.add_argument("--start", default="2026-01-01")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write here and keep the output")
    parser.add_argument("--backfill-days", type=float, help="measure the MQTT backfill instead")
    args = parser.parse_args()
    if args.backfill_days:
        backfill(args.sites, args.backfill_days, args.interval, args.seed)
        return

    fleet = generate_fleet(args.sites, args.seed)
    start, end = window(date.fromisoformat(args.start), args.days)
    # Compile the writer first so the timing is the steady state (numba caches it on disk).
    warm = Simulation(fleet, start, start + (end - start) / args.days, args.interval)
    chunk = next(warm.chunks())
    t, s = np.nonzero(chunk.present)
    format_rows(
        chunk,
        t[:10],
        s[:10],
        [x.gateway_id for x in fleet.sites],
        [x.device_id for x in fleet.sites],
    )

    out = args.keep or Path(tempfile.mkdtemp(prefix="zw-bench-"))
    try:
        faults = generate_faults(fleet, start, end, interval_s=args.interval)
        sim = Simulation(fleet, start, end, args.interval, faults)
        began = time.perf_counter()
        totals = write_run(sim, out)
        seconds = time.perf_counter() - began
        summary = json.loads((out / "summary.json").read_text())
        print(
            f"sites {args.sites}, days {args.days:g}, interval {args.interval} s, seed {args.seed}"
        )
        print(f"wall time (simulate + write): {seconds:.1f} s")
        print(
            f"readings: {totals.readings:,}  batches: {totals.lines:,}  "
            f"output: {totals.bytes / 1e9:.2f} GB"
        )
        print(
            f"throughput: {totals.readings / seconds:,.0f} readings/s, "
            f"{totals.bytes / seconds / 1e6:,.0f} MB/s"
        )
        print(f"faults injected: {len(faults)}")
        print(f"fleet yield with faults: {summary['fleet_specific_yield_kwh_per_kwp']} kWh/kWp")
        report(
            "year_simulated_and_written_s",
            seconds,
            "s",
            at_most(60.0, "issue 3: a year of 122 sites in under a minute"),
            detail=f"{totals.readings:,} readings, {totals.bytes / 1e9:.2f} GB",
        )
        report(
            "fleet_yield_with_faults_kwh_per_kwp",
            float(summary["fleet_specific_yield_kwh_per_kwp"]),
            "kWh/kWp",
        )
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)

    # The same year without faults: the yield figures of the docs.
    sim = Simulation(fleet, start, end, args.interval)
    energy = np.zeros(len(fleet))
    for chunk in sim.chunks():
        energy += chunk.energy_wh.sum(axis=0)
    yields = fleet_yield(fleet, start, energy)
    print(
        f"faultless fleet yield: {yields.in_service_kwh_per_kwp:.0f} kWh/kWp "
        f"({yields.sites_in_service} sites in service all window; all {len(fleet)} sites "
        f"incl. those commissioned during it: {yields.all_sites_kwh_per_kwp:.0f} kWh/kWp)"
    )
    by_orientation = []
    for label in ("south", "south-east", "south-west", "east", "west"):
        sel = yields.in_service & np.array([site.orientation == label for site in fleet.sites])
        if sel.any():
            mean = yields.per_site_kwh_per_kwp[sel].mean()
            print(f"  {label:<10} {mean:5.0f} kWh/kWp  ({sel.sum()} sites)")
            by_orientation.append(f"{label} {mean:.0f}")
    report(
        "faultless_fleet_yield_kwh_per_kwp",
        yields.in_service_kwh_per_kwp,
        "kWh/kWp",
        between(850.0, 950.0, "issue 15: rooftop PV in Zwolle"),
        detail=f"seed {args.seed}, {args.start[:4]}; " + ", ".join(by_orientation),
    )


def backfill(sites: int, days: float, interval_s: int, seed: int) -> None:
    """Publish the last ``days`` through Mosquitto and the collector into InfluxDB."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from collector.devtools.services import Influxd, Mosquitto
    from collector.ingest.pipeline import Collector, MqttConnection
    from collector.simulator.publish import publish_history
    from collector.timeseries.influx import InfluxClient

    fleet = generate_fleet(sites, seed)
    today = datetime.now(UTC).date()
    end = datetime(today.year, today.month, today.day, tzinfo=UTC)
    start = end - timedelta(days=days)
    with Mosquitto.create() as broker, Influxd.create() as influxd:
        influx = InfluxClient(influxd.url, f"bench_{uuid.uuid4().hex[:8]}")
        influx.create_database()
        with Collector(
            mqtt_connection=MqttConnection(port=broker.port, client_id="bench-collector"),
            influx=influx,
        ) as collector:
            began = time.perf_counter()
            totals = publish_history(fleet, start, end, interval_s, "127.0.0.1", broker.port)
            published = time.perf_counter() - began
            collector.wait_idle(600, quiet_s=2.0)
            stored = time.perf_counter() - began - 2.0
        count = influx.query_records("SELECT count(ac_energy_wh) AS n FROM inverter")
    n = int(count[0]["n"]) if count else 0
    print(f"backfill of {days:g} days, {sites} sites, {interval_s} s readings")
    print(
        f"published {totals.messages:,} batches / {totals.readings:,} readings in "
        f"{published:.1f} s ({totals.messages_per_s:,.0f} messages/s)"
    )
    print(
        f"stored in InfluxDB by the collector: {n:,} readings, all done after {stored:.1f} s "
        f"({n / stored:,.0f} readings/s)"
    )


if __name__ == "__main__":
    main()
