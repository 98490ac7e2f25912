"""Pictures of the dashboards: each panel's query results drawn with matplotlib in its layout.

Grafana cannot run here, so ``docs/screenshots/dashboard-<name>.png`` are drawn from the same
queries Grafana would run (:mod:`collector.dashboards.panel_queries`) against a real InfluxDB,
placed on the dashboard's 24-column grid. They show what data each panel gets, with Grafana's
units, thresholds and colours approximated; they are not pixel copies of Grafana.

``zonnewijk dashboards screenshots --demo`` starts a private InfluxDB, fills it with the fleet
simulator (collector/simulator/), computes ``daily_yield`` and draws every dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sqlalchemy import Engine, text

from collector.dashboards.generate import load_committed
from collector.dashboards.panel_drawing import (
    ROW_PX,
    draw_bargauge,
    draw_stat,
    draw_state_timeline,
    draw_table,
    draw_text,
    draw_timeseries,
    panel_title,
)
from collector.dashboards.panel_queries import PanelQuery, panel_queries, panels, sql_targets
from collector.timeseries.influx import InfluxClient, InfluxError, Series

log = logging.getLogger(__name__)


def _run(influx: InfluxClient, q: PanelQuery) -> list[Series]:
    try:
        return influx.query(q.query)[0]
    except InfluxError as exc:
        log.warning("%s / %s: %s", q.panel_title, q.ref_id, exc)
        return []


def _run_sql(store: Engine | None, q: PanelQuery) -> list[Series]:
    """Rows of a SQL target as series: a table is one series; a time series (columns time,
    metric, value) one series per metric, time in ms like InfluxDB's answers."""
    if store is None:
        return []
    with store.connect() as connection:
        result = connection.execute(text(q.query))
        columns = tuple(result.keys())
        rows = [tuple(_plain(v) for v in row) for row in result]
    if q.result_format != "time_series":
        return [Series(q.panel_title, columns, tuple(rows))]
    by_metric: dict[str, list[tuple[Any, ...]]] = {}
    t, m, v = columns.index("time"), columns.index("metric"), columns.index("value")
    for row in rows:
        by_metric.setdefault(str(row[m]), []).append((float(row[t]) * 1000, row[v]))
    return [
        Series(metric, ("time", "value"), tuple(values), {"metric": metric})
        for metric, values in by_metric.items()
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return value


def render_dashboard(
    dashboard: Mapping[str, Any],
    influx: InfluxClient,
    path: Path,
    *,
    now: datetime,
    chosen: Mapping[str, tuple[str, ...] | None] | None = None,
    store: Engine | None = None,
) -> Path:
    """Draw one dashboard to a PNG file; SQL panels read ``store`` (none: drawn empty)."""
    queries = panel_queries(dashboard, now=now, chosen=chosen)
    by_panel: dict[int, list[tuple[PanelQuery, list[Series]]]] = {}
    for q in queries:
        live = q
        if "_internal" in q.raw:  # InfluxDB's own statistics are live
            live = next(
                p
                for p in panel_queries(dashboard, now=datetime.now(UTC), chosen=chosen)
                if p.panel_id == q.panel_id and p.ref_id == q.ref_id
            )
        if q.language == "sql":
            by_panel.setdefault(q.panel_id, []).append((q, _run_sql(store, q)))
            continue
        by_panel.setdefault(q.panel_id, []).append((q, _run(influx, live)))
    all_panels = list(panels(dashboard))
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in all_panels)
    width_in = 18.0
    height_in = width_in * rows * ROW_PX / 1800 + 0.6
    fig = plt.figure(figsize=(width_in, height_in), dpi=100)
    fig.patch.set_facecolor("#f4f5f5")
    title = dashboard["title"]
    variables = ", ".join(
        f"{v['name']} = {'All' if (chosen or {}).get(v['name']) is None else ','.join((chosen or {})[v['name']] or ())}"
        for v in dashboard.get("templating", {}).get("list", [])
    )
    fig.suptitle(
        f"{title}   ({variables}; {now:%Y-%m-%d %H:%M} UTC)", x=0.01, ha="left", fontsize=11
    )
    top = 1 - 0.6 / height_in
    for panel in all_panels:
        g = panel["gridPos"]
        left = g["x"] / 24 + 0.004
        bottom = top - (g["y"] + g["h"]) / rows * top + 0.012
        box = (left, bottom, g["w"] / 24 - 0.012, g["h"] / rows * top - 0.04)
        kind = panel["type"]
        if kind in ("timeseries", "bargauge", "state-timeline"):
            inset = 0.035 if kind != "bargauge" else 0.06
            frame = fig.add_axes(box)
            frame.set_xticks([])
            frame.set_yticks([])
            frame.set_facecolor("white")
            frame.set_title(panel_title(panel, chosen), fontsize=8, loc="left")
            pad_y = 0.22 if kind == "state-timeline" else 0.1
            ax = fig.add_axes(
                (
                    box[0] + inset,
                    box[1] + box[3] * pad_y,
                    box[2] - inset - 0.006,
                    box[3] * (0.95 - pad_y),
                )
            )
        else:
            ax = fig.add_axes(box)
            ax.set_title(panel_title(panel, chosen), fontsize=8, loc="left")
        results = by_panel.get(int(panel.get("id", 0)), [])
        if kind == "stat":
            draw_stat(ax, panel, results)
        elif kind == "timeseries":
            draw_timeseries(ax, panel, results)
        elif kind == "table":
            draw_table(ax, panel, results)
        elif kind == "bargauge":
            draw_bargauge(ax, panel, results)
        elif kind == "state-timeline":
            draw_state_timeline(ax, panel, results)
        else:
            draw_text(ax, panel)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def render_all(
    influx: InfluxClient,
    out: Path,
    *,
    now: datetime | None = None,
    chosen: Mapping[str, Mapping[str, tuple[str, ...] | None]] | None = None,
    device: str | None = None,
    store: Engine | None = None,
) -> list[Path]:
    """Draw every committed dashboard into ``out/dashboard-<name>.png``; the dashboards on the
    relational store only when ``store`` is given."""
    moment = now or datetime.now(UTC)
    written: list[Path] = []
    for name, dashboard in load_committed().items():
        uses_store = any(True for p in panels(dashboard) for _t in sql_targets(p))
        if uses_store and store is None:
            continue
        picks: dict[str, tuple[str, ...] | None] = dict((chosen or {}).get(name, {}))
        if name == "inverter-detail" and "device" not in picks:
            first = device or _first_device(influx)
            picks["device"] = (first,)
        written.append(
            render_dashboard(
                dashboard,
                influx,
                out / f"dashboard-{name}.png",
                now=moment,
                chosen=picks,
                store=store,
            )
        )
    return written


def _first_device(influx: InfluxClient) -> str:
    rows = influx.query_records('SHOW TAG VALUES FROM "inverter" WITH KEY = "device"')
    if not rows:
        raise InfluxError("no devices in InfluxDB: nothing to draw")
    return str(rows[0]["value"])


def demo(out: Path, *, sites: int = 12, days: int = 35, seed: int = 3) -> list[Path]:
    """Private InfluxDB and PostgreSQL schema filled from the simulator, then every picture."""
    from collector.dashboards.monitored_influxd import MonitoredInfluxd
    from collector.dashboards.sample_store import fill_alerts, fill_settlement
    from collector.dashboards.simulated_data import fill_simulated
    from collector.store.db import session_factory
    from collector.store.testing import temporary_database

    with MonitoredInfluxd.create() as server:
        assert isinstance(server, MonitoredInfluxd)
        influx = InfluxClient(server.url, "zonnewijk")
        sim = fill_simulated(influx, sites=sites, days=days, seed=seed)
        server.wait_for_statistics()
        faulty = sim.fleet.sites[-1]  # in fault state since the morning (see _demo_faults)
        chosen: dict[str, Mapping[str, tuple[str, ...] | None]] = {
            "inverter-detail": {"gateway": (faulty.gateway_id,), "device": (faulty.device_id,)},
            "alerts-ledger": {"period": ("2026-05",)},
        }
        with temporary_database("postgresql") as store:
            sessions = session_factory(store)
            fill_alerts(sessions, sim.registry, sim.now, fault_device=faulty.device_id)
            fill_settlement(sessions, influx, sim.registry, "2026-05", sim.now)
            return render_all(influx, out, now=sim.now, chosen=chosen, store=store)
