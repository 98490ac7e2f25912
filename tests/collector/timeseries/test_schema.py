"""``db init`` against a real InfluxDB: policies, rollups that really run, idempotence, backfill."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest

from collector.timeseries.influx import InfluxClient, Point
from collector.timeseries.schema import (
    _duration_s,
    backfill_rollups,
    backfill_windows,
    continuous_query_names,
    init_database,
    retention_policies,
    rollups,
)


def _write_day(influx: InfluxClient, start: datetime, minutes: int) -> None:
    points = [
        Point(
            "inverter",
            {"gateway": "gw-1", "device": "inv-1"},
            {"ac_power_w": float(100 + i), "ac_energy_wh": float(1000 + i)},
            start + timedelta(minutes=i),
        )
        for i in range(minutes)
    ]
    points += [
        Point(
            "dc",
            {"gateway": "gw-1", "device": "inv-1", "mppt": "1"},
            {"dc_power_w": float(50 + i), "dc_voltage_v": 300.0, "dc_current_a": 1.0},
            start + timedelta(minutes=i),
        )
        for i in range(minutes)
    ]
    influx.write_points(points)


def test_init_creates_policies_and_queries_and_is_idempotent(influx: InfluxClient) -> None:
    actions = init_database(influx)
    assert "created retention policy rollup_5m (INF)" in actions
    assert sum(a.startswith("created continuous query") for a in actions) == 4
    policies = {r["name"]: r for r in influx.query_records("SHOW RETENTION POLICIES")}
    assert set(policies) >= {"autogen", "rollup_5m", "rollup_1d"}
    assert policies["autogen"]["default"] is True
    assert sorted(continuous_query_names(influx)) == sorted(q.name for q in rollups())
    assert init_database(influx) == []  # second run changes nothing


def test_init_alters_changed_duration_and_replaces_changed_query(influx: InfluxClient) -> None:
    init_database(influx)
    actions = init_database(
        influx,
        policies=retention_policies(raw_duration="1000d"),
        queries=rollups(every_5m="10m"),
    )
    assert "altered retention policy autogen (1000d)" in actions
    assert "replaced continuous query cq_inverter_5m" in actions
    raw = next(r for r in influx.query_records("SHOW RETENTION POLICIES") if r["name"] == "autogen")
    assert raw["duration"] == "24000h0m0s"


def test_init_creates_missing_database(influxd: object) -> None:
    from collector.devtools.services import Influxd

    assert isinstance(influxd, Influxd)
    client = InfluxClient(influxd.url, f"fresh_{int(time.time() * 1000)}")
    try:
        actions = init_database(client)
        assert actions[0] == f"created database {client.database}"
    finally:
        client.query(f'DROP DATABASE "{client.database}"', database="", epoch=None)


def test_continuous_queries_roll_up_in_the_server(influx: InfluxClient) -> None:
    # Same statements as production, only run every second so the test need not wait 5 min.
    init_database(influx, queries=rollups(every_5m="1s", every_1d="1s"))
    start = (datetime.now(UTC) - timedelta(minutes=20)).replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % 5)
    _write_day(influx, start, 10)
    deadline = time.monotonic() + 15
    rows: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        rows = influx.query_records(
            'SELECT * FROM "rollup_5m"."inverter" WHERE time >= $start',
            params={"start": start.isoformat()},
        )
        if len(rows) == 2:
            break
        time.sleep(0.3)
    assert len(rows) == 2, rows
    first = rows[0]
    assert first["time"] == int(start.timestamp() * 1000)
    assert first["ac_power_w_mean"] == pytest.approx(102.0)  # mean of 100..104
    assert first["ac_power_w_max"] == 104.0
    assert first["ac_energy_wh_last"] == 1004.0
    assert first["samples"] == 5
    assert first["gateway"] == "gw-1" and first["device"] == "inv-1"


def test_backfill_rolls_up_days_old_data_on_amsterdam_days(influx: InfluxClient) -> None:
    init_database(influx)
    # 2026-10-25 is the 25-hour day (DST ends); local midnight is 22:00 UTC the day before.
    day_start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    _write_day(influx, day_start - timedelta(minutes=30), 60)  # spans local midnight
    ran = backfill_rollups(
        influx, day_start - timedelta(minutes=30), day_start + timedelta(hours=1)
    )
    assert ran == 4
    daily = influx.query_records('SELECT * FROM "rollup_1d"."inverter"')
    assert [r["time"] for r in daily] == [
        int(datetime(2026, 10, 23, 22, 0, tzinfo=UTC).timestamp() * 1000),
        int(day_start.timestamp() * 1000),
    ]
    before, on_day = daily
    assert before["ac_energy_wh_last"] == 1029.0 and before["samples"] == 30
    assert on_day["ac_energy_wh_last"] == 1059.0 and on_day["samples"] == 30
    five = influx.query_records('SELECT count("ac_power_w_mean") FROM "rollup_5m"."inverter"')
    assert five[0]["count"] == 12
    dc = influx.query_records('SELECT * FROM "rollup_1d"."dc"')
    assert dc and dc[0]["mppt"] == "1"
    assert backfill_rollups(influx, day_start, day_start) == 4  # rerun: same results
    assert len(influx.query_records('SELECT * FROM "rollup_1d"."inverter"')) == 2


@pytest.mark.parametrize(
    ("literal", "seconds"),
    [("INF", None), ("0s", None), ("168h0m0s", 604800.0), ("7d", 604800.0), ("1w", 604800.0)],
)
def test_duration_parsing(literal: str, seconds: float | None) -> None:
    assert _duration_s(literal) == seconds


def test_duration_parsing_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        _duration_s("7")
    with pytest.raises(ValueError):
        _duration_s("seven days")


def test_backfill_windows_are_whole_amsterdam_days_across_a_dst_change() -> None:
    # 2026-10-25 has 25 hours; windows of 2 days from 23 to 26 October (local)
    windows = backfill_windows(
        datetime(2026, 10, 23, 10, 0, tzinfo=UTC), datetime(2026, 10, 26, 10, 0, tzinfo=UTC), 2
    )
    assert windows == [
        "time >= '2026-10-23T00:00:00+02:00' AND time < '2026-10-25T00:00:00+02:00'",
        "time >= '2026-10-25T00:00:00+02:00' AND time < '2026-10-27T00:00:00+01:00'",
    ]


def test_a_backfill_in_day_windows_on_two_threads_gives_the_same_rollups(
    influx: InfluxClient,
) -> None:
    other = dataclasses.replace(influx, database=influx.database + "_windows")
    start = datetime(2026, 10, 22, 21, 0, tzinfo=UTC)
    end = start + timedelta(days=4)
    for client in (influx, other):
        init_database(client)
        for day in range(4):
            _write_day(client, start + timedelta(days=day), 120)  # each spans local midnight
    try:
        assert backfill_rollups(influx, start, end) == 4
        assert backfill_rollups(other, start, end, chunk_days=1, workers=2) == 4
        for query in ('SELECT * FROM "rollup_1d"."inverter"', 'SELECT * FROM "rollup_5m"."dc"'):
            assert other.query_records(query) == influx.query_records(query)
        daily = influx.query_records('SELECT * FROM "rollup_1d"."inverter"')
        assert len(daily) == 4 and daily[0]["samples"] == 60  # the last write ends at 00:00 CET
    finally:
        other.query(f'DROP DATABASE "{other.database}"', epoch=None)
