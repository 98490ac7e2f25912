"""Panel helpers: the few panel kinds the dashboards use, with units, thresholds and colours.

Each helper returns an SDK panel builder positioned on Grafana's 24-column grid, with the
provisioned InfluxDB data source and its InfluxQL targets. Colours follow one rule across
the dashboards: green is fine, orange needs a look, red needs action.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, stat, statetimeline, table
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from collector.dashboards.targets import INFLUX, InfluxQL

GREEN = "green"
ORANGE = "orange"
RED = "red"
BLUE = "blue"

#: Colour of each normalised inverter state (zonnewijk_wire.InverterState).
STATE_COLOURS: dict[str, str] = {
    "producing": GREEN,
    "throttled": "yellow",
    "starting": "light-green",
    "sleeping": BLUE,
    "standby": "light-blue",
    "shutting_down": ORANGE,
    "off": "gray",
    "fault": RED,
    "unknown": "purple",
}


def grid(x: int, y: int, w: int, h: int) -> dm.GridPos:
    """A position on the dashboard grid (24 columns; one row unit is 30 px)."""
    return dm.GridPos(x=x, y=y, w=w, h=h)


def steps(*pairs: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds: ``(None, base colour), (value, colour), ...``."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in pairs])
    )


def state_mappings() -> list[dm.ValueMapping]:
    """Value mappings that colour each inverter state."""
    return [
        dm.ValueMap(
            options={
                state: dm.ValueMappingResult(color=colour, index=i, text=state.replace("_", " "))
                for i, (state, colour) in enumerate(STATE_COLOURS.items())
            }
        )
    ]


def _reduce(calc: str, fields: str | None = None) -> common.ReduceDataOptions:
    options = common.ReduceDataOptions().calcs([calc]).values(False)
    return options.fields(fields) if fields else options


def stat_panel(
    title: str,
    targets: Sequence[InfluxQL],
    *,
    pos: dm.GridPos,
    unit: str,
    thresholds: db.ThresholdsConfig | None = None,
    decimals: int | None = None,
    time_from: str | None = None,
    description: str = "",
    calc: str = "lastNotNull",
    text: bool = False,
) -> stat.Panel:
    """A single big number (the last value of the query unless ``calc`` says otherwise).

    ``text`` shows a string field (e.g. a state): Grafana's stat shows numeric fields only
    unless the fields option selects others.
    """
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(INFLUX)
        .grid_pos(pos)
        .targets(list(targets))
        .unit(unit)
        .reduce_options(_reduce(calc, "/.*/" if text else None))
        .color_mode(
            cm.BigValueColorMode.BACKGROUND if thresholds or text else cm.BigValueColorMode.VALUE
        )
        .graph_mode(cm.BigValueGraphMode.NONE)
        .thresholds(thresholds or steps((None, BLUE)))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if time_from:
        panel = panel.time_from(time_from)
    return panel


def timeseries_panel(
    title: str,
    targets: Sequence[InfluxQL],
    *,
    pos: dm.GridPos,
    unit: str,
    description: str = "",
    bars: bool = False,
    thresholds: db.ThresholdsConfig | None = None,
    min_value: float | None = None,
    time_from: str | None = None,
    overrides: Sequence[tuple[str, list[dm.DynamicConfigValue]]] = (),
) -> ts.Panel:
    """A graph over time; ``bars`` for per-day or per-interval quantities."""
    panel = (
        ts.Panel()
        .title(title)
        .description(description)
        .datasource(INFLUX)
        .grid_pos(pos)
        .targets(list(targets))
        .unit(unit)
        .line_width(1)
        .fill_opacity(10 if not bars else 80)
        .draw_style(cm.GraphDrawStyle.BARS if bars else cm.GraphDrawStyle.LINE)
        .span_nulls(False)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
        )
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI))
    )
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.DASHED)
        )
    if min_value is not None:
        panel = panel.min(min_value)
    if time_from:
        panel = panel.time_from(time_from)
    for name, properties in overrides:
        panel = panel.override_by_name(name, properties)
    return panel


def table_panel(
    title: str,
    targets: Sequence[InfluxQL],
    *,
    pos: dm.GridPos,
    description: str = "",
    transformations: Sequence[dm.DataTransformerConfig] = (),
    overrides: Sequence[tuple[str, list[dm.DynamicConfigValue]]] = (),
    sort_by: str | None = None,
    sort_desc: bool = False,
    time_from: str | None = None,
    unit: str | None = None,
) -> table.Panel:
    """A table; targets should use ``result_format="table"``."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(INFLUX)
        .grid_pos(pos)
        .targets(list(targets))
        .show_header(True)
        .cell_height(cm.TableCellHeight.SM)
        .transformations(list(transformations))
    )
    if unit:
        panel = panel.unit(unit)
    if sort_by:
        panel = panel.sort_by(
            [common.TableSortByFieldState().display_name(sort_by).desc(sort_desc)]
        )
    if time_from:
        panel = panel.time_from(time_from)
    for name, properties in overrides:
        panel = panel.override_by_name(name, properties)
    return panel


def bargauge_panel(
    title: str,
    targets: Sequence[InfluxQL],
    *,
    pos: dm.GridPos,
    unit: str,
    thresholds: db.ThresholdsConfig,
    description: str = "",
    time_from: str | None = None,
    decimals: int | None = None,
) -> bargauge.Panel:
    """Horizontal bars, one per series (e.g. per site or per member)."""
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(INFLUX)
        .grid_pos(pos)
        .targets(list(targets))
        .unit(unit)
        .min(0)
        .thresholds(thresholds)
        .reduce_options(_reduce("lastNotNull"))
        .display_mode(cm.BarGaugeDisplayMode.BASIC)
        .orientation(cm.VizOrientation.HORIZONTAL)
        .show_unfilled(True)
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if time_from:
        panel = panel.time_from(time_from)
    return panel


def state_timeline_panel(
    title: str, targets: Sequence[InfluxQL], *, pos: dm.GridPos, description: str = ""
) -> statetimeline.Panel:
    """Inverter states over time, coloured by :data:`STATE_COLOURS`."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(INFLUX)
        .grid_pos(pos)
        .targets(list(targets))
        .mappings(state_mappings())
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .thresholds(steps((None, "gray")))
        .show_value(cm.VisibilityMode.NEVER)
        .merge_values(True)
        .row_height(0.8)
        .fill_opacity(80)
        .line_width(0)
    )


def alert_list_panel(title: str, *, pos: dm.GridPos, description: str = "") -> db.Panel:
    """Grafana's alert list: firing and pending rules of the Zonnewijk folder."""
    options: dict[str, Any] = {
        "viewMode": "list",
        "groupMode": "default",
        "groupBy": [],
        "maxItems": 20,
        "sortOrder": 3,
        "dashboardAlerts": False,
        "alertName": "",
        "alertInstanceLabelFilter": "",
        "stateFilter": {"firing": True, "pending": True, "noData": True, "error": True},
    }
    return (
        db.Panel()
        .type("alertlist")
        .title(title)
        .description(description)
        .grid_pos(pos)
        .options(options)
    )


def override(**properties: Any) -> list[dm.DynamicConfigValue]:
    """Field-override properties, e.g. ``override(unit="kwatth", decimals=1)``."""
    names = {"display_name": "displayName", "custom_width": "custom.width"}
    return [dm.DynamicConfigValue(id_val=names.get(k, k), value=v) for k, v in properties.items()]


def transformation(kind: str, options: dict[str, Any]) -> dm.DataTransformerConfig:
    """A Grafana transformation (e.g. ``joinByField``, ``organize``)."""
    return dm.DataTransformerConfig(id_val=kind, options=options)


def text_panel(title: str, content: str, *, pos: dm.GridPos) -> db.Panel:
    """A markdown note for operators."""
    return (
        db.Panel()
        .type("text")
        .title(title)
        .grid_pos(pos)
        .options({"mode": "markdown", "content": content})
    )
