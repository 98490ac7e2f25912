"""Data quality: gaps, flagged readings by reason, late (replayed) data, coverage."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from collector.dashboards.boards.common import DAILY, GATEWAY, dashboard, gateway_variable
from collector.dashboards.panels import (
    GREEN,
    ORANGE,
    RED,
    grid,
    override,
    table_panel,
    text_panel,
    timeseries_panel,
)
from collector.dashboards.panels import steps as thresholds
from collector.dashboards.targets import InfluxQL
from collector.timeseries.measurements import TIME_UNKNOWN_INVERTER_MEASUREMENT
from zonnewijk_wire import ReadingFlag

NAME = "data-quality"
UID = "zw-data-quality"

_NOTE = """\
**Rejected readings** (bad JSON, unknown device, out of range) never reach InfluxDB: the
collector counts them by reason on its `/metrics` endpoint (`zonnewijk collect`) and
publishes each one with its reason to the MQTT dead-letter topic `zonnewijk/v1/_deadletter`.
This dashboard shows what *was* stored: readings the gateway flagged, readings that arrived
late from a gateway's spool (flag `replayed`), and gaps.
"""


def _flag_query(ref_id: str, flag: ReadingFlag) -> InfluxQL:
    # readings of unknown time are kept apart, where settlement does not read (docs/clock.md)
    measurement = (
        TIME_UNKNOWN_INVERTER_MEASUREMENT if flag is ReadingFlag.TIME_UNKNOWN else "inverter"
    )
    return InfluxQL(
        ref_id,
        f'SELECT count("state") FROM "{measurement}" WHERE $timeFilter AND {GATEWAY} '
        f'AND "flags" =~ /(^|,){flag.value}(,|$)/ GROUP BY time($__interval) fill(0)',
        alias=flag.value,
    )


def build() -> db.Dashboard:
    d = dashboard(
        UID,
        "Zonnewijk: data quality",
        "Gaps, flagged readings by reason, late data from gateway spools, coverage per inverter.",
        time_from="now-7d",
        refresh="5m",
    ).with_variable(gateway_variable())
    d = d.with_panel(
        timeseries_panel(
            "Readings stored per hour, per inverter",
            [
                InfluxQL(
                    "A",
                    'SELECT sum("samples") FROM "rollup_5m"."inverter" '
                    f'WHERE $timeFilter AND {GATEWAY} GROUP BY time(1h), "device" fill(0)',
                    alias="$tag_device",
                )
            ],
            pos=grid(0, 0, 24, 9),
            unit="none",
            min_value=0,
            description=(
                "A drop to zero is a gap: the inverter, its gateway or the link was down. "
                "Counted from the 5-minute rollup (field samples), so a week stays fast."
            ),
        )
    )
    letters = "ABCDEFGH"
    d = d.with_panel(
        timeseries_panel(
            "Flagged readings by reason",
            [_flag_query(letters[i], flag) for i, flag in enumerate(ReadingFlag)],
            pos=grid(0, 9, 12, 9),
            unit="none",
            bars=True,
            min_value=0,
            description=(
                "Flags set by the gateway (zonnewijk_wire.ReadingFlag): sentinel values, "
                "counters stepping back or jumping, bad scale factors, replayed readings, and the "
                "gateway's clock: re-stamped after a sync, guarded after a step back, unknown "
                "(stored apart in inverter_time_unknown; docs/clock.md)."
            ),
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Late data: readings replayed from gateway spools",
            [
                InfluxQL(
                    "A",
                    f'SELECT count("state") FROM "inverter" WHERE $timeFilter AND {GATEWAY} '
                    'AND "flags" =~ /(^|,)replayed(,|$)/ GROUP BY time($__interval), "gateway" fill(0)',
                    alias="$tag_gateway",
                )
            ],
            pos=grid(12, 9, 12, 9),
            unit="none",
            bars=True,
            min_value=0,
            description="Stamped with the time they were measured, stored when the link came back.",
        )
    )
    d = d.with_panel(
        table_panel(
            "Coverage per inverter (daily)",
            [
                InfluxQL(
                    "A",
                    'SELECT mean("coverage") AS "coverage", min("coverage") AS "worst_day", '
                    f'sum("readings") AS "readings" FROM {DAILY} WHERE $timeFilter AND {GATEWAY} '
                    'GROUP BY "gateway", "device"',
                    result_format="table",
                )
            ],
            pos=grid(0, 18, 12, 10),
            sort_by="coverage",
            overrides=[
                ("Time", override(**{"custom.hidden": True})),
                (
                    "coverage",
                    override(
                        unit="percentunit",
                        decimals=1,
                        displayName="Coverage",
                        thresholds=thresholds((None, RED), (0.9, ORANGE), (0.98, GREEN)).build(),
                        **{"custom.cellOptions": {"type": "color-background"}},
                    ),
                ),
                ("worst_day", override(unit="percentunit", decimals=0, displayName="Worst day")),
            ],
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Spool depth per gateway (readings waiting on the gateway)",
            [
                InfluxQL(
                    "A",
                    f'SELECT max("spool_depth") FROM "gateway_status" WHERE $timeFilter AND {GATEWAY} '
                    'GROUP BY time($__interval), "gateway" fill(none)',
                    alias="$tag_gateway",
                )
            ],
            pos=grid(12, 18, 12, 10),
            unit="none",
            min_value=0,
            thresholds=thresholds((None, GREEN), (1000, ORANGE), (100000, RED)),
            description=(
                "From the gateways' retained status messages (measurement gateway_status, "
                "stored by the collector). A rising depth means the gateway cannot deliver; "
                "the spool keeps about 30 days at 10 s for two inverters."
            ),
        )
    )
    d = d.with_panel(text_panel("Rejected readings", _NOTE, pos=grid(0, 28, 24, 4)))
    return d
