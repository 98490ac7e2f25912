"""Benchmark: a year of 5-minute readings of the 122-site fleet, simulated and written.

    .venv/bin/python bench/simulate.py [--sites 122] [--days 365] [--interval 300] [--keep DIR]

Prints the wall time of the whole run (physics + formatting + writing readings.jsonl,
ground truth, fleet file), the throughput, and the fleet's simulated yearly yield, both for
the faultless fleet and per orientation. The issue's target: under a minute.
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

from collector.simulator.engine import Simulation, window
from collector.simulator.faults import generate_faults
from collector.simulator.fleet import generate_fleet
from collector.simulator.jsonl import format_rows
from collector.simulator.output import write_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=122)
    parser.add_argument("--days", type=float, default=365)
    parser.add_argument("--interval", type=int, default=300)
    parser.add_argument("--start", default="2026-01-01")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write here and keep the output")
    args = parser.parse_args()

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
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)

    # The same year without faults: the yield figures of the closing note.
    sim = Simulation(fleet, start, end, args.interval)
    energy = np.zeros(len(fleet))
    for chunk in sim.chunks():
        energy += chunk.energy_wh.sum(axis=0)
    kwp = fleet.column("kwp")
    specific = energy / 1000.0 / kwp
    commissioned = np.array([site.commissioned <= start.date() for site in fleet.sites])
    print(
        f"faultless fleet yield: {energy.sum() / 1000 / kwp.sum():.0f} kWh/kWp "
        f"(mean of sites in service all year: {specific[commissioned].mean():.0f} kWh/kWp, "
        f"{commissioned.sum()} sites)"
    )
    for label in ("south", "south-east", "south-west", "east", "west"):
        sel = commissioned & np.array([site.orientation == label for site in fleet.sites])
        if sel.any():
            print(f"  {label:<10} {specific[sel].mean():5.0f} kWh/kWp  ({sel.sum()} sites)")


if __name__ == "__main__":
    main()
