"""What every Zonnewijk dashboard shares: tags, time zone, links and template variables."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from collector.dashboards.targets import INFLUX

#: Days, months and years are Europe/Amsterdam (ARCHITECTURE.md, decision 7).
TIMEZONE = "Europe/Amsterdam"
#: InfluxQL clause that makes GROUP BY time(1d) buckets local days.
TZ = "tz('Europe/Amsterdam')"
TAG = "zonnewijk"
#: Measurement written by ``zonnewijk dashboards daily-yield`` (collector/dashboards/daily_yield.py).
DAILY = '"daily_yield"'


def dashboard(
    uid: str, title: str, description: str, *, time_from: str, refresh: str
) -> db.Dashboard:
    """A dashboard with the shared settings; panels are added by the caller."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .timezone(TIMEZONE)
        .time(time_from, "now")
        .refresh(refresh)
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(
            db.DashboardLink("Zonnewijk")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def tag_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = True,
) -> db.QueryVariable:
    """A variable listing tag values; multi-valued ones offer "All" as the regex ``.*``.

    Queries use it as ``"tag" =~ /^($name)$/``: Grafana regex-escapes the chosen values and
    joins several with ``|``; "All" becomes ``.*``.
    """
    variable = (
        db.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(INFLUX)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        variable = variable.all_value(".*").current(
            dm.VariableOption(text="All", value="$__all", selected=True)
        )
    return variable


def gateway_variable() -> db.QueryVariable:
    return tag_variable(
        "gateway", "Gateway", 'SHOW TAG VALUES FROM "inverter" WITH KEY = "gateway"'
    )


#: WHERE-clause fragment for the gateway variable.
GATEWAY = '"gateway" =~ /^($gateway)$/'
