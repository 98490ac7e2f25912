"""The bus: busy devices, backoff on connect failures, polite gaps, shared buses."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from collector.devtools.services import free_port
from collector.simulator.modbus_device import SimulatedInverters, SunSpecLayout, layout_for
from gateway_firmware.devices.reader import DeviceReader
from gateway_firmware.modbus.errors import ConnectionFailed, DeviceBusy
from gateway_firmware.modbus.transport import BusSettings, ModbusBus, RegisterKind

Serve = Callable[..., SimulatedInverters]


def test_busy_device_is_retried_after_a_pause(
    serve: Serve, tcp_bus: Callable[..., ModbusBus]
) -> None:
    sim = serve({1: layout_for("huawei-sun2000")})
    sim.set_values(ac_power_w=3210.0)
    bus = tcp_bus(sim)
    reader = DeviceReader(bus, unit=1, device_id="inv-1", gateway_id="gw", profile="huawei-sun2000")
    sim.reply_busy(2)
    assert reader.poll().ac_power_w == 3210.0
    assert bus.stats["busy_retries"] == 2
    sim.reply_busy(3)  # more than busy_retries=2
    with pytest.raises(DeviceBusy, match="busy"):
        reader.poll()
    assert reader.stats["device_busy"] == 1


def test_connect_backoff_and_reconnect() -> None:
    port = free_port()
    now = [1000.0]
    bus = ModbusBus.tcp(
        "127.0.0.1",
        port,
        settings=BusSettings(
            timeout_s=1.0, gap_s=0.0, reconnect_backoff_s=5.0, reconnect_backoff_max_s=20.0
        ),
    )
    bus._clock = lambda: now[0]  # drive the backoff clock by hand
    with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}"):
        bus.read_registers(RegisterKind.HOLDING, 40000, 2, unit=1)
    assert bus.stats["connects"] == 1
    with pytest.raises(ConnectionFailed, match="backing off"):
        bus.read_registers(RegisterKind.HOLDING, 40000, 2, unit=1)
    assert bus.stats["connects"] == 1  # no new attempt while backing off
    now[0] += 5.1
    with pytest.raises(ConnectionFailed, match=r"retrying in 10\.0 s"):
        bus.read_registers(RegisterKind.HOLDING, 40000, 2, unit=1)
    assert bus.stats["connects"] == 2
    # the inverter comes back on that port
    with SimulatedInverters({1: SunSpecLayout()}, port=port) as sim:
        assert sim.port == port
        now[0] += 10.1
        assert bus.read_registers(RegisterKind.HOLDING, 40000, 2, unit=1) == [0x5375, 0x6E53]
    bus.close()


def test_gap_between_requests() -> None:
    sleeps: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with SimulatedInverters({1: SunSpecLayout()}) as sim:
        bus = ModbusBus.tcp("127.0.0.1", sim.port, settings=BusSettings(gap_s=0.5, timeout_s=1.0))
        bus._clock = lambda: now[0]
        bus._sleep = sleep
        for _ in range(3):
            bus.read_registers(RegisterKind.HOLDING, 40000, 2, unit=1)
        bus.close()
    assert sleeps == [0.5, 0.5]


def test_bad_read_arguments_are_refused() -> None:
    bus = ModbusBus.tcp("127.0.0.1", 5020)
    with pytest.raises(ValueError, match="count"):
        bus.read_registers(RegisterKind.HOLDING, 0, 126, unit=1)
    with pytest.raises(ValueError, match="unit id"):
        bus.read_registers(RegisterKind.HOLDING, 0, 1, unit=300)
    with pytest.raises(ValueError, match="port"):
        ModbusBus.tcp("127.0.0.1", 70000)
    with pytest.raises(ValueError, match="gap_s"):
        BusSettings(gap_s=-1)


def test_several_devices_on_one_bus_polled_from_threads(serve: Serve) -> None:
    sim = serve({1: SunSpecLayout(), 2: layout_for("growatt"), 126: layout_for("sma")})
    sim.set_values(1, ac_power_w=1000.0)
    sim.set_values(2, ac_power_w=2000.0)
    sim.set_values(126, ac_power_w=3000.0)
    with ModbusBus.tcp(
        "127.0.0.1", sim.port, settings=BusSettings(gap_s=0.0, timeout_s=2.0)
    ) as bus:
        readers = [
            DeviceReader(bus, unit=1, device_id="a", gateway_id="gw"),
            DeviceReader(bus, unit=2, device_id="b", gateway_id="gw", profile="growatt"),
            DeviceReader(bus, unit=126, device_id="c", gateway_id="gw"),
        ]
        results: dict[str, list[float | None]] = {r.device_id: [] for r in readers}
        errors: list[BaseException] = []

        def poll(reader: DeviceReader) -> None:
            try:
                for _ in range(5):
                    results[reader.device_id].append(reader.poll().ac_power_w)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=poll, args=(r,)) for r in readers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == []
    assert results == {"a": [1000.0] * 5, "b": [2000.0] * 5, "c": [3000.0] * 5}
