"""``zonnewijk-gateway read``, ``scan`` and ``wire-schema`` as a person at a meter cupboard runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from collector.devtools.services import free_port
from collector.simulator.modbus_device import (
    DcValues,
    SimulatedInverters,
    SunSpecLayout,
    layout_for,
)
from zonnewijk_wire import Reading


def gateway(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway_firmware.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_read_prints_one_reading_as_json(serve: Callable[..., SimulatedInverters]) -> None:
    sim = serve({3: SunSpecLayout()})
    sim.set_values(
        ac_power_w=2468.0,
        ac_energy_wh=13_579_000.0,
        ac_voltage_v=230.7,
        grid_frequency_hz=50.01,
        cabinet_temp_c=35.5,
        dc=[DcValues(380.4, 6.71, 2552.0)],
    )
    result = gateway("read", "--host", "127.0.0.1", "--port", str(sim.port), "--unit", "3")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ac_power_w"] == 2468.0
    assert data["ac_energy_wh"] == 13_579_000.0
    assert data["ac_voltage_v"] == 230.7
    assert data["grid_frequency_hz"] == 50.01
    assert data["cabinet_temp_c"] == 35.5
    assert data["dc"] == [
        {"mppt": 1, "dc_voltage_v": 380.4, "dc_current_a": 6.71, "dc_power_w": 2552.0}
    ]
    assert data["state"] == "producing"
    Reading.model_validate(data)  # the wire format's own names and types


def test_read_with_profile_and_info(serve: Callable[..., SimulatedInverters]) -> None:
    sim = serve({1: layout_for("huawei-sun2000", model="SUN2000-5KTL-L1", serial="HV2212345")})
    sim.set_values(ac_power_w=4100.0, ac_energy_wh=9_870_120.0)
    result = gateway(
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        str(sim.port),
        "--profile",
        "huawei-sun2000",
        "--info",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["reading"]["ac_energy_wh"] == 9_870_120.0
    assert data["device_info"]["model"] == "SUN2000-5KTL-L1"
    assert data["device_info"]["serial"] == "HV2212345"


def test_unreachable_inverter_exits_non_zero_naming_host_port_unit() -> None:
    port = free_port()
    result = gateway(
        "read", "--host", "127.0.0.1", "--port", str(port), "--unit", "5", "--timeout", "1"
    )
    assert result.returncode != 0
    assert f"host 127.0.0.1 port {port} unit 5" in result.stderr
    assert result.stdout == ""


def test_wrong_unit_exits_non_zero(serve: Callable[..., SimulatedInverters]) -> None:
    sim = serve({126: layout_for("sma")})
    result = gateway("read", "--host", "127.0.0.1", "--port", str(sim.port), "--unit", "1")
    assert result.returncode == 1
    assert f"port {sim.port} unit 1" in result.stderr


def test_unknown_profile_is_explained(serve: Callable[..., SimulatedInverters]) -> None:
    sim = serve({1: SunSpecLayout()})
    result = gateway("read", "--host", "127.0.0.1", "--port", str(sim.port), "--profile", "fronius")
    assert result.returncode == 2
    assert "unknown profile 'fronius'; known: growatt" in result.stderr


def test_scan_finds_and_identifies_units(serve: Callable[..., SimulatedInverters]) -> None:
    sim = serve({126: layout_for("sma"), 2: layout_for("growatt")})
    result = gateway(
        "scan", "--host", "127.0.0.1", "--port", str(sim.port), "--units", "1-3,126", "--json"
    )
    assert result.returncode == 0, result.stderr
    found = {entry["unit"]: entry for entry in json.loads(result.stdout)}
    assert set(found) == {2, 126}
    assert found[126]["protocol"] == "sunspec"
    assert found[126]["models"] == [1, 11, 12, 103]
    assert found[126]["manufacturer"] == "SMA"
    assert "growatt" in found[2]["possible_profiles"]


def test_scan_with_nothing_there(serve: Callable[..., SimulatedInverters]) -> None:
    sim = serve({126: layout_for("sma")})
    result = gateway("scan", "--host", "127.0.0.1", "--port", str(sim.port), "--units", "1-2")
    assert result.returncode == 1
    assert "no device answered" in result.stderr


def test_wire_schema() -> None:
    result = gateway("wire-schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert set(schema["$defs"]) >= {"ReadingsBatch", "Reading", "DeviceInfo", "GatewayStatus"}
