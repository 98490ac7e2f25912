"""The retention of raw meter readings (``zonnewijk consent purge``), on a real InfluxDB:
raw readings older than thirteen months go, newer ones and the homes' daily balances stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.registry.consent_purge import RAW_RETENTION_DAYS, purge_expired_raw
from collector.timeseries.influx import InfluxClient
from collector.timeseries.schema import init_database

NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_raw_meter_readings_older_than_the_retention_go_daily_balances_stay(
    influx: InfluxClient,
) -> None:
    init_database(influx)
    old = NOW - timedelta(days=RAW_RETENTION_DAYS, hours=1)
    kept = NOW - timedelta(days=RAW_RETENTION_DAYS - 1)
    lines = []
    for gateway in ("gw-s001", "gw-s002"):
        tags = f"gateway={gateway},device=p1,source=p1"
        for moment, wh in ((old, 1000.0), (kept, 2000.0)):
            lines += [
                f"grid_meter,{tags} import_energy_wh={wh} {_ms(moment)}",
                f"grid_phase,{tags},phase=l1 voltage_v=230.1 {_ms(moment)}",
                f"gas_meter,{tags} gas_m3=12.5 {_ms(moment)}",
                f"household_energy_daily,site=S001,gateway={gateway} production_kwh=9.5 "
                f"{_ms(moment)}",
            ]
    influx.write_lines(lines)

    cutoff = purge_expired_raw(influx, now=NOW)

    assert cutoff == NOW - timedelta(days=RAW_RETENTION_DAYS)
    for measurement in ("grid_meter", "grid_phase", "gas_meter"):
        rows = influx.query_records(f'SELECT * FROM "{measurement}"')
        assert len(rows) == 2, measurement  # one per gateway, the newer
        assert all(r["time"] >= _ms(cutoff) for r in rows), measurement
    days = influx.query_records('SELECT * FROM "household_energy_daily"')
    assert len(days) == 4  # the daily balances outlive the raw readings
    # a second run finds nothing more to delete
    purge_expired_raw(influx, now=NOW)
    assert len(influx.query_records('SELECT * FROM "grid_meter"')) == 2
