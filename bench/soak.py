"""Soak (issue 18, item 5): a gateway and the collector for many simulated days, flat or not.

    .venv/bin/python bench/soak.py [--days 3] [--inverters 200] [--sample-every 2]

Runs the real gateway (``zonnewijk-gateway run``, its own process) polling ``--inverters``
simulated SunSpec inverters each every 1 s, a private Mosquitto, the real collector
(``zonnewijk collect``, its own process) and a private InfluxDB, until ``--days`` simulated
days of readings were polled (a simulated day: 8,640 polls, one inverter's day at the
production interval of 10 s; ``bench/_soak.py`` states what is compressed and what is not).
Samples RSS and open file descriptors of gateway, collector and broker, the gateway's spool
(bytes of the SQLite file and WAL, rows) and the collector's queue over the run, fits a
least-squares line to each after the first quarter (warm-up) and reports its slope per
simulated day against its goal (``_soak.GOALS``: flat).

Figures: each slope per simulated day, the simulated days covered, the readings polled and
stored (every reading polled is stored or still in the spool when the gateway stops).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _figures import Goal, at_least, at_most, report
from _soak import READINGS_PER_SIMULATED_DAY, SOAK_INTERVAL_S, run_soak, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--days", type=float, default=3.0, help="simulated days to run")
    parser.add_argument("--inverters", type=int, default=200, help="inverters on the gateway")
    parser.add_argument("--sample-every", type=float, default=2.0, help="sampling period [s]")
    parser.add_argument(
        "--warmup", type=float, default=0.25, help="fraction of the run left out of the fits"
    )
    args = parser.parse_args()
    if not 1 <= args.inverters <= 247:
        parser.error("--inverters must be 1..247 (Modbus unit ids)")
    speedup = args.inverters * 10 / SOAK_INTERVAL_S
    print(
        f"soak: {args.days:g} simulated days ({args.days * READINGS_PER_SIMULATED_DAY:,.0f} "
        f"readings), {args.inverters} inverters polled every {SOAK_INTERVAL_S:g} s "
        f"= {speedup:g}x one inverter at 10 s"
    )
    with tempfile.TemporaryDirectory(prefix="zw-bench-soak-") as tmp:
        r = run_soak(
            days=args.days,
            inverters=args.inverters,
            workdir=Path(tmp),
            sample_every_s=args.sample_every,
        )
    if len(r.samples) < 8:
        print(f"only {len(r.samples)} samples: too few for a slope")
        return 1
    found = r.distinct_stored + r.spool_left
    print(
        f"ran {r.seconds:.0f} s: {r.simulated_days:.2f} simulated days, {r.readings_polled} "
        f"readings polled, {r.readings_stored} stored by the collector, {r.distinct_stored} "
        f"distinct points in InfluxDB, {r.spool_left} left in the spool; "
        f"{len(r.samples)} samples; exit codes gateway {r.gateway_exit}, collector "
        f"{r.collector_exit}"
    )
    series = r.series()
    first, last = r.samples[0].values, r.samples[-1].values
    for goal, slope, met in verdicts(r.days, series, warmup_fraction=args.warmup):
        print(
            f"  {goal.series:<17} first {first[goal.series]:9.2f} last "
            f"{last[goal.series]:9.2f} {goal.unit:<8} slope {slope:+9.4f}/day "
            f"goal < {goal.max_per_day:g}: {'ok' if met else 'GROWING'}"
        )
        report(
            f"{goal.series}_slope_per_day",
            slope,
            f"{goal.unit}/day",
            Goal("<", goal.max_per_day, why=goal.why),
            detail=f"first {first[goal.series]:.2f}, last {last[goal.series]:.2f} {goal.unit}; "
            f"fit after the first {args.warmup:.0%}",
        )
    report(
        "simulated_days",
        r.simulated_days,
        "days",
        at_least(args.days, "the --days asked for"),
        detail=f"{r.readings_polled} readings in {r.seconds:.0f} s, {args.inverters} inverters "
        f"every {SOAK_INTERVAL_S:g} s ({speedup:g}x)",
    )
    report(
        "unaccounted_readings",
        max(0, r.readings_polled - found),
        "readings",
        at_most(0, "issue 18: nothing lost"),
        detail=f"{r.readings_polled} polled; {r.distinct_stored} in InfluxDB, {r.spool_left} "
        "in the spool",
    )
    ok = r.gateway_exit == 0 and r.collector_exit == 0 and found >= r.readings_polled
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
