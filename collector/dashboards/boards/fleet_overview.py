"""Fleet overview: power now, energy today and this month, every inverter, open alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from collector.dashboards.boards.common import DAILY, GATEWAY, dashboard, gateway_variable
from collector.dashboards.panels import (
    GREEN,
    ORANGE,
    RED,
    alert_list_panel,
    grid,
    override,
    stat_panel,
    state_mappings,
    steps,
    table_panel,
    timeseries_panel,
    transformation,
)
from collector.dashboards.targets import InfluxQL

NAME = "fleet-overview"
UID = "zw-fleet-overview"

#: Last power of every inverter of the chosen gateways (one row per device).
_LAST_POWER = f'SELECT last("ac_power_w") AS "p" FROM "inverter" WHERE $timeFilter AND {GATEWAY} GROUP BY "device"'


def build() -> db.Dashboard:
    d = dashboard(
        UID,
        "Zonnewijk: fleet overview",
        "What the fleet produces now, today and this month, and how every inverter is doing.",
        time_from="now-24h",
        refresh="1m",
    ).with_variable(gateway_variable())
    d = d.with_panel(
        stat_panel(
            "Fleet power now",
            [InfluxQL("A", f'SELECT sum("p") AS "fleet_power_w" FROM ({_LAST_POWER})')],
            pos=grid(0, 0, 4, 4),
            unit="watt",
            time_from="15m",
            description="Sum of each inverter's latest AC power in the last 15 minutes.",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Energy today",
            [
                InfluxQL(
                    "A",
                    'SELECT sum("e") / 1000 AS "energy_kwh" FROM (SELECT spread("ac_energy_wh") AS "e" '
                    f'FROM "inverter" WHERE $timeFilter AND {GATEWAY} GROUP BY "device")',
                )
            ],
            pos=grid(4, 0, 4, 4),
            unit="kwatth",
            decimals=1,
            time_from="now/d",
            description="Rise of each inverter's lifetime counter since local midnight, summed.",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Energy this month",
            [
                InfluxQL(
                    "A",
                    f'SELECT sum("energy_kwh") AS "energy_kwh" FROM {DAILY} WHERE $timeFilter AND {GATEWAY}',
                )
            ],
            pos=grid(8, 0, 4, 4),
            unit="kwatth",
            decimals=0,
            time_from="now/M",
            description="Sum of the daily yields (daily_yield) of this calendar month.",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Inverters reporting",
            [InfluxQL("A", f'SELECT count("p") AS "reporting" FROM ({_LAST_POWER})')],
            pos=grid(12, 0, 4, 4),
            unit="none",
            time_from="15m",
            description="Inverters with a reading in the last 15 minutes.",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Inverters producing",
            [InfluxQL("A", f'SELECT count("p") AS "producing" FROM ({_LAST_POWER}) WHERE "p" > 0')],
            pos=grid(16, 0, 4, 4),
            unit="none",
            time_from="15m",
            description="Inverters whose latest AC power is above zero.",
        ).no_value("0")
    )
    d = d.with_panel(
        stat_panel(
            "Inverters in fault",
            [
                InfluxQL(
                    "A",
                    'SELECT count("s") AS "in_fault" FROM (SELECT last("state") AS "s" FROM "inverter" '
                    f'WHERE $timeFilter AND {GATEWAY} GROUP BY "device") WHERE "s" = \'fault\'',
                )
            ],
            pos=grid(20, 0, 4, 4),
            unit="none",
            time_from="15m",
            thresholds=steps((None, GREEN), (1, RED)),
            description="Inverters whose latest state is fault. No value means none.",
        ).no_value("0")
    )
    d = d.with_panel(
        timeseries_panel(
            "Fleet AC power",
            [
                InfluxQL(
                    "A",
                    'SELECT sum("p") FROM (SELECT mean("ac_power_w") AS "p" FROM "inverter" '
                    f'WHERE $timeFilter AND {GATEWAY} GROUP BY time($__interval), "device" fill(none)) '
                    "WHERE $timeFilter GROUP BY time($__interval) fill(null)",
                    alias="fleet",
                )
            ],
            pos=grid(0, 4, 16, 9),
            unit="watt",
            min_value=0,
            description="Sum over inverters of their mean AC power per interval.",
        )
    )
    d = d.with_panel(
        alert_list_panel(
            "Open alerts",
            pos=grid(16, 4, 8, 9),
            description="Firing and pending Grafana alert rules (dashboards/provisioning/alerting).",
        )
    )
    d = d.with_panel(
        table_panel(
            "Inverters",
            [
                InfluxQL(
                    "A",
                    'SELECT last("ac_power_w") AS "power_w", "state", "events", "cabinet_temp_c" '
                    f'FROM "inverter" WHERE $timeFilter AND {GATEWAY} GROUP BY "gateway", "device"',
                    result_format="table",
                ),
                InfluxQL(
                    "B",
                    'SELECT last("specific_yield_kwh_per_kwp") AS "yield_today" '
                    f'FROM {DAILY} WHERE $timeFilter AND time > ${{__to}}ms - 1d AND {GATEWAY} GROUP BY "device"',
                    result_format="table",
                ),
            ],
            pos=grid(0, 13, 24, 11),
            time_from="7d",
            sort_by="Last seen",
            description=(
                "Every inverter seen in the last 7 days: its latest reading (time, power, state, "
                "events) and today's specific yield. An old 'Last seen' means a silent inverter."
            ),
            transformations=[
                transformation("joinByField", {"byField": "device", "mode": "outer"}),
                transformation(
                    "organize",
                    {
                        "excludeByName": {"Time 2": True},
                        "indexByName": {
                            "gateway": 0,
                            "device": 1,
                            "state": 2,
                            "Time 1": 3,
                            "power_w": 4,
                            "yield_today": 5,
                            "cabinet_temp_c": 6,
                            "events": 7,
                        },
                        "renameByName": {
                            "Time 1": "Last seen",
                            "power_w": "Power",
                            "yield_today": "Today",
                            "cabinet_temp_c": "Cabinet",
                            "state": "State",
                            "events": "Events",
                            "device": "Inverter",
                            "gateway": "Gateway",
                        },
                    },
                ),
            ],
            overrides=[
                ("Last seen", override(unit="dateTimeFromNow")),
                ("Power", override(unit="watt", decimals=0)),
                ("Today", override(unit="suffix: kWh/kWp", decimals=2)),
                (
                    "Cabinet",
                    override(
                        unit="celsius",
                        decimals=0,
                        thresholds=steps((None, GREEN), (60, ORANGE), (75, RED)).build(),
                        **{"custom.cellOptions": {"type": "color-text"}},
                    ),
                ),
                (
                    "State",
                    override(
                        mappings=state_mappings(),
                        **{"custom.cellOptions": {"type": "color-background"}},
                    ),
                ),
            ],
        )
    )
    return d
