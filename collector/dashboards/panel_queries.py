"""Every InfluxQL query of a dashboard JSON, as Grafana would send it to InfluxDB.

Reads the committed JSON (not the builder code), so what is proven is what Grafana loads.
Used by the panel-query tests and by the screenshot renderer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector.dashboards.grafana_macros import (
    DEFAULT_MIN_INTERVAL,
    PX_PER_COLUMN,
    MacroError,
    TimeRange,
    Variable,
    dashboard_range,
    panel_range,
    query_interval,
    render_query,
    render_sql,
)

Json = Mapping[str, Any]


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel, ready to run."""

    dashboard_uid: str
    panel_id: int
    panel_title: str
    panel_type: str
    ref_id: str
    raw: str
    query: str
    result_format: str
    alias: str | None
    time_range: TimeRange
    #: What the panel shows when the query returns no rows (``fieldConfig.defaults.noValue``).
    no_value: str | None = None
    #: ``influxql`` (the InfluxDB data source) or ``sql`` (the PostgreSQL store).
    language: str = "influxql"


@dataclass(frozen=True)
class VariableQuery:
    """A template variable's own query (``SHOW TAG VALUES ...``), ready to run."""

    dashboard_uid: str
    name: str
    raw: str
    query: str
    language: str = "influxql"


def panels(dashboard: Json) -> Iterator[Json]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def influx_targets(panel: Json) -> Iterator[Json]:
    """A panel's InfluxDB targets (a panel with no data source query, e.g. text, has none)."""
    for target in panel.get("targets") or []:
        source = target.get("datasource") or panel.get("datasource") or {}
        if source.get("type") == "influxdb" and target.get("query"):
            if not target.get("rawQuery"):
                raise MacroError(
                    f"panel {panel.get('title')!r}: only raw InfluxQL targets are used"
                )
            yield target


SQL_TYPES = ("grafana-postgresql-datasource", "postgres")


def sql_targets(panel: Json) -> Iterator[Json]:
    """A panel's targets on the PostgreSQL store."""
    for target in panel.get("targets") or []:
        source = target.get("datasource") or panel.get("datasource") or {}
        if source.get("type") in SQL_TYPES and target.get("rawSql"):
            yield target


def variable_definitions(dashboard: Json) -> list[Json]:
    return list(dashboard.get("templating", {}).get("list", []))


def variables_for(dashboard: Json, chosen: Mapping[str, tuple[str, ...] | None]) -> list[Variable]:
    """The dashboard's variables with chosen values; ``None`` (or missing) means the default.

    The default of a multi-valued variable is "All"; a single-valued variable has no usable
    default before Grafana ran its query, so it must be chosen.
    """
    out: list[Variable] = []
    for definition in variable_definitions(dashboard):
        name = definition["name"]
        values = chosen.get(name)
        multi = bool(definition.get("multi"))
        include_all = bool(definition.get("includeAll"))
        all_value = definition.get("allValue")
        if values is None:
            if not include_all:
                raise MacroError(f"variable {name} has no default; choose a value")
            out.append(Variable(name, (), multi, include_all, all_value, all_selected=True))
        else:
            out.append(Variable(name, tuple(values), multi, include_all, all_value))
    return out


def panel_queries(
    dashboard: Json,
    *,
    now: datetime,
    chosen: Mapping[str, tuple[str, ...] | None] | None = None,
) -> list[PanelQuery]:
    """Every target of every panel, with macros and variables replaced as Grafana would."""
    tz = ZoneInfo(dashboard.get("timezone") or "UTC")
    time = dashboard.get("time", {"from": "now-6h", "to": "now"})
    base = dashboard_range(time["from"], time["to"], now, tz)
    variables = variables_for(dashboard, chosen or {})
    out: list[PanelQuery] = []
    for panel in panels(dashboard):
        time_range = panel_range(base, panel.get("timeFrom"), now, tz)
        width = int(panel.get("gridPos", {}).get("w", 24))
        max_points = int(panel.get("maxDataPoints") or width * PX_PER_COLUMN)
        interval = query_interval(time_range.span, max_points, DEFAULT_MIN_INTERVAL)
        for target in influx_targets(panel):
            query = render_query(
                target["query"], time_range=time_range, interval=interval, variables=variables
            )
            out.append(
                PanelQuery(
                    dashboard_uid=dashboard.get("uid", ""),
                    panel_id=int(panel.get("id", 0)),
                    panel_title=panel.get("title", ""),
                    panel_type=panel.get("type", ""),
                    ref_id=target.get("refId", ""),
                    raw=target["query"],
                    query=query,
                    result_format=target.get("resultFormat", "time_series"),
                    alias=target.get("alias"),
                    time_range=time_range,
                    no_value=panel.get("fieldConfig", {}).get("defaults", {}).get("noValue"),
                )
            )
        for target in sql_targets(panel):
            out.append(
                PanelQuery(
                    dashboard_uid=dashboard.get("uid", ""),
                    panel_id=int(panel.get("id", 0)),
                    panel_title=panel.get("title", ""),
                    panel_type=panel.get("type", ""),
                    ref_id=target.get("refId", ""),
                    raw=target["rawSql"],
                    query=render_sql(target["rawSql"], time_range=time_range, variables=variables),
                    result_format=target.get("format", "table"),
                    alias=None,
                    time_range=time_range,
                    no_value=panel.get("fieldConfig", {}).get("defaults", {}).get("noValue"),
                    language="sql",
                )
            )
    return out


def variable_queries(
    dashboard: Json, *, now: datetime, chosen: Mapping[str, tuple[str, ...] | None] | None = None
) -> list[VariableQuery]:
    """The query of every query variable, with the other variables replaced."""
    tz = ZoneInfo(dashboard.get("timezone") or "UTC")
    time = dashboard.get("time", {"from": "now-6h", "to": "now"})
    base = dashboard_range(time["from"], time["to"], now, tz)
    out: list[VariableQuery] = []
    definitions = variable_definitions(dashboard)
    for definition in definitions:
        if definition.get("type") != "query":
            continue
        others = {k: v for k, v in (chosen or {}).items() if k != definition["name"]}
        # A variable may only refer to variables defined before it (Grafana's rule).
        before = {d["name"] for d in definitions[: definitions.index(definition)]}
        usable = [v for v in variables_for_partial(dashboard, others) if v.name in before]
        if (definition.get("datasource") or {}).get("type") in SQL_TYPES:
            query = render_sql(definition["query"], time_range=base, variables=usable)
            language = "sql"
        else:
            query = render_query(
                definition["query"],
                time_range=base,
                interval=DEFAULT_MIN_INTERVAL,
                variables=usable,
            )
            language = "influxql"
        out.append(
            VariableQuery(
                dashboard.get("uid", ""), definition["name"], definition["query"], query, language
            )
        )
    return out


def variables_for_partial(
    dashboard: Json, chosen: Mapping[str, tuple[str, ...] | None]
) -> list[Variable]:
    """Like :func:`variables_for`, but skips single-valued variables that were not chosen."""
    usable: list[Variable] = []
    for definition in variable_definitions(dashboard):
        name = definition["name"]
        if chosen.get(name) is None and not definition.get("includeAll"):
            continue
        usable.extend(
            variables_for({"templating": {"list": [definition]}}, {name: chosen.get(name)})
        )
    return usable
