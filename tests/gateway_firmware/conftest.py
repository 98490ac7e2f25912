"""Fixtures for the gateway's Modbus side: simulated inverters on free ports, fast buses."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from collector.simulator.modbus_device import Layout, SimulatedInverters
from gateway_firmware.devices.reader import DeviceReader
from gateway_firmware.modbus.transport import BusSettings, ModbusBus

#: Bus settings for tests: no pause between requests, short timeouts.
FAST = BusSettings(
    timeout_s=1.0, gap_s=0.0, retries=0, busy_backoff_s=0.01, reconnect_backoff_s=0.05
)


@pytest.fixture
def fast_settings() -> BusSettings:
    return FAST


@pytest.fixture
def serve() -> Iterator[Callable[..., SimulatedInverters]]:
    """``serve({unit: layout}, **kwargs)`` starts a simulated inverter server (TCP, free port)."""
    started: list[SimulatedInverters] = []

    def start(units: Mapping[int, Layout], **kwargs: Any) -> SimulatedInverters:
        sim = SimulatedInverters(units, **kwargs).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def tcp_bus() -> Iterator[Callable[..., ModbusBus]]:
    """``tcp_bus(sim)`` opens a fast bus to a simulated server; closed afterwards."""
    buses: list[ModbusBus] = []

    def open_bus(sim: SimulatedInverters, settings: BusSettings = FAST) -> ModbusBus:
        bus = ModbusBus.tcp("127.0.0.1", sim.port, settings=settings)
        buses.append(bus)
        return bus

    yield open_bus
    for bus in buses:
        bus.close()


@pytest.fixture
def reader_for(
    tcp_bus: Callable[..., ModbusBus],
) -> Callable[..., DeviceReader]:
    """``reader_for(sim, unit, profile="sunspec", **kwargs)``: a DeviceReader on its own bus."""

    def make(
        sim: SimulatedInverters, unit: int, profile: str = "sunspec", **kwargs: Any
    ) -> DeviceReader:
        return DeviceReader(
            tcp_bus(sim),
            unit=unit,
            device_id=f"inv-{unit}",
            gateway_id="gw-test",
            profile=profile,
            **kwargs,
        )

    return make
