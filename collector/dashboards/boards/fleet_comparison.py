"""Fleet comparison: each site's specific yield per day against the fleet median."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from collector.dashboards.boards.common import DAILY, TZ, dashboard, tag_variable
from collector.dashboards.panels import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    bargauge_panel,
    grid,
    override,
    steps,
    table_panel,
    timeseries_panel,
)
from collector.dashboards.targets import InfluxQL

NAME = "fleet-comparison"
UID = "zw-fleet-comparison"

SITE = '"site" =~ /^($site)$/'
KWH_PER_KWP = "suffix: kWh/kWp"


def build() -> db.Dashboard:
    d = dashboard(
        UID,
        "Zonnewijk: fleet comparison",
        "Specific yield (kWh per kWp) of each site per day against the fleet median. Daily "
        "figures come from the daily_yield rollup, so a year stays fast.",
        time_from="now-30d",
        refresh="15m",
    ).with_variable(tag_variable("site", "Site", f'SHOW TAG VALUES FROM {DAILY} WITH KEY = "site"'))
    d = d.with_panel(
        timeseries_panel(
            "Specific yield per day: sites and fleet median",
            [
                InfluxQL(
                    "A",
                    f'SELECT sum("energy_kwh") / sum("kwp") FROM {DAILY} WHERE $timeFilter AND {SITE} '
                    f'GROUP BY time(1d), "site" fill(none) {TZ}',
                    alias="$tag_site",
                ),
                InfluxQL(
                    "B",
                    f'SELECT median("specific_yield_kwh_per_kwp") FROM {DAILY} WHERE $timeFilter '
                    f"GROUP BY time(1d) fill(none) {TZ}",
                    alias="fleet median",
                ),
            ],
            pos=grid(0, 0, 24, 10),
            unit=KWH_PER_KWP,
            min_value=0,
            overrides=[
                (
                    "fleet median",
                    override(
                        color={"mode": "fixed", "fixedColor": "#000000"},
                        **{
                            "custom.lineWidth": 3,
                            "custom.lineStyle": {"fill": "dash", "dash": [10, 10]},
                        },
                    ),
                )
            ],
        )
    )
    d = d.with_panel(
        bargauge_panel(
            "Yield relative to the fleet median (mean over the range)",
            [
                InfluxQL(
                    "A",
                    f'SELECT mean("relative_yield") FROM {DAILY} WHERE $timeFilter AND {SITE} '
                    'GROUP BY "site"',
                    alias="$tag_site",
                )
            ],
            pos=grid(0, 10, 12, 12),
            unit="percentunit",
            decimals=0,
            thresholds=steps((None, RED), (0.8, ORANGE), (0.9, GREEN)),
            description=(
                "1 = the fleet median. East/west roofs and shaded sites have their own normal "
                "level below 1; watch for a site that drops from its usual level."
            ),
        )
    )
    d = d.with_panel(
        table_panel(
            "Sites: energy and specific yield over the range",
            [
                InfluxQL(
                    "A",
                    'SELECT sum("energy_kwh") AS "energy_kwh", sum("energy_kwh") / sum("kwp") '
                    'AS "daily_specific_yield", mean("relative_yield") AS "relative", min("relative_yield") '
                    f'AS "worst_day" FROM {DAILY} WHERE $timeFilter AND {SITE} GROUP BY "site"',
                    result_format="table",
                )
            ],
            pos=grid(12, 10, 12, 12),
            sort_by="relative",
            overrides=[
                ("Time", override(**{"custom.hidden": True})),
                ("energy_kwh", override(unit="kwatth", decimals=0, displayName="Energy")),
                (
                    "daily_specific_yield",
                    override(unit=KWH_PER_KWP, decimals=2, displayName="Per day"),
                ),
                (
                    "relative",
                    override(
                        unit="percentunit",
                        decimals=0,
                        displayName="vs fleet",
                        thresholds=steps((None, RED), (0.8, ORANGE), (0.9, GREEN)).build(),
                        **{"custom.cellOptions": {"type": "color-background"}},
                    ),
                ),
                (
                    "worst_day",
                    override(
                        unit="percentunit",
                        decimals=0,
                        displayName="Worst day",
                        color={"mode": "fixed", "fixedColor": BLUE},
                    ),
                ),
            ],
            description="Per day: mean daily specific yield (kWh per kWp installed per day).",
        )
    )
    return d
