"""Fixtures of the dashboard tests: an InfluxDB with its monitor on, filled with sample data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collector.dashboards.daily_self_consumption import write_days as write_self_consumption_days
from collector.dashboards.daily_yield import local_days, today_local, write_daily_yields
from collector.dashboards.monitored_influxd import MonitoredInfluxd
from collector.dashboards.sample_data import SampleOptions, write_sample
from collector.dashboards.sample_store import fill_alerts, fill_settlement
from collector.devtools.services import Influxd
from collector.registry.fleet_file import Fleet, load_fleet_file
from collector.store.db import session_factory
from collector.store.testing import DatabaseUnavailableError, temporary_database
from collector.timeseries.influx import InfluxClient
from collector.timeseries.schema import backfill_rollups, init_database

ROOT = Path(__file__).resolve().parents[3]
#: A summer noon: every panel has something to show (production, a fault, flags).
NOW = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def monitored_influxd() -> Iterator[Influxd]:
    with MonitoredInfluxd.create() as server:
        server.wait_for_statistics()
        yield server


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    return load_fleet_file(ROOT / "config" / "fleet.small.yaml")


@pytest.fixture(scope="session")
def filled(monitored_influxd: Influxd, fleet: Fleet) -> Iterator[InfluxClient]:
    """A database with three days of sample readings ending at :data:`NOW`, and daily_yield."""
    client = InfluxClient(monitored_influxd.url, f"dash_{uuid.uuid4().hex[:10]}")
    init_database(client)  # retention policies and continuous queries (collector.timeseries.schema)
    write_sample(
        client,
        fleet,
        SampleOptions(
            end=NOW, days=3, interval_s=300, fault_device="inv-s002", gap_device="inv-s001-b"
        ),
    )
    backfill_rollups(client, NOW - timedelta(days=4), NOW)
    today = today_local(NOW)
    write_daily_yields(client, fleet, local_days(today - timedelta(days=3), today))
    write_self_consumption_days(client, fleet, local_days(today - timedelta(days=3), today))
    yield client
    client.query(f'DROP DATABASE "{client.database}"', database="", epoch=None)


@pytest.fixture(scope="session")
def store(filled: InfluxClient, fleet: Fleet) -> Iterator[Engine]:
    try:
        with temporary_database("postgresql") as engine:
            sessions = session_factory(engine)
            fill_alerts(sessions, fleet, NOW, fault_device="inv-s002")
            fill_settlement(sessions, filled, fleet, "2026-06", NOW)
            yield engine
    except DatabaseUnavailableError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"the local PostgreSQL is part of the test setup: {exc}")
