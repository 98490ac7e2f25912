"""Fault alerts and the settlement ledger, read from the relational store on PostgreSQL.

The fault detector keeps its alerts (collector/faults/alerts.py, table ``alerts``) and the
settlement engine its issued runs and statements (collector/settlement/ledger.py, tables
``settlement_*``) in the relational store, not in InfluxDB. When the store runs on PostgreSQL,
Grafana reads them through the ``zonnewijk-store`` data source; with the default SQLite store
this dashboard has no data source (docs/dashboards.md).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from collector.dashboards.boards.common import dashboard
from collector.dashboards.panels import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    grid,
    override,
    stat_panel,
    steps,
    table_panel,
    timeseries_panel,
)
from collector.dashboards.targets import SQL, STORE

NAME = "alerts-ledger"
UID = "zw-alerts-ledger"

LIVE = "status IN ('open', 'acknowledged')"

#: Severity numbers of collector.faults.model.Severity.
SEVERITY_MAPPINGS = [
    dm.ValueMap(
        options={
            "10": dm.ValueMappingResult(text="info", color=BLUE, index=0),
            "20": dm.ValueMappingResult(text="warning", color=ORANGE, index=1),
            "30": dm.ValueMappingResult(text="critical", color=RED, index=2),
        }
    )
]


def _period_variable() -> db.QueryVariable:
    return (
        db.QueryVariable("period")
        .label("Settlement month")
        .query("SELECT period FROM settlement_runs ORDER BY period DESC")
        .datasource(STORE)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .multi(False)
        .include_all(False)
    )


def build() -> db.Dashboard:
    d = dashboard(
        UID,
        "Zonnewijk: fault alerts and settlement ledger",
        "The fault detector's alerts and the issued settlements, from the relational store "
        "(PostgreSQL).",
        time_from="now-90d",
        refresh="5m",
    ).with_variable(_period_variable())
    stats = (
        ("Open fault alerts", f"SELECT count(*) AS open_alerts FROM alerts WHERE {LIVE}", None),
        (
            "Critical and open",
            f"SELECT count(*) AS critical FROM alerts WHERE {LIVE} AND severity >= 30",
            steps((None, GREEN), (1, RED)),
        ),
        (
            "Alerts opened in the range",
            "SELECT count(*) AS opened FROM alerts WHERE $__timeFilter(opened_at)",
            None,
        ),
    )
    for i, (title, sql, thresholds) in enumerate(stats):
        panel = stat_panel(
            title,
            [],
            pos=grid(6 * i, 0, 6, 4),
            unit="none",
            thresholds=thresholds,
        )
        d = d.with_panel(panel.datasource(STORE).targets([SQL("A", sql)]))
    d = d.with_panel(
        stat_panel("Last month settled", [], pos=grid(18, 0, 6, 4), unit="none", text=True)
        .datasource(STORE)
        .targets([SQL("A", "SELECT max(period) AS period FROM settlement_runs")])
    )
    d = d.with_panel(
        table_panel(
            "Open fault alerts",
            [],
            pos=grid(0, 4, 24, 9),
            sort_by="Severity",
            sort_desc=True,
            overrides=[
                ("opened_at", override(unit="dateTimeAsIso", displayName="Opened")),
                ("last_seen", override(unit="dateTimeFromNow", displayName="Last seen")),
                (
                    "severity",
                    override(
                        mappings=SEVERITY_MAPPINGS,
                        displayName="Severity",
                        **{"custom.cellOptions": {"type": "color-background"}},
                    ),
                ),
            ],
            description="Acknowledge alerts in the operator API; they resolve by themselves.",
        )
        .datasource(STORE)
        .targets(
            [
                SQL(
                    "A",
                    "SELECT severity, kind, device_id, gateway_id, status, opened_at, last_seen, "
                    f"message FROM alerts WHERE {LIVE} ORDER BY severity DESC, opened_at DESC "
                    "LIMIT 200",
                )
            ]
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Alerts opened per day, by kind",
            [],
            pos=grid(0, 13, 12, 9),
            unit="none",
            bars=True,
            min_value=0,
        )
        .datasource(STORE)
        .targets(
            [
                SQL(
                    "A",
                    "SELECT $__timeGroupAlias(opened_at, 1d), kind AS metric, count(*) AS value "
                    "FROM alerts WHERE $__timeFilter(opened_at) GROUP BY 1, 2 ORDER BY 1",
                    result_format="time_series",
                )
            ]
        )
    )
    d = d.with_panel(
        table_panel(
            "Settlement runs",
            [],
            pos=grid(12, 13, 12, 9),
            overrides=[
                ("issued_at", override(unit="dateTimeAsIso", displayName="Issued")),
                (
                    "total_excl_vat_eur",
                    override(unit="currencyEUR", decimals=2, displayName="Total excl. VAT"),
                ),
                ("vat_eur", override(unit="currencyEUR", decimals=2, displayName="VAT")),
            ],
        )
        .datasource(STORE)
        .targets(
            [
                SQL(
                    "A",
                    "SELECT period, status, issued_at, contracts, total_excl_vat_eur, vat_eur "
                    "FROM settlement_runs ORDER BY period DESC LIMIT 36",
                )
            ]
        )
    )
    d = d.with_panel(
        table_panel(
            "Statements of $period: measured and estimated energy per member",
            [],
            pos=grid(0, 22, 24, 10),
            sort_by="estimated_share",
            sort_desc=True,
            overrides=[
                ("measured_kwh", override(unit="kwatth", decimals=1, displayName="Measured")),
                ("estimated_kwh", override(unit="kwatth", decimals=1, displayName="Estimated")),
                (
                    "estimated_share",
                    override(
                        unit="percentunit",
                        decimals=1,
                        displayName="Estimated share",
                        thresholds=steps((None, GREEN), (0.02, ORANGE), (0.1, RED)).build(),
                        **{"custom.cellOptions": {"type": "color-text"}},
                    ),
                ),
                ("completeness", override(unit="percentunit", decimals=1)),
                (
                    "total_excl_vat_eur",
                    override(unit="currencyEUR", decimals=2, displayName="Total excl. VAT"),
                ),
                ("vat_eur", override(unit="currencyEUR", decimals=2, displayName="VAT")),
            ],
            description=(
                "Per contract of the chosen month's issued run (settlement_statements): the "
                "ledger's own measured and estimated kWh. Corrections of earlier months appear "
                "in later runs."
            ),
        )
        .datasource(STORE)
        .targets(
            [
                SQL(
                    "A",
                    "SELECT s.member_id, s.contract_id, s.site_id, s.measured_kwh, s.estimated_kwh, "
                    "s.estimated_kwh / NULLIF(s.measured_kwh + s.estimated_kwh, 0) AS estimated_share, "
                    "s.completeness, s.total_excl_vat_eur, s.vat_eur "
                    "FROM settlement_statements s JOIN settlement_runs r ON r.run_id = s.run_id "
                    "WHERE r.period = '$period' ORDER BY s.member_id",
                )
            ]
        )
    )
    return d
