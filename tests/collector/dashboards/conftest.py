"""Fixtures of the dashboard tests: an InfluxDB with its monitor on, filled with sample data."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector import devservices
from collector.dashboards.daily_yield import local_days, today_local, write_daily_yields
from collector.dashboards.sample_data import SampleOptions, write_sample
from collector.devservices import Influxd
from collector.influx import InfluxClient
from collector.registry.fleet_file import Fleet, load_fleet_file

ROOT = Path(__file__).resolve().parents[3]
#: A summer noon: every panel has something to show (production, a fault, flags).
NOW = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)


class MonitoredInfluxd(Influxd):
    """InfluxDB with its ``_internal`` monitor database on (every second), as in production."""

    def start(self) -> None:
        original = devservices._INFLUXD_CONFIG
        devservices._INFLUXD_CONFIG = original.replace(
            "store-enabled = false", 'store-enabled = true\n  store-interval = "1s"'
        )
        try:
            super().start()
        finally:
            devservices._INFLUXD_CONFIG = original


@pytest.fixture(scope="module")
def monitored_influxd() -> Iterator[Influxd]:
    with MonitoredInfluxd.create() as server:
        client = InfluxClient(server.url, "_internal")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            names = {r["name"] for r in client.query_records("SHOW DATABASES", database="")}
            # Rates need the monitor's counters in at least three 10 s buckets.
            if (
                "_internal" in names
                and len(
                    client.query_records(
                        'SELECT count("writeReq") FROM "_internal"."monitor"."httpd" '
                        "WHERE time > now() - 5m GROUP BY time(10s) fill(none)"
                    )
                )
                >= 3
            ):
                break
            time.sleep(0.3)
        else:
            pytest.fail("InfluxDB's monitor did not create the _internal database")
        yield server


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet_file(ROOT / "config" / "fleet.small.yaml")


@pytest.fixture(scope="module")
def filled(monitored_influxd: Influxd, fleet: Fleet) -> Iterator[InfluxClient]:
    """A database with three days of sample readings ending at :data:`NOW`, and daily_yield."""
    client = InfluxClient(monitored_influxd.url, f"dash_{uuid.uuid4().hex[:10]}")
    client.create_database()
    write_sample(
        client,
        fleet,
        SampleOptions(
            end=NOW, days=3, interval_s=300, fault_device="inv-s002", gap_device="inv-s001-b"
        ),
    )
    today = today_local(NOW)
    write_daily_yields(client, fleet, local_days(today - timedelta(days=3), today))
    yield client
    client.query(f'DROP DATABASE "{client.database}"', database="", epoch=None)
