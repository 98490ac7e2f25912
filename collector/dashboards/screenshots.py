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
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from sqlalchemy import Engine, text

from collector.dashboards.generate import load_committed
from collector.dashboards.panel_queries import PanelQuery, panel_queries, panels, sql_targets
from collector.dashboards.panels import STATE_COLOURS
from collector.timeseries.influx import InfluxClient, InfluxError, Series

log = logging.getLogger(__name__)

_COLOURS = {
    "green": "#56a64b",
    "orange": "#ff9830",
    "red": "#e02f44",
    "blue": "#3274d9",
    "yellow": "#f2cc0c",
    "light-green": "#96d98d",
    "light-blue": "#8ab8ff",
    "gray": "#a0a0a0",
    "purple": "#a352cc",
}
_ROW_PX = 30
#: Cell colours of mapped texts: inverter states, alert severities, gateway status.
_TEXT_COLOURS = {
    **STATE_COLOURS,
    "critical": "red",
    "warning": "orange",
    "info": "light-blue",
    "online": "green",
    "offline": "red",
}


def _colour(name: str) -> str:
    return _COLOURS.get(name, name)


def _format(value: float | str | None, unit: str, decimals: int | None = None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    d = 1 if decimals is None else decimals
    if unit == "watt":
        return f"{value / 1000:.{max(d, 1)}f} kW" if abs(value) >= 1000 else f"{value:.0f} W"
    if unit == "kwatth":
        return f"{value / 1000:.1f} MWh" if abs(value) >= 10000 else f"{value:.{d}f} kWh"
    if unit == "percentunit":
        return f"{value * 100:.{d}f} %"
    suffix = {"celsius": " °C", "volt": " V", "amp": " A"}.get(unit, "")
    if unit.startswith("suffix:"):
        suffix = " " + unit.split(":", 1)[1].strip()
    return f"{value:.{d if unit != 'none' else 0}f}{suffix}"


def _threshold_colour(value: float | None, defaults: Mapping[str, Any]) -> str:
    stepsdef = (defaults.get("thresholds") or {}).get("steps") or [{"value": None, "color": "blue"}]
    colour = stepsdef[0]["color"]
    if isinstance(value, (int, float)):
        for step in stepsdef[1:]:
            if step["value"] is not None and value >= step["value"]:
                colour = step["color"]
    return _colour(colour)


def _label(q: PanelQuery, series: Series, column: str) -> str:
    if q.alias:
        label = q.alias
        for key, val in series.tags.items():
            label = label.replace(f"$tag_{key}", val)
        return label
    tags = ", ".join(series.tags.values())
    return f"{column} {tags}".strip() if len(series.columns) > 2 or not tags else tags


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


def _times(series: Series) -> list[datetime]:
    return [datetime.fromtimestamp(row[0] / 1000, tz=UTC) for row in series.values]


def _draw_stat(
    ax: Axes, panel: Mapping[str, Any], results: Sequence[tuple[PanelQuery, list[Series]]]
) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    value: float | str | None = None
    for _q, series in results:
        for s in series:
            values = [row[-1] for row in s.values if row[-1] is not None]
            if values:
                value = values[-1]
    if value is None and defaults.get("noValue") is not None:
        value = float(defaults["noValue"])
    colour = _threshold_colour(value if not isinstance(value, str) else None, defaults)
    if isinstance(value, str):
        first: dict[str, Any] = next(iter(defaults.get("mappings") or []), {})
        mapping: dict[str, Any] = first.get("options", {})
        colour = _colour(mapping.get(value, {}).get("color", "blue"))
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, color=colour, alpha=0.85))
    ax.text(
        0.5,
        0.42,
        _format(value, defaults.get("unit", "none"), defaults.get("decimals")),
        ha="center",
        va="center",
        fontsize=17,
        color="white",
        weight="bold",
        transform=ax.transAxes,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_timeseries(
    ax: Axes, panel: Mapping[str, Any], results: Sequence[tuple[PanelQuery, list[Series]]]
) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    bars = defaults.get("custom", {}).get("drawStyle") == "bars"
    overrides = {
        o["matcher"]["options"]: o["properties"] for o in panel["fieldConfig"].get("overrides", [])
    }
    drawn = 0
    for q, series in results:
        for s in series[:12]:
            times = _times(s)
            for col_index, column in enumerate(s.columns[1:], start=1):
                ys = [row[col_index] for row in s.values]
                label = _label(q, s, column) if len(s.columns) <= 2 else column
                style: dict[str, Any] = {"linewidth": 1.2}
                for prop in overrides.get(label, []):
                    if prop["id"] == "color":
                        style["color"] = prop["value"].get("fixedColor")
                    if prop["id"] == "custom.lineWidth":
                        style["linewidth"] = prop["value"]
                    if prop["id"] == "custom.lineStyle":
                        style["linestyle"] = "--"
                points = [(t, y) for t, y in zip(times, ys, strict=True) if y is not None]
                if not points:
                    continue
                xs, vals = zip(*points, strict=True)
                if bars:
                    ax.bar(
                        xs,
                        vals,
                        width=(xs[-1] - xs[0]) / max(len(xs), 1) * 0.8 if len(xs) > 1 else 0.02,
                        label=label,
                        alpha=0.7,
                    )
                else:
                    ax.plot(xs, vals, label=label, **style)
                drawn += 1
    unit = defaults.get("unit", "")
    ax.set_ylabel(_format(None, unit).replace("–", "") or unit.replace("suffix: ", ""), fontsize=7)
    if unit == "watt":
        ax.set_ylabel("W", fontsize=7)
    elif unit == "kwatth":
        ax.set_ylabel("kWh", fontsize=7)
    elif unit == "percentunit":
        ax.set_ylabel("ratio", fontsize=7)
    elif unit.startswith("suffix:"):
        ax.set_ylabel(unit.split(":", 1)[1].strip(), fontsize=7)
    formatter = mdates.DateFormatter("%d-%m\n%H:%M")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.tick_params(labelsize=6)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=5.5, loc="upper left", ncol=3 if drawn > 6 else 1, framealpha=0.6)
    else:
        ax.text(0.5, 0.5, "No data", ha="center", transform=ax.transAxes)


def _table_rows(
    panel: Mapping[str, Any], results: Sequence[tuple[PanelQuery, list[Series]]]
) -> tuple[list[str], list[list[Any]]]:
    frames: list[list[dict[str, Any]]] = []
    for _q, series in results:
        rows: list[dict[str, Any]] = []
        for s in series:
            for record in s.records():
                record.update(s.tags)
                rows.append(record)
        frames.append(rows)
    transforms = {t["id"]: t.get("options", {}) for t in panel.get("transformations") or []}
    if "joinByField" in transforms and len(frames) > 1:
        key = transforms["joinByField"]["byField"]
        merged: dict[str, dict[str, Any]] = {}
        for index, rows in enumerate(frames, start=1):
            for row in rows:
                target = merged.setdefault(row.get(key, ""), {})
                for column, value in row.items():
                    name = f"time {index}" if column == "time" else column
                    target.setdefault(name, value)
        table = list(merged.values())
    else:
        table = [row for rows in frames for row in rows]
    organize = transforms.get("organize", {})
    rename = {k.replace("Time", "time"): v for k, v in organize.get("renameByName", {}).items()}
    exclude = {k.replace("Time", "time") for k in organize.get("excludeByName", {})}
    overrides = {
        o["matcher"]["options"]: o["properties"] for o in panel["fieldConfig"].get("overrides", [])
    }
    hidden = {
        name for name, props in overrides.items() if any(p["id"] == "custom.hidden" for p in props)
    }
    columns: list[str] = []
    for row in table:
        for column in row:
            if (
                column not in columns
                and column not in exclude
                and column.replace("time", "Time") not in hidden
            ):
                columns.append(column)
    order = organize.get("indexByName", {})
    if order:
        columns.sort(key=lambda c: order.get(c.replace("time", "Time"), 99))
    headers = [rename.get(c, c) for c in columns]
    body = []
    for row in table[:14]:
        cells = []
        for column, header in zip(columns, headers, strict=True):
            value = row.get(column)
            props = {p["id"]: p["value"] for p in overrides.get(header, overrides.get(column, []))}
            unit = str(props.get("unit", "none"))
            mapped = {}
            for mapping in props.get("mappings") or []:
                mapped.update(_as_json(mapping).get("options", {}))
            if str(value) in mapped:
                value = _as_json(mapped[str(value)]).get("text", value)
            elif (column.startswith("time") or unit.startswith("dateTime")) and isinstance(
                value, (int, float)
            ):
                value = datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%d-%m %H:%M")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _format(
                    float(value), str(props.get("unit", "none")), props.get("decimals", 2)
                )
            cells.append("" if value is None else str(value))
        body.append(cells)
    headers = [
        next((p["value"] for p in overrides.get(c, []) if p["id"] == "displayName"), h)
        for c, h in zip(columns, headers, strict=True)
    ]
    return headers, body


def _as_json(value: Any) -> dict[str, Any]:
    """SDK objects (ValueMap, ValueMappingResult) or plain JSON as a dict."""
    to_json = getattr(value, "to_json", None)
    data: dict[str, Any] = to_json() if callable(to_json) else dict(value)
    return data


def _draw_table(
    ax: Axes, panel: Mapping[str, Any], results: Sequence[tuple[PanelQuery, list[Series]]]
) -> None:
    headers, body = _table_rows(panel, results)
    ax.axis("off")
    if not body:
        ax.text(0.5, 0.5, "No data", ha="center", transform=ax.transAxes)
        return
    table = ax.table(cellText=body, colLabels=headers, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(6)
    table.scale(1, 1.1)
    for (r, _c), cell in table.get_celld().items():
        cell.set_edgecolor("#dddddd")
        if r == 0:
            cell.set_facecolor("#eef2f7")
        text = cell.get_text().get_text()
        if text in _TEXT_COLOURS:
            cell.set_facecolor(_colour(_TEXT_COLOURS[text]))


def _draw_bargauge(
    ax: Axes, panel: Mapping[str, Any], results: Sequence[tuple[PanelQuery, list[Series]]]
) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    labels: list[str] = []
    values: list[float] = []
    for q, series in results:
        for s in series:
            vals = [row[1] for row in s.values if row[1] is not None]
            if vals:
                labels.append(_label(q, s, s.columns[1]))
                values.append(float(vals[-1]))
    if not values:
        ax.text(0.5, 0.5, "No data", ha="center", transform=ax.transAxes)
        return
    pairs = sorted(zip(labels, values, strict=True))[:16]
    ys = range(len(pairs))
    ax.barh(
        list(ys), [v for _l, v in pairs], color=[_threshold_colour(v, defaults) for _l, v in pairs]
    )
    ax.set_yticks(list(ys), [label for label, _v in pairs], fontsize=6)
    ax.invert_yaxis()
    for y, (_l, v) in zip(ys, pairs, strict=True):
        ax.text(
            v,
            y,
            " " + _format(v, defaults.get("unit", "none"), defaults.get("decimals")),
            va="center",
            fontsize=6,
        )
    ax.tick_params(labelsize=6)


def _draw_state_timeline(
    ax: Axes, panel: Mapping[str, Any], results: Sequence[tuple[PanelQuery, list[Series]]]
) -> None:
    for _q, series in results:
        for s in series:
            times = _times(s)
            for (t0, row), t1 in zip(
                zip(times, s.values, strict=True), times[1:] + times[-1:], strict=True
            ):
                ax.axvspan(
                    _num(t0),
                    _num(t1 if t1 > t0 else t0 + timedelta(minutes=5)),
                    color=_colour(STATE_COLOURS.get(str(row[1]), "gray")),
                    lw=0,
                )
    handles = [Rectangle((0, 0), 1, 1, color=_colour(c)) for c in STATE_COLOURS.values()]
    ax.legend(handles, list(STATE_COLOURS), fontsize=5.5, ncol=9, loc="lower right", framealpha=0.8)
    ax.set_yticks([])
    formatter = mdates.DateFormatter("%d-%m %H:%M")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.tick_params(labelsize=6)


def _title(panel: Mapping[str, Any], chosen: Mapping[str, tuple[str, ...] | None] | None) -> str:
    """The panel title with variables replaced, as Grafana shows it."""
    title = str(panel.get("title", ""))
    for name, values in (chosen or {}).items():
        title = title.replace(f"${name}", ", ".join(values) if values else "All")
    return title


def _num(moment: datetime) -> float:
    """Matplotlib's date number of an instant."""
    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def _draw_text(ax: Axes, panel: Mapping[str, Any]) -> None:
    ax.axis("off")
    content = panel.get("options", {}).get("content", "")
    if panel["type"] == "alertlist":
        content = "Grafana alert list: firing and pending rules of folder Zonnewijk\n(collector silent, InfluxDB write errors, fleet produces nothing in daylight)."
    wrapped = "\n".join(
        textwrap.fill(p.replace("**", "").replace("`", ""), 95) for p in content.split("\n\n")
    )
    ax.text(
        0.01, 0.97, wrapped, va="top", ha="left", fontsize=6.5, transform=ax.transAxes, wrap=True
    )


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
    height_in = width_in * rows * _ROW_PX / 1800 + 0.6
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
            frame.set_title(_title(panel, chosen), fontsize=8, loc="left")
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
            ax.set_title(_title(panel, chosen), fontsize=8, loc="left")
        results = by_panel.get(int(panel.get("id", 0)), [])
        if kind == "stat":
            _draw_stat(ax, panel, results)
        elif kind == "timeseries":
            _draw_timeseries(ax, panel, results)
        elif kind == "table":
            _draw_table(ax, panel, results)
        elif kind == "bargauge":
            _draw_bargauge(ax, panel, results)
        elif kind == "state-timeline":
            _draw_state_timeline(ax, panel, results)
        else:
            _draw_text(ax, panel)
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
