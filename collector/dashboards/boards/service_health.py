"""Service health: is the collector storing readings, and does InfluxDB accept them?"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from collector.dashboards.boards.common import GATEWAY, dashboard, gateway_variable
from collector.dashboards.panels import (
    GREEN,
    ORANGE,
    RED,
    grid,
    override,
    stat_panel,
    steps,
    table_panel,
    text_panel,
    timeseries_panel,
    transformation,
)
from collector.dashboards.targets import InfluxQL

NAME = "service-health"
UID = "zw-service-health"

#: InfluxDB's own statistics (``[monitor] store-enabled``, on by default in 1.x).
HTTPD = '"_internal"."monitor"."httpd"'

_NOTE = """\
**The collector's own metrics** (messages, rejects by reason, write latency, batch sizes,
queue depth, last message per gateway) are served in Prometheus format on the collector's
`/metrics` endpoint. The stack has no Prometheus data source, so they are not graphed here;
what is graphed is what the collector *stored* (`inverter`, and `gateway_seen` / `gateway_status`,
which the collector writes per stored message and per gateway status) and what InfluxDB itself
counts (`_internal` database, written by InfluxDB's monitor every 10 s).
"""


def build() -> db.Dashboard:
    d = dashboard(
        UID,
        "Zonnewijk: service health",
        "Readings stored per minute, gateways reporting, InfluxDB write requests and errors.",
        time_from="now-3h",
        refresh="30s",
    ).with_variable(gateway_variable())
    d = d.with_panel(
        stat_panel(
            "Readings stored, last 5 minutes",
            [
                InfluxQL(
                    "A", f'SELECT count("state") FROM "inverter" WHERE $timeFilter AND {GATEWAY}'
                )
            ],
            pos=grid(0, 0, 6, 4),
            unit="none",
            time_from="5m",
            thresholds=steps((None, RED), (1, GREEN)),
        ).no_value("0")
    )
    d = d.with_panel(
        stat_panel(
            "Gateways reporting, last 15 minutes",
            [
                InfluxQL(
                    "A",
                    'SELECT count("n") FROM (SELECT count("state") AS "n" FROM "inverter" '
                    f'WHERE $timeFilter AND {GATEWAY} GROUP BY "gateway")',
                )
            ],
            pos=grid(6, 0, 6, 4),
            unit="none",
            time_from="15m",
        ).no_value("0")
    )
    d = d.with_panel(
        stat_panel(
            "InfluxDB points refused, last hour",
            [
                InfluxQL(
                    "A",
                    'SELECT spread("pointsWrittenDropped") + spread("pointsWrittenFail") '
                    f"FROM {HTTPD} WHERE $timeFilter",
                )
            ],
            pos=grid(12, 0, 6, 4),
            unit="none",
            time_from="1h",
            thresholds=steps((None, GREEN), (1, RED)),
        ).no_value("0")
    )
    d = d.with_panel(
        stat_panel(
            "InfluxDB server errors, last hour",
            [InfluxQL("A", f'SELECT spread("serverError") FROM {HTTPD} WHERE $timeFilter')],
            pos=grid(18, 0, 6, 4),
            unit="none",
            time_from="1h",
            thresholds=steps((None, GREEN), (1, RED)),
        ).no_value("0")
    )
    d = d.with_panel(
        timeseries_panel(
            "Readings stored per minute, by arrival",
            [
                InfluxQL(
                    "A",
                    f'SELECT sum("readings") FROM "gateway_seen" WHERE $timeFilter AND {GATEWAY} '
                    "GROUP BY time(1m) fill(0)",
                    alias="stored",
                )
            ],
            pos=grid(0, 4, 12, 9),
            unit="none",
            min_value=0,
            description=(
                "What the collector wrote per minute, stamped when it was stored (measurement "
                "gateway_seen): a flat zero means the collector is not storing anything."
            ),
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Readings per 5 minutes, by measurement time",
            [
                InfluxQL(
                    "A",
                    f'SELECT count("state") FROM "inverter" WHERE $timeFilter AND {GATEWAY} '
                    "GROUP BY time(5m) fill(0)",
                    alias="readings",
                )
            ],
            pos=grid(0, 13, 12, 9),
            unit="none",
            min_value=0,
            description="Readings by measurement time; replayed backlogs land in the past.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "InfluxDB write requests and errors per minute",
            [
                InfluxQL(
                    "A",
                    'SELECT non_negative_derivative(last("writeReq"), 1m) AS "write requests", '
                    'non_negative_derivative(last("clientError"), 1m) AS "client errors", '
                    'non_negative_derivative(last("serverError"), 1m) AS "server errors", '
                    'non_negative_derivative(last("pointsWrittenDropped"), 1m) AS "points refused" '
                    f"FROM {HTTPD} WHERE $timeFilter GROUP BY time($__interval) fill(none)",
                )
            ],
            pos=grid(12, 4, 12, 9),
            unit="none",
            min_value=0,
            overrides=[
                ("server errors", override(color={"mode": "fixed", "fixedColor": RED})),
                ("points refused", override(color={"mode": "fixed", "fixedColor": ORANGE})),
            ],
        )
    )
    d = d.with_panel(
        table_panel(
            "Gateways: last message stored, last status, software (package, channel, config)",
            [
                InfluxQL(
                    "A",
                    'SELECT last("readings") AS "readings" FROM "gateway_seen" '
                    f'WHERE $timeFilter AND {GATEWAY} GROUP BY "gateway"',
                    result_format="table",
                ),
                InfluxQL(
                    "B",
                    'SELECT last("state") AS "status", "spool_depth", "spool_dropped", '
                    '"package_version", "channel", "config_version" '
                    f'FROM "gateway_status" WHERE $timeFilter AND {GATEWAY} GROUP BY "gateway"',
                    result_format="table",
                ),
            ],
            pos=grid(12, 13, 12, 9),
            time_from="7d",
            sort_by="Last message",
            transformations=[
                transformation("joinByField", {"byField": "gateway", "mode": "outer"}),
                transformation(
                    "organize",
                    {
                        "excludeByName": {"Time 2": True, "readings": True},
                        "indexByName": {
                            "gateway": 0,
                            "Time 1": 1,
                            "status": 2,
                            "spool_depth": 3,
                            "spool_dropped": 4,
                            "package_version": 5,
                            "channel": 6,
                            "config_version": 7,
                        },
                        "renameByName": {
                            "Time 1": "Last message",
                            "gateway": "Gateway",
                            "status": "Status",
                            "spool_depth": "Spool depth",
                            "spool_dropped": "Dropped",
                            "package_version": "Package",
                            "channel": "Channel",
                            "config_version": "Config",
                        },
                    },
                ),
            ],
            overrides=[
                ("Last message", override(unit="dateTimeFromNow")),
                (
                    "Status",
                    override(
                        mappings=[
                            dm.ValueMap(
                                options={
                                    "online": dm.ValueMappingResult(color=GREEN, index=0),
                                    "offline": dm.ValueMappingResult(color=RED, index=1),
                                }
                            )
                        ],
                        **{"custom.cellOptions": {"type": "color-background"}},
                    ),
                ),
            ],
        )
    )
    d = d.with_panel(text_panel("Collector metrics", _NOTE, pos=grid(0, 22, 24, 4)))
    return d
