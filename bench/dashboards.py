"""How fast the dashboards load: every panel query of every dashboard, timed against InfluxDB.

One command: ``.venv/bin/python bench/dashboards.py [--sites 122] [--days 30]``. It starts a
private InfluxDB, fills it from the fleet simulator (5-minute readings, the collector's point
mapping, rollups and daily_yield, as in production), then runs every committed panel query as
Grafana would (collector.dashboards.panel_queries) and prints per dashboard the total and the
slowest query, and what the rollup saves on the 30-day inverter chart. Last line:
``dashboards: slowest <name> <ms> ms total, slowest query <ms> ms``.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

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
        print(
            f"filled {args.sites} sites x {args.days} days in {time.perf_counter() - started:.0f} s"
        )
        device = sim.fleet.sites[0]
        # Multi-valued variables stay at "All"; the single-valued ones need a value.
        chosen: dict[str, tuple[str, ...] | None] = {
            "device": (device.device_id,),
            "period": ("2026-05",),
        }
        worst: tuple[str, float] = ("", 0.0)
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
            worst_query = max(worst_query, slow_ms)
        detail = panel_queries(load_committed()["inverter-detail"], now=DEMO_NOW, chosen=chosen)
        rollup = next(q.query for q in detail if q.panel_title.startswith("AC power over 30 days"))
        raw = (
            rollup.replace('"ac_power_w_max"', '"ac_power_w"')
            .replace('"ac_power_w_mean"', '"ac_power_w"')
            .replace('FROM "rollup_5m"."inverter"', 'FROM "inverter"')
        )
        print(
            f"30-day chart of one inverter: raw {_time_ms(influx, raw):.1f} ms, "
            f"5-minute rollup {_time_ms(influx, rollup):.1f} ms"
        )
        print(
            f"dashboards: slowest {worst[0]} {worst[1]:.0f} ms total, "
            f"slowest query {worst_query:.0f} ms"
        )


if __name__ == "__main__":
    main()
