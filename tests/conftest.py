"""Shared fixtures: real Mosquitto and InfluxDB on free ports, torn down afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from collector.devtools.services import Influxd, Mosquitto
from collector.settings import get_settings
from collector.timeseries.influx import InfluxClient


@pytest.fixture(autouse=True)
def _trusted_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gateways started by tests (in process or as subprocesses inheriting the environment)
    believe the wall clock: this machine's kernel reports it unsynchronised (no NTP daemon
    disciplines it), and a gateway would hold every reading (docs/clock.md). Tests about the
    clock set their own ``ZONNEWIJK_GATEWAY_CLOCK_SYNC`` or inject a clock."""
    monkeypatch.setenv("ZONNEWIJK_GATEWAY_CLOCK_SYNC", "trust")


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are read once per process; each test sees its own environment instead."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def influxd() -> Iterator[Influxd]:
    """One InfluxDB server for the whole test session; tests use their own databases."""
    with Influxd.create() as server:
        yield server


@pytest.fixture
def influx(influxd: Influxd) -> Iterator[InfluxClient]:
    """A fresh, empty database on the session's InfluxDB; dropped afterwards."""
    client = InfluxClient(influxd.url, f"test_{uuid.uuid4().hex[:12]}")
    client.create_database()
    yield client
    client.query(f'DROP DATABASE "{client.database}"', database="", epoch=None)


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A private Mosquitto broker (anonymous allowed, persistence on) for one test."""
    with Mosquitto.create() as broker:
        yield broker
