"""Self-consumption: how much of the fleet's solar energy the homes use themselves.

Reads ``fleet_self_consumption`` (collector/dashboards/daily_self_consumption.py): aggregates
of at least five households with a P1 meter, per local day, for the fleet and per
neighbourhood (four digits of the postal code). No panel shows a single household.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from collector.dashboards.boards.common import TZ, dashboard
from collector.dashboards.panels import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    grid,
    stat_panel,
    steps,
    text_panel,
    timeseries_panel,
)
from collector.dashboards.targets import InfluxQL

NAME = "self-consumption"
UID = "zw-self-consumption"
SC = '"fleet_self_consumption"'
FLEET = "\"scope\" = 'fleet'"
#: What a panel shows while fewer than five households have meter data (no group is written).
FEWER_THAN_FIVE = "fewer than 5 metered homes"

_NOTE = """\
**Why this matters from 1 January 2027.** Net metering (salderingsregeling) ends: exported
solar energy is no longer netted against imports. *Self-consumption* is production minus
export, balanced per quarter-hour (a solar kWh is either used at home or exported, never
both); *self-consumption rate* = self-consumed ÷ production, *self-sufficiency* =
self-consumed ÷ consumption. Only homes with a P1 meter and consent count, and only groups of
at least five households are shown. Written by `zonnewijk dashboards self-consumption`.
"""


def _ratio(numerator: str, denominator: str, where: str, group: str = "") -> str:
    return (
        f'SELECT sum("{numerator}") / sum("{denominator}") FROM {SC} '
        f"WHERE $timeFilter AND {where} {group}"
    ).strip()


def build() -> db.Dashboard:
    d = dashboard(
        UID,
        "Zonnewijk: self-consumption",
        "How much of the fleet's solar energy its homes use themselves, and what they export.",
        time_from="now-30d",
        refresh="1h",
    )
    good = steps((None, RED), (0.3, ORANGE), (0.5, GREEN))
    d = d.with_panel(
        stat_panel(
            "Fleet self-consumption rate this month",
            [InfluxQL("A", _ratio("self_consumed_kwh", "production_kwh", FLEET))],
            pos=grid(0, 0, 6, 4),
            unit="percentunit",
            decimals=0,
            time_from="now/M",
            thresholds=good,
            description="Self-consumed ÷ produced, homes with a P1 meter.",
        ).no_value(FEWER_THAN_FIVE)
    )
    d = d.with_panel(
        stat_panel(
            "Fleet self-sufficiency this month",
            [InfluxQL("A", _ratio("self_consumed_kwh", "consumption_kwh", FLEET))],
            pos=grid(6, 0, 6, 4),
            unit="percentunit",
            decimals=0,
            time_from="now/M",
            thresholds=good,
            description="Self-consumed ÷ consumed, homes with a P1 meter.",
        ).no_value(FEWER_THAN_FIVE)
    )
    d = d.with_panel(
        stat_panel(
            "Exported this month",
            [InfluxQL("A", f'SELECT sum("export_kwh") FROM {SC} WHERE $timeFilter AND {FLEET}')],
            pos=grid(12, 0, 6, 4),
            unit="kwatth",
            decimals=0,
            time_from="now/M",
            thresholds=steps((None, BLUE)),
        ).no_value(FEWER_THAN_FIVE)
    )
    d = d.with_panel(
        stat_panel(
            "Households with a meter",
            [InfluxQL("A", f'SELECT last("households") FROM {SC} WHERE $timeFilter AND {FLEET}')],
            pos=grid(18, 0, 6, 4),
            unit="none",
            thresholds=steps((None, BLUE)),
        ).no_value(FEWER_THAN_FIVE)
    )
    daily = f"GROUP BY time(1d) fill(none) {TZ}"
    d = d.with_panel(
        timeseries_panel(
            "Fleet energy per day: self-consumed, exported, imported",
            [
                InfluxQL(
                    "A",
                    f'SELECT sum("self_consumed_kwh") FROM {SC} WHERE $timeFilter AND {FLEET} {daily}',
                    alias="self-consumed",
                ),
                InfluxQL(
                    "B",
                    f'SELECT sum("export_kwh") FROM {SC} WHERE $timeFilter AND {FLEET} {daily}',
                    alias="exported",
                ),
                InfluxQL(
                    "C",
                    f'SELECT sum("import_kwh") FROM {SC} WHERE $timeFilter AND {FLEET} {daily}',
                    alias="imported",
                ),
            ],
            pos=grid(0, 4, 24, 9),
            unit="kwatth",
            bars=True,
            min_value=0,
        ).no_value(FEWER_THAN_FIVE)
    )
    d = d.with_panel(
        timeseries_panel(
            "Self-consumption rate and self-sufficiency per day",
            [
                InfluxQL(
                    "A",
                    _ratio("self_consumed_kwh", "production_kwh", FLEET, daily),
                    alias="self-consumption rate",
                ),
                InfluxQL(
                    "B",
                    _ratio("self_consumed_kwh", "consumption_kwh", FLEET, daily),
                    alias="self-sufficiency",
                ),
            ],
            pos=grid(0, 13, 16, 9),
            unit="percentunit",
            min_value=0,
        ).no_value(FEWER_THAN_FIVE)
    )
    d = d.with_panel(
        timeseries_panel(
            "Self-consumption rate per neighbourhood (5+ homes)",
            [
                InfluxQL(
                    "A",
                    _ratio(
                        "self_consumed_kwh",
                        "production_kwh",
                        "\"scope\" = 'pc4'",
                        f'GROUP BY time(1d), "area" fill(none) {TZ}',
                    ),
                    alias="$tag_area",
                )
            ],
            pos=grid(16, 13, 8, 9),
            unit="percentunit",
            min_value=0,
        ).no_value(FEWER_THAN_FIVE)
    )
    hourly = '"fleet_self_consumption_hourly"'
    per_hour = f"GROUP BY time(1h) fill(none) {TZ}"
    d = d.with_panel(
        timeseries_panel(
            "Fleet per hour, last 7 days: production, consumption, import (evening peak)",
            [
                InfluxQL(
                    "A",
                    f'SELECT sum("production_kwh") FROM {hourly} WHERE $timeFilter AND {FLEET} '
                    f"{per_hour}",
                    alias="production",
                ),
                InfluxQL(
                    "B",
                    f'SELECT sum("consumption_kwh") FROM {hourly} WHERE $timeFilter AND {FLEET} '
                    f"{per_hour}",
                    alias="consumption",
                ),
                InfluxQL(
                    "C",
                    f'SELECT sum("import_kwh") FROM {hourly} WHERE $timeFilter AND {FLEET} '
                    f"{per_hour}",
                    alias="import",
                ),
            ],
            pos=grid(0, 22, 24, 9),
            unit="kwatth",
            min_value=0,
            time_from="7d",
            description="Energy per hour of the metered homes: after sunset production drops "
            "to zero while consumption peaks, and all of it is imported.",
        ).no_value(FEWER_THAN_FIVE)
    )
    return d.with_panel(text_panel("About these figures", _NOTE, pos=grid(0, 31, 24, 5)))
