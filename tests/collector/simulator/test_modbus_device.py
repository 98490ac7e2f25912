"""The simulated Modbus inverters: one-call state updates, pokes, and the CLI's production curve."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from collector.devtools.services import free_port, wait_for_port
from collector.simulator.inverter_commands import day_curve_power_w
from collector.simulator.modbus_device import (
    LAYOUT_NAMES,
    SimulatedInverters,
    SunSpecLayout,
    gateway_profile_for,
    layout_for,
)
from gateway_firmware.devices.reader import DeviceReader
from gateway_firmware.modbus.transport import BusSettings, ModbusBus, RegisterKind
from zonnewijk_wire import DcInput, InverterState, Reading, ReadingFlag

FAST = BusSettings(timeout_s=1.0, gap_s=0.0, retries=0)


def _reading(**values: object) -> Reading:
    base: dict[str, object] = {
        "device_id": "inv-1",
        "ts": datetime(2026, 6, 21, 12, 0, tzinfo=UTC),
        "ac_power_w": 3012.0,
        "ac_energy_wh": 4_500_000.0,
        "ac_voltage_v": 232.1,
        "grid_frequency_hz": 49.99,
        "cabinet_temp_c": 44.0,
        "dc": (
            DcInput(mppt=1, dc_voltage_v=355.0, dc_current_a=4.4, dc_power_w=1562.0),
            DcInput(mppt=2, dc_voltage_v=341.0, dc_current_a=4.3, dc_power_w=1466.0),
        ),
        "state": InverterState.THROTTLED,
        "vendor_state": 5,
        "vendor_events": 0,
    }
    base.update(values)
    return Reading.model_validate(base)


@pytest.mark.parametrize("layout", ["sunspec-int", "sma", "solaredge", "sunspec-float"])
def test_set_reading_round_trips_through_the_gateway(layout: str) -> None:
    unit = 126 if layout == "sma" else 1
    overrides = {} if layout in ("sunspec-float", "solaredge") else {"mppt_count": 2}
    with SimulatedInverters({unit: layout_for(layout, **overrides)}) as sim:
        want = _reading()
        sim.set_reading(want)
        with ModbusBus.tcp("127.0.0.1", sim.port, settings=FAST) as bus:
            got = DeviceReader(bus, unit=unit, device_id="inv-1", gateway_id="gw").poll()
    assert got.ac_power_w == want.ac_power_w
    assert got.ac_energy_wh == want.ac_energy_wh
    assert got.ac_voltage_v == want.ac_voltage_v
    assert got.grid_frequency_hz == want.grid_frequency_hz
    assert got.cabinet_temp_c == want.cabinet_temp_c
    assert got.state is InverterState.THROTTLED
    if "mppt_count" in overrides:
        assert got.dc == want.dc
    else:  # models 101/103/113 carry one DC total
        assert got.dc[0].dc_power_w == 3028.0
    assert got.flags == ()


def test_updates_while_running_and_pokes() -> None:
    layout = SunSpecLayout()
    sim = SimulatedInverters({1: layout, 2: layout_for("sungrow-sg")})
    with sim, ModbusBus.tcp("127.0.0.1", sim.port, settings=FAST) as bus:
        reader = DeviceReader(bus, unit=1, device_id="a", gateway_id="gw")
        for power in (100.0, 200.0, 300.0):
            sim.set_values(1, ac_power_w=power)
            assert reader.poll().ac_power_w == power
        w = layout.model_addresses()[103] + 14
        sim.poke(w, [0x8000], unit=1)
        reading = reader.poll()
        assert reading.ac_power_w is None and ReadingFlag.SENTINEL in reading.flags
        sim.clear_pokes(1)
        assert reader.poll().ac_power_w == 300.0
        # the other unit is untouched; its registers are input registers, low word first
        sim.set_values(2, ac_power_w=70_000.0)
        low, high = bus.read_registers(RegisterKind.INPUT, 5030, 2, unit=2)
        assert (high << 16) | low == 70_000
        assert sim.request_count(1) > 0


def test_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unit id"):
        SimulatedInverters({0: SunSpecLayout()})
    with SimulatedInverters({1: SunSpecLayout(), 2: SunSpecLayout()}) as sim:
        with pytest.raises(ValueError, match="say which one"):
            sim.set_values(ac_power_w=1.0)
        with pytest.raises(ValueError, match="unit 3 is not served"):
            sim.set_values(3, ac_power_w=1.0)
        with pytest.raises(ValueError, match=r"0\.\.65535"):
            sim.poke(40000, [70000], unit=1)
    with pytest.raises(Exception, match="unknown profile"):
        layout_for("no-such-inverter")
    assert "huawei-sun2000" in LAYOUT_NAMES


def test_gateway_profile_for_each_layout() -> None:
    assert gateway_profile_for("sma") == "sunspec"
    assert gateway_profile_for("sunspec-float") == "sunspec"
    assert gateway_profile_for("huawei") == "huawei-sun2000"
    assert gateway_profile_for("growatt") == "growatt"
    with SimulatedInverters({1: layout_for("sungrow")}) as sim:
        sim.set_values(ac_power_w=999.0)
        with ModbusBus.tcp("127.0.0.1", sim.port, settings=FAST) as bus:
            profile = gateway_profile_for("sungrow")
            reading = DeviceReader(
                bus, unit=1, device_id="x", gateway_id="gw", profile=profile
            ).poll()
    assert reading.ac_power_w == 999.0


def test_day_curve() -> None:
    assert day_curve_power_w(4.0, 3.0) == 0.0
    assert day_curve_power_w(4.0, 22.0) == 0.0
    assert day_curve_power_w(4.0, 13.0) == pytest.approx(3000.0)
    assert 0 < day_curve_power_w(4.0, 8.0) < day_curve_power_w(4.0, 11.0)
    with pytest.raises(ValueError):
        day_curve_power_w(0.0, 12.0)


@pytest.mark.slow
def test_simulate_inverter_command_serves_a_rising_counter() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "collector.cli",
            "simulate-inverter",
            "--port",
            str(port),
            "--unit",
            "4",
            "--kwp",
            "5",
            "--start",
            "2026-06-21T11:00:00+00:00",  # 13:00 in Amsterdam
            "--time-scale",
            "600",
            "--interval",
            "0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for_port("127.0.0.1", port, 30), "simulate-inverter did not listen"
        with ModbusBus.tcp("127.0.0.1", port, settings=FAST) as bus:
            reader = DeviceReader(bus, unit=4, device_id="inv-4", gateway_id="gw")
            first = reader.poll()
            time.sleep(1.0)
            second = reader.poll()
        assert first.state is InverterState.PRODUCING
        assert first.ac_power_w is not None and 3000 < first.ac_power_w <= 3750
        assert first.ac_energy_wh is not None and second.ac_energy_wh is not None
        assert second.ac_energy_wh > first.ac_energy_wh
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert f"unit(s) 4 on 127.0.0.1:{port}" in out
