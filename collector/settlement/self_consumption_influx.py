"""A household's counters from InfluxDB, balanced by :mod:`.self_consumption`.

A household is a site: its inverters (``inverter`` measurement, tag ``device``) and the grid
meter behind its gateway (``grid_meter`` measurement, tag ``gateway``; the P1 meter of the
home). Per inverter this reads every ``ac_energy_wh`` reading for spans up to
:data:`RAW_SPAN` (a day's page); over longer spans the last reading of every 5 minutes, placed
at the bucket's end: the counter there lags by at most one polling interval, so energy may
move by that much across a quarter-hour edge, but is never lost nor counted twice. The meter's
readings are few (one per 5 minutes) and read as stored: each carries the lifetime counters
at the edge of its interval. The window read is widened by the gap limit on both sides so
that the first and last grid edges can be interpolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.settlement.self_consumption import (
    DEFAULT_MAX_GAP_S,
    DEFAULT_STEP_S,
    CounterSample,
    IntervalBalance,
    balance_intervals,
)
from collector.timeseries.influx import InfluxClient, quote_string
from collector.timeseries.measurements import INVERTER_MEASUREMENT, METER_MEASUREMENT

#: Bucket of the inverter counters read over long spans [s].
INVERTER_BUCKET_S = 300
#: Spans up to this long read every inverter reading.
RAW_SPAN = timedelta(days=2)


@dataclass(frozen=True)
class HouseholdCounters:
    """One home's lifetime counters over a window [Wh]."""

    production: dict[str, list[CounterSample]]
    imports: list[CounterSample]
    exports: list[CounterSample]


def _time_filter(start: datetime, end: datetime) -> str:
    return (
        f"time >= {quote_string(start.astimezone(UTC).isoformat())} "
        f"AND time < {quote_string(end.astimezone(UTC).isoformat())}"
    )


def _ts(ms: object) -> datetime:
    return datetime.fromtimestamp(int(str(ms)) / 1000, UTC)


def read_household(
    influx: InfluxClient,
    gateway_id: str,
    device_ids: Sequence[str],
    start: datetime,
    end: datetime,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> HouseholdCounters:
    """The counters of a home's inverters and grid meter around ``[start, end)``."""
    margin = timedelta(seconds=max_gap_s)
    window = _time_filter(start - margin, end + margin)
    production: dict[str, list[CounterSample]] = {d: [] for d in device_ids}
    if device_ids:
        devices = " OR ".join(f'"device" = {quote_string(d)}' for d in device_ids)
        raw = end - start <= RAW_SPAN
        if raw:
            q = (
                f'SELECT "ac_energy_wh" AS "wh" FROM "{INVERTER_MEASUREMENT}" '
                f'WHERE ({devices}) AND {window} GROUP BY "device"'
            )
        else:
            q = (
                f'SELECT last("ac_energy_wh") AS "wh" FROM "{INVERTER_MEASUREMENT}" '
                f"WHERE ({devices}) AND {window} "
                f'GROUP BY time({INVERTER_BUCKET_S}s), "device" fill(none)'
            )
        bucket = timedelta(0) if raw else timedelta(seconds=INVERTER_BUCKET_S)
        for row in influx.query_records(q):
            if row.get("wh") is not None and str(row["device"]) in production:
                production[str(row["device"])].append(
                    CounterSample(_ts(row["time"]) + bucket, float(row["wh"]))
                )
    q = (
        f'SELECT "import_energy_wh", "export_energy_wh" FROM "{METER_MEASUREMENT}" '
        f'WHERE "gateway" = {quote_string(gateway_id)} AND {window}'
    )
    imports: list[CounterSample] = []
    exports: list[CounterSample] = []
    for row in influx.query_records(q):
        at = _ts(row["time"])
        if row.get("import_energy_wh") is not None:
            imports.append(CounterSample(at, float(row["import_energy_wh"])))
        if row.get("export_energy_wh") is not None:
            exports.append(CounterSample(at, float(row["export_energy_wh"])))
    return HouseholdCounters(production, imports, exports)


def household_intervals(
    influx: InfluxClient,
    gateway_id: str,
    device_ids: Sequence[str],
    start: datetime,
    end: datetime,
    step_s: int = DEFAULT_STEP_S,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> list[IntervalBalance]:
    """A home's balance per grid interval of ``[start, end)``, from InfluxDB."""
    counters = read_household(influx, gateway_id, device_ids, start, end, max_gap_s)
    return balance_intervals(
        list(counters.production.values()),
        counters.imports,
        counters.exports,
        start,
        end,
        step_s,
        max_gap_s,
    )
