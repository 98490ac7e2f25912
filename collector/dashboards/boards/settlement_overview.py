"""Settlement overview: kWh per member this month, data coverage, guarantee progress."""

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
    stat_panel,
    steps,
    table_panel,
    text_panel,
    timeseries_panel,
)
from collector.dashboards.targets import InfluxQL

NAME = "settlement-overview"
UID = "zw-settlement-overview"

MEMBER = '"member" =~ /^($member)$/'

_NOTE = """\
**What this shows, and what it does not.** Figures come from the `daily_yield` rollup
(counter rise per local day, written by `zonnewijk dashboards daily-yield`). They track the
month as it goes; the statements themselves come from `zonnewijk settle`, which interpolates
counters at the month's boundaries and records estimates in the ledger. *Estimated share*
here is the share of readings missing (1 − coverage); the ledger's estimated kWh per
statement is not in InfluxDB and is not shown. *Guarantee progress* compares the contract
year's production so far with the pro-rata share of its guarantee (same proration as the
settlement engine: days covered ÷ days in the contract year).
"""


def build() -> db.Dashboard:
    d = dashboard(
        UID,
        "Zonnewijk: settlement overview",
        "Energy per member this month, data coverage and yield-guarantee progress.",
        time_from="now/y",
        refresh="1h",
    ).with_variable(
        tag_variable("member", "Member", f'SHOW TAG VALUES FROM {DAILY} WITH KEY = "member"')
    )
    d = d.with_panel(
        stat_panel(
            "Energy this month",
            [
                InfluxQL(
                    "A", f'SELECT sum("energy_kwh") FROM {DAILY} WHERE $timeFilter AND {MEMBER}'
                )
            ],
            pos=grid(0, 0, 6, 4),
            unit="kwatth",
            decimals=0,
            time_from="now/M",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Energy this year",
            [
                InfluxQL(
                    "A", f'SELECT sum("energy_kwh") FROM {DAILY} WHERE $timeFilter AND {MEMBER}'
                )
            ],
            pos=grid(6, 0, 6, 4),
            unit="kwatth",
            decimals=0,
            time_from="now/y",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Members with production this month",
            [
                InfluxQL(
                    "A",
                    f'SELECT count("e") FROM (SELECT sum("energy_kwh") AS "e" FROM {DAILY} '
                    f'WHERE $timeFilter AND {MEMBER} GROUP BY "member") WHERE "e" > 0',
                )
            ],
            pos=grid(12, 0, 6, 4),
            unit="none",
            time_from="now/M",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Data coverage this month",
            [InfluxQL("A", f'SELECT mean("coverage") FROM {DAILY} WHERE $timeFilter AND {MEMBER}')],
            pos=grid(18, 0, 6, 4),
            unit="percentunit",
            decimals=1,
            time_from="now/M",
            thresholds=steps((None, RED), (0.9, ORANGE), (0.98, GREEN)),
            description="Readings present compared with the best-covered inverter, per day.",
        )
    )
    d = d.with_panel(
        bargauge_panel(
            "Energy per member this month",
            [
                InfluxQL(
                    "A",
                    f'SELECT sum("energy_kwh") FROM {DAILY} WHERE $timeFilter AND {MEMBER} GROUP BY "member"',
                    alias="$tag_member",
                )
            ],
            pos=grid(0, 4, 12, 10),
            unit="kwatth",
            decimals=0,
            time_from="now/M",
            thresholds=steps((None, BLUE)),
        )
    )
    d = d.with_panel(
        table_panel(
            "Members this month: energy and estimated share",
            [
                InfluxQL(
                    "A",
                    'SELECT sum("energy_kwh") AS "energy_kwh", 1 - mean("coverage") AS "estimated_share", '
                    f'count("energy_kwh") AS "days" FROM {DAILY} WHERE $timeFilter AND {MEMBER} '
                    'GROUP BY "member"',
                    result_format="table",
                )
            ],
            pos=grid(12, 4, 12, 10),
            time_from="now/M",
            sort_by="estimated_share",
            sort_desc=True,
            overrides=[
                ("Time", override(**{"custom.hidden": True})),
                ("energy_kwh", override(unit="kwatth", decimals=1, displayName="Energy")),
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
                ("days", override(displayName="Days with data")),
            ],
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Guarantee progress: produced ÷ pro-rata guarantee, contract year to date",
            [
                InfluxQL(
                    "A",
                    'SELECT cumulative_sum(sum("energy_kwh")) / cumulative_sum(sum("guarantee_kwh")) '
                    f'FROM {DAILY} WHERE $timeFilter AND {MEMBER} AND "guarantee_kwh" > 0 '
                    f'GROUP BY time(1d), "member", "contract_year" fill(none) {TZ}',
                    alias="$tag_member (year from $tag_contract_year)",
                )
            ],
            pos=grid(0, 14, 16, 10),
            unit="percentunit",
            thresholds=steps((None, RED), (0.9, ORANGE), (1.0, GREEN)),
            description=(
                "1 = on track for the guarantee. Below 1 at the contract year's end means "
                "compensation is owed. Only contracts whose tariff has a guarantee appear."
            ),
        )
    )
    d = d.with_panel(text_panel("About these figures", _NOTE, pos=grid(16, 14, 8, 10)))
    return d
