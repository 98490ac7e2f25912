"""Modbus RTU over a socat pseudo-terminal pair: two inverters on one RS-485-like line."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.simulator.modbus_device import SimulatedInverters, SunSpecLayout, layout_for
from gateway_firmware.devices.reader import DeviceReader
from gateway_firmware.modbus.errors import NoResponse
from gateway_firmware.modbus.transport import BusSettings, ModbusBus


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    socat = shutil.which("socat")
    if socat is None:
        pytest.fail("socat is not installed (apt-get install socat)")
    inverter_end, gateway_end = tmp_path / "inverter", tmp_path / "gateway"
    process = subprocess.Popen(
        [
            socat,
            "-d",
            "-d",
            f"PTY,link={inverter_end},raw,echo=0",
            f"PTY,link={gateway_end},raw,echo=0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (inverter_end.exists() and gateway_end.exists()):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("socat did not create the pty pair")
            time.sleep(0.02)
        yield str(inverter_end), str(gateway_end)
    finally:
        process.terminate()
        process.wait(5)


def test_two_inverters_on_one_serial_line(pty_pair: tuple[str, str]) -> None:
    inverter_end, gateway_end = pty_pair
    units = {1: SunSpecLayout(mppt_count=2), 2: layout_for("growatt")}
    with SimulatedInverters(units, serial_port=inverter_end, baudrate=19200) as sim:
        sim.set_values(
            1, ac_power_w=2100.0, ac_energy_wh=3_000_000.0, dc=[(300.0, 3.5, 1050.0)] * 2
        )
        sim.set_values(2, ac_power_w=1650.5, ac_energy_wh=7_654_300.0)
        settings = BusSettings(timeout_s=1.0, gap_s=0.01, retries=0)
        with ModbusBus.serial(gateway_end, baudrate=19200, settings=settings) as bus:
            sunspec = DeviceReader(bus, unit=1, device_id="inv-a", gateway_id="gw")
            growatt = DeviceReader(
                bus, unit=2, device_id="inv-b", gateway_id="gw", profile="growatt"
            )
            a, b = sunspec.poll(), growatt.poll()
            assert (a.ac_power_w, a.ac_energy_wh, len(a.dc)) == (2100.0, 3_000_000.0, 2)
            assert (b.ac_power_w, b.ac_energy_wh) == (1650.5, 7_654_300.0)
            assert sunspec.device_info().sunspec_models == (1, 103, 160)
            sim.set_values(1, ac_power_w=2200.0)
            assert sunspec.poll().ac_power_w == 2200.0
            # nobody at unit 9 on this line
            with pytest.raises(NoResponse, match="unit 9"):
                DeviceReader(bus, unit=9, device_id="x", gateway_id="gw").poll()


def test_scan_over_serial(pty_pair: tuple[str, str]) -> None:
    import json
    import sys

    inverter_end, gateway_end = pty_pair
    units = {1: layout_for("solaredge"), 3: layout_for("huawei-sun2000")}
    with SimulatedInverters(units, serial_port=inverter_end, baudrate=9600):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway_firmware.cli",
                "scan",
                "--serial",
                gateway_end,
                "--units",
                "1-3",
                "--json",
                "--gap",
                "0.01",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    found = {entry["unit"]: entry for entry in json.loads(result.stdout)}
    assert set(found) == {1, 3}
    assert found[1]["models"] == [1, 101] and found[1]["manufacturer"] == "SolarEdge"
    assert found[3]["possible_profiles"] == ["huawei-sun2000"]
