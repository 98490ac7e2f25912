"""Inverter detail: one inverter's AC and per-string DC, temperature, states, events, counter."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from collector.dashboards.boards.common import dashboard, gateway_variable, tag_variable
from collector.dashboards.panels import (
    GREEN,
    ORANGE,
    RED,
    grid,
    override,
    stat_panel,
    state_mappings,
    state_timeline_panel,
    steps,
    table_panel,
    timeseries_panel,
)
from collector.dashboards.targets import InfluxQL

NAME = "inverter-detail"
UID = "zw-inverter-detail"

DEVICE = '"device" =~ /^$device$/'


def _mean(field: str, measurement: str = "inverter", by: str = "") -> str:
    group = f"GROUP BY time($__interval){', ' + by if by else ''} fill(null)"
    return f'SELECT mean("{field}") FROM "{measurement}" WHERE {DEVICE} AND $timeFilter {group}'


def build() -> db.Dashboard:
    d = (
        dashboard(
            UID,
            "Zonnewijk: inverter detail",
            "One inverter: AC power, each MPPT string, temperature, states, events and counter.",
            time_from="now-24h",
            refresh="1m",
        )
        .with_variable(gateway_variable())
        .with_variable(
            tag_variable(
                "device",
                "Inverter",
                'SHOW TAG VALUES FROM "inverter" WITH KEY = "device" WHERE "gateway" =~ /^($gateway)$/',
                multi=False,
            )
        )
    )
    d = d.with_panel(
        stat_panel(
            "Power now",
            [
                InfluxQL(
                    "A", f'SELECT last("ac_power_w") FROM "inverter" WHERE {DEVICE} AND $timeFilter'
                )
            ],
            pos=grid(0, 0, 4, 4),
            unit="watt",
            time_from="15m",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Energy today",
            [
                InfluxQL(
                    "A",
                    f'SELECT spread("ac_energy_wh") / 1000 FROM "inverter" WHERE {DEVICE} AND $timeFilter',
                )
            ],
            pos=grid(4, 0, 4, 4),
            unit="kwatth",
            decimals=2,
            time_from="now/d",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Lifetime counter",
            [
                InfluxQL(
                    "A",
                    f'SELECT last("ac_energy_wh") / 1000 FROM "inverter" WHERE {DEVICE} AND $timeFilter',
                )
            ],
            pos=grid(8, 0, 4, 4),
            unit="kwatth",
            decimals=1,
            time_from="7d",
        )
    )
    d = d.with_panel(
        stat_panel(
            "State",
            [InfluxQL("A", f'SELECT last("state") FROM "inverter" WHERE {DEVICE} AND $timeFilter')],
            pos=grid(12, 0, 4, 4),
            unit="none",
            time_from="7d",
            text=True,
        ).mappings(state_mappings())
    )
    d = d.with_panel(
        stat_panel(
            "Cabinet temperature",
            [
                InfluxQL(
                    "A",
                    f'SELECT last("cabinet_temp_c") FROM "inverter" WHERE {DEVICE} AND $timeFilter',
                )
            ],
            pos=grid(16, 0, 4, 4),
            unit="celsius",
            decimals=0,
            time_from="1h",
            thresholds=steps((None, GREEN), (60, ORANGE), (75, RED)),
        )
    )
    d = d.with_panel(
        stat_panel(
            "Grid voltage",
            [
                InfluxQL(
                    "A",
                    f'SELECT last("ac_voltage_v") FROM "inverter" WHERE {DEVICE} AND $timeFilter',
                )
            ],
            pos=grid(20, 0, 4, 4),
            unit="volt",
            decimals=1,
            time_from="1h",
            thresholds=steps((None, RED), (207, GREEN), (253, RED)),
            description="EN 50160: 230 V ± 10 %; inverters disconnect above 253 V.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "AC power",
            [InfluxQL("A", _mean("ac_power_w"), alias="AC power")],
            pos=grid(0, 4, 12, 8),
            unit="watt",
            min_value=0,
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "DC power per MPPT",
            [InfluxQL("A", _mean("dc_power_w", "dc", '"mppt"'), alias="MPPT $tag_mppt")],
            pos=grid(12, 4, 12, 8),
            unit="watt",
            min_value=0,
            description="A string far below its siblings points at a dead string or shade.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "DC voltage per MPPT",
            [InfluxQL("A", _mean("dc_voltage_v", "dc", '"mppt"'), alias="MPPT $tag_mppt")],
            pos=grid(0, 12, 8, 8),
            unit="volt",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "DC current per MPPT",
            [InfluxQL("A", _mean("dc_current_a", "dc", '"mppt"'), alias="MPPT $tag_mppt")],
            pos=grid(8, 12, 8, 8),
            unit="amp",
            min_value=0,
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Cabinet temperature",
            [InfluxQL("A", _mean("cabinet_temp_c"), alias="cabinet")],
            pos=grid(16, 12, 8, 8),
            unit="celsius",
            thresholds=steps((None, GREEN), (60, ORANGE), (75, RED)),
        )
    )
    d = d.with_panel(
        state_timeline_panel(
            "State",
            [
                InfluxQL(
                    "A",
                    f'SELECT "state" FROM "inverter" WHERE {DEVICE} AND $timeFilter',
                    alias="state",
                )
            ],
            pos=grid(0, 20, 24, 4),
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Lifetime energy counter",
            [
                InfluxQL(
                    "A",
                    f'SELECT last("ac_energy_wh") / 1000 FROM "inverter" WHERE {DEVICE} AND $timeFilter '
                    "GROUP BY time($__interval) fill(none)",
                    alias="counter",
                )
            ],
            pos=grid(0, 24, 12, 8),
            unit="kwatth",
            description="Must only rise; a step down is a reset or a replacement.",
        )
    )
    d = d.with_panel(
        table_panel(
            "Events and quality flags",
            [
                InfluxQL(
                    "A",
                    'SELECT "state", "events", "flags", "vendor_state", "vendor_events" FROM "inverter" '
                    f'WHERE {DEVICE} AND $timeFilter AND ("events" =~ /./ OR "flags" =~ /./) '
                    "ORDER BY time DESC LIMIT 200",
                    result_format="table",
                )
            ],
            pos=grid(12, 24, 12, 8),
            overrides=[("Time", override(unit="dateTimeAsIso"))],
            description="Readings with events (from the inverter) or quality flags (from the gateway).",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "AC power over 30 days (5-minute rollup)",
            [
                InfluxQL(
                    "A",
                    'SELECT max("ac_power_w_max") AS "max", mean("ac_power_w_mean") AS "mean" '
                    f'FROM "rollup_5m"."inverter" WHERE {DEVICE} AND $timeFilter '
                    "GROUP BY time($__interval) fill(null)",
                )
            ],
            pos=grid(0, 32, 24, 8),
            unit="watt",
            min_value=0,
            time_from="30d",
            description=(
                "Long ranges read the 5-minute rollup (retention policy rollup_5m, written by "
                "the continuous queries of `zonnewijk db init`), not the raw readings."
            ),
        )
    )
    return d
