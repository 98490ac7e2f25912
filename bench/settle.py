"""Settlement timings: one month for the simulated fleet, InfluxDB-backed, at two sizes.

Usage: ``.venv/bin/python bench/settle.py [--members 122 10000] [--interval-s 300 3600]``

For each size: simulates the fleet (collector.simulator) from 27 February to 4 April 2026,
writes its ``inverter`` readings (``ac_energy_wh``) into a private InfluxDB at the given
reading interval (not timed), then times what ``zonnewijk settle --period 2026-03`` does:
reading InfluxDB (hourly last values + exact readings at boundaries), settling every contract,
writing the data-set file and recording the issued run in a SQLite ledger. Prints each stage
and the total; the goal is under 60 s for 10,000 members (issue 6).

Figures (``bench/_figures.py``) per size: the total time (goal under 60 s) and the largest
difference between a site's settled and true energy in steps of its counter's resolution
(goal: below 1, the tolerance docs/settlement.md states: a month's yield is the difference of
two floored counter readings).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from _figures import Goal, at_most, report
from sqlalchemy.orm import Session

from collector.devtools.services import Influxd
from collector.settlement.engine import settle
from collector.settlement.influx_source import load_readings, source_label
from collector.settlement.inputs import SettlementInputs
from collector.settlement.ledger import record_run
from collector.settlement.periods import parse_month
from collector.settlement.readings_file import write_dataset
from collector.simulator.engine import Simulation
from collector.simulator.fleet import COUNTER_RESOLUTION_WH, generate_fleet
from collector.simulator.fleet import Fleet as SimFleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.store.testing import temporary_database
from collector.timeseries.influx import InfluxClient

START = datetime(2026, 2, 27, tzinfo=UTC)
END = datetime(2026, 4, 4, tzinfo=UTC)
BATCH_LINES = 20_000
MAX_SIM_SITES = 9999


def load_influx(
    client: InfluxClient, sim: Simulation, period_s: tuple[int, int]
) -> tuple[int, np.ndarray]:
    """Write the simulation's counter readings; returns the number of points and each site's
    ground-truth energy in ``period_s`` [Wh]."""
    truth = np.zeros(len(sim.fleet.sites))
    devices = [s.device_id for s in sim.fleet.sites]
    gateways = [s.gateway_id for s in sim.fleet.sites]
    prefixes = np.array(
        [f"inverter,device={d},gateway={g} ac_energy_wh=" for d, g in zip(devices, gateways, strict=True)],
        dtype=object,
    )  # fmt: skip
    written = 0
    for chunk in sim.chunks():
        inside = (chunk.epoch_s > period_s[0]) & (chunk.epoch_s <= period_s[1])
        truth += np.nansum(chunk.energy_wh[inside], axis=0)
        t_idx, s_idx = np.nonzero(chunk.present & np.isfinite(chunk.ac_energy_wh))
        values = chunk.ac_energy_wh[t_idx, s_idx]
        stamps = chunk.epoch_s[t_idx]
        lines = [
            f"{prefixes[s]}{v!r} {t}"
            for s, v, t in zip(s_idx.tolist(), values.tolist(), stamps.tolist(), strict=True)
        ]
        for i in range(0, len(lines), BATCH_LINES):
            client.write_lines(lines[i : i + BATCH_LINES], precision="s")
        written += len(lines)
    return written, truth


def simulated_fleet(members: int) -> SimFleet:
    """The simulator's fleet; beyond its 9,999-site limit, more sites from a second seed."""
    first = generate_fleet(min(members, MAX_SIM_SITES), seed=1)
    if members <= MAX_SIM_SITES:
        return first
    extra = generate_fleet(members - MAX_SIM_SITES, seed=2).sites
    renumbered = []
    for i, site in enumerate(extra):
        number = MAX_SIM_SITES + i + 1
        renumbered.append(
            dataclasses.replace(
                site, index=number - 1, site_id=f"zw{number:03d}",
                gateway_id=f"gw-zw{number:03d}", device_id=f"zw{number:03d}-inv1",
            )
        )  # fmt: skip
    return SimFleet(seed=first.seed, sites=first.sites + tuple(renumbered))


def run(members: int, interval_s: int, server: Influxd) -> dict[str, float]:
    t = time.perf_counter()
    sim_fleet = simulated_fleet(members)
    sim = Simulation(sim_fleet, START, END, interval_s)
    client = InfluxClient(server.url, f"bench_{members}", timeout_s=600.0)
    client.create_database()
    period = parse_month("2026-03")
    period_s = (int(period.start_utc.timestamp()), int(period.end_utc.timestamp()))
    points, truth_wh = load_influx(client, sim, period_s)
    fleet = to_registry_fleet(sim_fleet, sim.reset_log)
    setup_s = time.perf_counter() - t
    figures: dict[str, float] = {"points": points, "setup_s": setup_s}

    t0 = time.perf_counter()
    readings = load_readings(client, fleet, period)
    t1 = time.perf_counter()
    inputs = SettlementInputs(period, fleet, readings)
    result = settle(inputs)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp) / "2026-03.readings.jsonl.gz", inputs, source=source_label(client))
        t3 = time.perf_counter()
        with temporary_database("sqlite") as engine, Session(engine) as session:
            record_run(
                session, result, fleet=fleet, correct_periods=(), readings_source="bench",
                issued_at=datetime.now(UTC),
            )  # fmt: skip
            session.commit()
        t4 = time.perf_counter()
    total = sum(float(c.totals[0] + c.totals[1]) for c in result.contracts)
    by_site = {c.site_id: c.measured_wh + c.estimated_wh for c in result.contracts}
    settled = np.array([by_site[s.site_id] for s in sim_fleet.sites])
    error_wh = np.abs(settled - truth_wh)
    resolution_wh = np.array([COUNTER_RESOLUTION_WH[s.family] for s in sim_fleet.sites])
    figures.update(
        readings_s=t1 - t0,
        settle_s=t2 - t1,
        dataset_s=t3 - t2,
        ledger_s=t4 - t3,
        total_s=t4 - t0,
        readings_used=sum(r.ts_s.size for r in readings.values()),
        contracts=len(result.contracts),
        incl_vat_eur=total,
        max_error_wh=float(error_wh.max()),
        max_error_pct=float((error_wh / np.maximum(truth_wh, 1.0)).max() * 100),
        max_error_steps=float((error_wh / resolution_wh).max()),
        estimated_kwh=sum(c.estimated_wh for c in result.contracts) / 1000,
        measured_kwh=sum(c.measured_wh for c in result.contracts) / 1000,
    )
    client.query(f'DROP DATABASE "{client.database}"', database="", epoch=None)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[122, 10_000])
    parser.add_argument(
        "--interval-s", type=int, nargs="+", default=[300, 3600],
        help="reading interval written to InfluxDB per size (default 300 s and 3600 s)",
    )  # fmt: skip
    args = parser.parse_args()
    # a plain `kill` still stops the private InfluxDB (its context manager runs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="pvlib")
    intervals = args.interval_s + [args.interval_s[-1]] * (len(args.members) - len(args.interval_s))
    with Influxd.create() as server:
        for members, interval_s in zip(args.members, intervals, strict=False):
            f = run(members, interval_s, server)
            print(
                f"{members:>6} members, readings every {interval_s} s "
                f"({int(f['points']):,} points written in {f['setup_s']:.0f} s, not timed): "
                f"settle 2026-03 in {f['total_s']:.1f} s = InfluxDB read {f['readings_s']:.1f} s "
                f"({int(f['readings_used']):,} readings used) + settle {f['settle_s']:.1f} s "
                f"({int(f['contracts'])} contracts) + data set {f['dataset_s']:.1f} s "
                f"+ ledger {f['ledger_s']:.1f} s; total billed {f['incl_vat_eur']:,.2f} EUR incl. VAT; "
                f"{f['measured_kwh']:,.1f} kWh measured, {f['estimated_kwh']:,.1f} kWh estimated; "
                f"largest difference from the simulator's true energy {f['max_error_wh']:.1f} Wh "
                f"({f['max_error_pct']:.3f} %)",
                flush=True,
            )
            report(
                f"settle_month_s_{members}_members",
                f["total_s"],
                "s",
                at_most(60.0, "issue 6: 10,000 members under 60 s"),
                detail=f"readings every {interval_s} s, {int(f['points']):,} points; "
                f"InfluxDB read {f['readings_s']:.1f} s, settle {f['settle_s']:.1f} s, "
                f"ledger {f['ledger_s']:.1f} s",
            )
            report(
                f"largest_error_counter_steps_{members}_members",
                f["max_error_steps"],
                "steps",
                Goal("<", 1.0, why="docs/settlement.md: within one counter resolution step"),
                detail=f"{f['max_error_wh']:.1f} Wh ({f['max_error_pct']:.3f} %)",
            )


if __name__ == "__main__":
    main()
