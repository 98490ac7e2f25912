"""Every committed panel and variable query runs against a real InfluxDB and returns rows.

The queries are taken from the committed JSON (dashboards/generated/), Grafana's macros and
variables are replaced as Grafana would (collector.dashboards.grafana_macros), and each is
run against an InfluxDB holding sample readings written through the collector's own point
mapping, plus the daily_yield rollup computed from them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from collector.dashboards.generate import load_committed
from collector.dashboards.grafana_macros import unresolved
from collector.dashboards.panel_queries import (
    PanelQuery,
    influx_targets,
    panel_queries,
    panels,
    variable_definitions,
    variable_queries,
)
from collector.timeseries.influx import InfluxClient, Series

from .conftest import NOW

DASHBOARDS = load_committed()

#: A specific value for every variable (the default is "All" where a variable has it).
SPECIFIC: dict[str, tuple[str, ...]] = {
    "gateway": ("gw-s002",),
    "device": ("inv-s002",),
    "site": ("S002",),
    "member": ("M0001",),
    "period": ("2026-06",),
}


def _choices(name: str, specific: bool) -> dict[str, tuple[str, ...] | None]:
    chosen: dict[str, tuple[str, ...] | None] = {}
    for definition in variable_definitions(DASHBOARDS[name]):
        var = definition["name"]
        single = not definition.get("includeAll")
        chosen[var] = SPECIFIC[var] if (specific or single) else None
    return chosen


def _influxql(queries: list[PanelQuery]) -> list[PanelQuery]:
    return [q for q in queries if q.language == "influxql"]


def _run(influx: InfluxClient, q: PanelQuery) -> list[Series]:
    results = influx.query(q.query)
    assert len(results) == 1, q.query
    return results[0]


def _outer_aliases(query: str) -> list[str]:
    """Column names the outermost SELECT gives with AS."""
    depth = 0
    for i, ch in enumerate(query):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and query[i : i + 6].upper() == " FROM ":
            return re.findall(r'AS "([^"]+)"', query[:i])
    return []


def _group_tags(query: str) -> list[str]:
    """Tags of the outermost GROUP BY (after the last closing parenthesis of a subquery)."""
    tail = query.rsplit(")", 1)[-1] if "FROM (" in query else query
    if "GROUP BY" not in tail:
        return []
    clause = re.split(r" fill\(| tz\(| ORDER | LIMIT ", tail.split("GROUP BY", 1)[1])[0]
    return re.findall(r'"([^"]+)"', clause)


def _cases() -> list[Any]:
    cases = []
    for name in DASHBOARDS:
        if not any(True for p in panels(DASHBOARDS[name]) for _t in influx_targets(p)):
            continue  # SQL only: test_store_panels.py
        for specific in (False, True):
            if not specific and all(
                not d.get("includeAll") for d in variable_definitions(DASHBOARDS[name])
            ):
                continue
            cases.append(
                pytest.param(name, specific, id=f"{name}-{'specific' if specific else 'default'}")
            )
    return cases


@pytest.mark.parametrize(("name", "specific"), _cases())
def test_every_panel_query_returns_rows_with_its_columns(
    filled: InfluxClient, name: str, specific: bool
) -> None:
    dashboard = DASHBOARDS[name]
    queries = _influxql(panel_queries(dashboard, now=NOW, chosen=_choices(name, specific)))
    live = _influxql(
        panel_queries(dashboard, now=datetime.now(UTC), chosen=_choices(name, specific))
    )
    assert queries, f"{name} has no InfluxQL queries"
    for q, q_live in zip(queries, live, strict=True):
        # InfluxDB's own statistics are live: query them at the real "now".
        q = q_live if "_internal" in q.raw else q
        assert not unresolved(q.query), (
            f"{q.panel_title}/{q.ref_id}: left over {unresolved(q.query)}"
        )
        series = _run(filled, q)
        where = f"{name} / {q.panel_title} / {q.ref_id}: {q.query}"
        if not series and specific and q.no_value is not None:
            continue  # e.g. "inverters in fault" for a gateway without one: shows q.no_value
        assert series, f"no rows: {where}"
        assert all(s.values for s in series), f"empty series: {where}"
        for s in series:
            assert s.columns[0] == "time", where
            assert len(s.columns) >= 2, where
            for alias in _outer_aliases(q.query):
                assert alias in s.columns, f"column {alias} missing: {where}"
            for tag in _group_tags(q.query):
                assert tag in s.tags, f"tag {tag} missing: {where}"
            if q.result_format == "time_series":
                numeric = [v for row in s.values for v in row[1:] if v is not None]
                assert numeric, f"only nulls: {where}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_a_specific_variable_value_narrows_the_result(filled: InfluxClient, name: str) -> None:
    chosen = _choices(name, True)
    for q in _influxql(panel_queries(DASHBOARDS[name], now=NOW, chosen=chosen)):
        if "_internal" in q.raw:
            continue
        for s in _run(filled, q):
            for var, values in chosen.items():
                if var in s.tags and values is not None:
                    assert s.tags[var] in values, (
                        f"{q.panel_title}: {s.tags} not limited to {values}"
                    )


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_variable_query_lists_values(filled: InfluxClient, name: str) -> None:
    dashboard = DASHBOARDS[name]
    for specific in (False, True):
        for vq in variable_queries(dashboard, now=NOW, chosen=_choices(name, specific)):
            if vq.language != "influxql":
                continue
            assert not unresolved(vq.query), vq.query
            rows = filled.query_records(vq.query)
            values = {r["value"] for r in rows}
            assert values, f"{name}: variable {vq.name} lists nothing: {vq.query}"
            if vq.name in SPECIFIC:
                assert set(SPECIFIC[vq.name]) <= values, f"{vq.name}: {values}"
