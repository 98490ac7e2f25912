"""The provisioned alert rules' queries run against a real InfluxDB and fire when they should."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from collector.dashboards.alert_rules import provisioning
from collector.dashboards.grafana_macros import TimeRange, apply_macros
from collector.timeseries.influx import InfluxClient, InfluxWriteError

from .conftest import NOW

RULES = {r["uid"]: r for r in provisioning()["groups"][0]["rules"]}


def _run(influx: InfluxClient, uid: str, ref_id: str, now: datetime) -> float | None:
    """The rule query's last value (reduce "last"), or None when it returns no data."""
    item = next(d for d in RULES[uid]["data"] if d["refId"] == ref_id)
    rel = item["relativeTimeRange"]
    tr = TimeRange(now - timedelta(seconds=rel["from"]), now - timedelta(seconds=rel["to"]))
    query = apply_macros(item["model"]["query"], tr, timedelta(seconds=10))
    series = influx.query(query)[0]
    values = [row[-1] for s in series for row in s.values if row[-1] is not None]
    return values[-1] if values else None


def test_collector_silent_is_quiet_with_fresh_readings_and_fires_without(
    filled: InfluxClient,
) -> None:
    assert (_run(filled, "zw-collector-silent", "A", NOW) or 0) >= 1
    assert _run(filled, "zw-collector-silent", "A", NOW + timedelta(hours=1)) is None
    assert RULES["zw-collector-silent"]["noDataState"] == "Alerting"


def test_fleet_nothing_in_daylight_compares_with_yesterday(filled: InfluxClient) -> None:
    today = _run(filled, "zw-fleet-nothing-in-daylight", "A", NOW)
    yesterday = _run(filled, "zw-fleet-nothing-in-daylight", "D", NOW)
    assert today is not None and today > 50, "the fleet produces at noon: no alert"
    assert yesterday is not None and yesterday > 1000
    night = NOW.replace(hour=1)
    assert (_run(filled, "zw-fleet-nothing-in-daylight", "D", night) or 0) < 1000, "quiet at night"


def test_influxdb_write_errors_rise_when_influxdb_refuses_a_point(filled: InfluxClient) -> None:
    before = _run(filled, "zw-influxdb-write-errors", "A", datetime.now(UTC))
    assert before is not None, "InfluxDB's monitor statistics are queryable"
    with pytest.raises(InfluxWriteError):
        # ac_power_w is a float field: a string is a field type conflict, refused with 400.
        # The conflict is per shard: write it into the shard of the sample readings.
        stamp = int(NOW.timestamp() * 1000)
        filled.write_lines(f'inverter,gateway=gw-x,device=inv-x ac_power_w="broken" {stamp}')
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = _run(filled, "zw-influxdb-write-errors", "A", datetime.now(UTC))
        if after is not None and after > before:
            return
        time.sleep(0.5)
    pytest.fail("the write-errors rule did not see the refused point")
