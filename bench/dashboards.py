"""How fast the dashboards load: every panel query of every dashboard, timed against InfluxDB.

One command: ``.venv/bin/python bench/dashboards.py [--sites 122] [--days 30]``. It starts a
private InfluxDB, fills it from the fleet simulator (5-minute readings, the collector's point
mapping, rollups and daily_yield, as in production), then runs every committed panel query as
Grafana would (collector.dashboards.panel_queries) and prints per dashboard the total and the
slowest query, and what the rollup saves on the 30-day inverter chart. Last line:
``dashboards: slowest <name> <ms> ms total, slowest query <ms> ms``.

Figures (``bench/_figures.py``): the slowest dashboard's queries together and the slowest single
query. Goals (a budget, no issue set one): a dashboard's queries within 2 s, no query over 1 s,
so a dashboard an operator opens is complete within about two seconds even when Grafana runs
its queries one after another.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from _figures import at_most, report

from collector.dashboards.generate import load_committed
from collector.dashboards.monitored_influxd import MonitoredInfluxd
from collector.dashboards.panel_queries import panel_queries
from collector.dashboards.simulated_data import DEMO_NOW, fill_simulated
from collector.timeseries.influx import InfluxClient


def _time_ms(influx: InfluxClient, query: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        influx.query(query)
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=122)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=int, default=300, help="reading interval [s]")
    args = parser.parse_args()
    with MonitoredInfluxd.create() as server:
        influx = InfluxClient(server.url, "zonnewijk", timeout_s=120)
        started = time.perf_counter()
        sim = fill_simulated(
            influx, sites=args.sites, days=args.days, interval_s=args.interval, progress=True
        )
        fill_s = time.perf_counter() - started
        print(f"filled {args.sites} sites x {args.days} days in {fill_s:.0f} s")
        device = sim.fleet.sites[0]
        # Multi-valued variables stay at "All"; the single-valued ones need a value.
        chosen: dict[str, tuple[str, ...] | None] = {
            "device": (device.device_id,),
            "period": ("2026-05",),
        }
        worst: tuple[str, float] = ("", 0.0)
        per_dashboard: list[tuple[str, float, int, float, str]] = []
        worst_query = 0.0
        for name, dashboard in load_committed().items():
            queries = [
                q
                for q in panel_queries(dashboard, now=DEMO_NOW, chosen=chosen)
                if q.language == "influxql"
            ]
            if not queries:
                continue
            timings = []
            for q in queries:
                if "_internal" in q.raw:
                    live = panel_queries(dashboard, now=datetime.now(UTC), chosen=chosen)
                    q = next(p for p in live if p.panel_id == q.panel_id and p.ref_id == q.ref_id)
                timings.append((_time_ms(influx, q.query), q.panel_title))
            total = sum(t for t, _ in timings)
            slow_ms, slow_title = max(timings)
            print(
                f"{name:22s} {len(queries):3d} queries {total:8.1f} ms; slowest {slow_ms:7.1f} ms ({slow_title})"
            )
            if total > worst[1]:
                worst = (name, total)
            per_dashboard.append((name, total, len(queries), slow_ms, slow_title))
            worst_query = max(worst_query, slow_ms)
        detail = panel_queries(load_committed()["inverter-detail"], now=DEMO_NOW, chosen=chosen)
        rollup = next(q.query for q in detail if q.panel_title.startswith("AC power over 30 days"))
        raw = (
            rollup.replace('"ac_power_w_max"', '"ac_power_w"')
            .replace('"ac_power_w_mean"', '"ac_power_w"')
            .replace('FROM "rollup_5m"."inverter"', 'FROM "inverter"')
        )
        raw_ms, rollup_ms = _time_ms(influx, raw), _time_ms(influx, rollup)
        print(
            f"30-day chart of one inverter: raw {raw_ms:.1f} ms, 5-minute rollup {rollup_ms:.1f} ms"
        )
        print(
            f"dashboards: slowest {worst[0]} {worst[1]:.0f} ms total, "
            f"slowest query {worst_query:.0f} ms"
        )
    for name, total, count, slow_ms, slow_title in per_dashboard:
        report(
            f"{name}_ms",
            total,
            "ms",
            detail=f"{count} queries; slowest {slow_ms:.0f} ms ({slow_title})",
        )
    budget = "a dashboard complete within about 2 s"
    report("slowest_dashboard_ms", worst[1], "ms", at_most(2000.0, budget), detail=worst[0])
    report("slowest_query_ms", worst_query, "ms", at_most(1000.0, budget))
    report(
        "rollup_vs_raw_30_day_chart",
        rollup_ms / raw_ms,
        "x",
        detail=f"{rollup_ms:.1f} ms against {raw_ms:.1f} ms raw at {args.interval} s readings",
    )
    report(
        "fill_s",
        fill_s,
        "s",
        detail=f"{args.sites} sites x {args.days} days at {args.interval} s, not timed above",
    )


if __name__ == "__main__":
    main()
