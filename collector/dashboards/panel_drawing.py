"""Drawing one dashboard panel with matplotlib from its query results.

Stat, time series, table, bar gauge, state timeline and text panels, with Grafana's units,
thresholds and colours approximated. :mod:`collector.dashboards.screenshots` runs the queries
and places the panels on the dashboard's grid.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from collector.dashboards.panel_queries import PanelQuery
from collector.dashboards.panels import STATE_COLOURS
from collector.timeseries.influx import Series

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
ROW_PX = 30
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


def _times(series: Series) -> list[datetime]:
    return [datetime.fromtimestamp(row[0] / 1000, tz=UTC) for row in series.values]


def _no_value(text: str) -> float | str:
    """Grafana's ``noValue``: a number where it is one ("0"), else shown as text."""
    try:
        return float(text)
    except ValueError:
        return text


def draw_stat(
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
        value = _no_value(str(defaults["noValue"]))
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


def draw_timeseries(
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


def draw_table(
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


def draw_bargauge(
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


def draw_state_timeline(
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


def panel_title(
    panel: Mapping[str, Any], chosen: Mapping[str, tuple[str, ...] | None] | None
) -> str:
    """The panel title with variables replaced, as Grafana shows it."""
    title = str(panel.get("title", ""))
    for name, values in (chosen or {}).items():
        title = title.replace(f"${name}", ", ".join(values) if values else "All")
    return title


def _num(moment: datetime) -> float:
    """Matplotlib's date number of an instant."""
    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def draw_text(ax: Axes, panel: Mapping[str, Any]) -> None:
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
