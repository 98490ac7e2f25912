"""The alerts-and-ledger dashboard's SQL runs against the store on the local PostgreSQL.

A private schema is migrated (collector.store.testing.temporary_database), alerts are made by
the fault detector's AlertService and a month is settled from the sample InfluxDB by the
settlement engine and recorded in the ledger; then every SQL target and variable query of the
committed dashboard runs with Grafana's SQL macros replaced.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, text

from collector.dashboards.generate import load_committed
from collector.dashboards.panel_queries import panel_queries, variable_queries

from .conftest import NOW

DASHBOARD = load_committed()["alerts-ledger"]


def _rows(engine: Engine, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    with engine.connect() as connection:
        result = connection.execute(text(sql))
        return list(result.keys()), [tuple(r) for r in result]


def test_every_sql_panel_returns_rows_with_its_columns(store: Engine) -> None:
    queries = panel_queries(DASHBOARD, now=NOW, chosen={"period": ("2026-06",)})
    assert len(queries) >= 8 and all(q.language == "sql" for q in queries)
    for q in queries:
        columns, rows = _rows(store, q.query)
        assert rows, f"no rows: {q.panel_title}: {q.query}"
        if q.result_format == "time_series":
            assert columns[:1] == ["time"] and "metric" in columns and "value" in columns
    by_title = {q.panel_title: q for q in queries}
    columns, rows = _rows(store, by_title["Open fault alerts"].query)
    assert [r[columns.index("kind")] for r in rows] == ["fault_state", "underperformance"]
    assert _rows(store, by_title["Open fault alerts"].query.replace("LIMIT 200", "LIMIT 1"))[1]
    statements = next(q for q in queries if q.panel_title.startswith("Statements of"))
    columns, rows = _rows(store, statements.query)
    assert "estimated_share" in columns and {r[0] for r in rows} >= {"M0001"}
    share = [r[columns.index("estimated_share")] for r in rows]
    assert all(0 <= float(s) <= 1 for s in share if s is not None)


def test_time_filter_limits_the_alerts_by_opening_time(store: Engine) -> None:
    later = panel_queries(DASHBOARD, now=NOW + timedelta(days=200), chosen={"period": ("2026-06",)})
    opened = next(q for q in later if q.panel_title == "Alerts opened in the range")
    assert _rows(store, opened.query)[1] == [(0,)]


def test_period_variable_lists_the_issued_months(store: Engine) -> None:
    (vq,) = variable_queries(DASHBOARD, now=NOW)
    assert vq.language == "sql"
    assert _rows(store, vq.query)[1] == [("2026-06",)]
