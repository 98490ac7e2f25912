"""Vendor profiles: schema, meaning checks, and each profile against a device serving it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.simulator.modbus_device import DcValues, SimulatedInverters, layout_for
from gateway_firmware.devices.reader import DeviceReader
from gateway_firmware.modbus.errors import ProfileError
from gateway_firmware.profiles import (
    _schema,
    default_devices_dir,
    load_profile_file,
    load_profiles,
    parse_profile,
)
from zonnewijk_wire import InverterState

DEVICES = default_devices_dir()
REGISTER_PROFILES = sorted(n for n, p in load_profiles().items() if p.protocol == "registers")


def test_every_profile_file_is_valid() -> None:
    profiles = load_profiles()
    assert {"sunspec", "huawei-sun2000", "sungrow-sg", "growatt"} <= set(profiles)
    for profile in profiles.values():
        assert profile.source


@pytest.mark.parametrize("name", REGISTER_PROFILES)
def test_profile_against_a_simulated_device(
    name: str, serve: Callable[..., SimulatedInverters], reader_for: Callable[..., DeviceReader]
) -> None:
    """Build the profile's map on a simulated device, read it back through the same file."""
    profile = load_profiles()[name]
    sim = serve({1: layout_for(name, serial="SN-" + name)})
    dc = [DcValues(351.2, 5.1, 1791.1), DcValues(322.4, 4.9, 1579.8)]
    sim.set_values(
        ac_power_w=3333.0,
        ac_energy_wh=12_345_000.0,
        ac_voltage_v=231.5,
        grid_frequency_hz=50.0,
        cabinet_temp_c=42.5,
        dc=dc,
        state=InverterState.PRODUCING,
    )
    reader = reader_for(sim, 1, profile=name)
    reading = reader.poll()
    fields = {r.field for r in profile.registers}
    expected = {
        "ac_power_w": 3333.0,
        "ac_energy_wh": 12_345_000.0,
        "ac_voltage_v": 231.5,
        "grid_frequency_hz": 50.0,
        "cabinet_temp_c": 42.5,
    }
    for field, value in expected.items():
        got = getattr(reading, field)
        assert (got == value) if field in fields else got is None, (field, got)
    for index, mppt in enumerate(reading.dc):
        source = dc[index]
        assert mppt.mppt == index + 1
        for field in ("dc_voltage_v", "dc_current_a", "dc_power_w"):
            want = getattr(source, field) if f"dc{index + 1}_{field[3:]}" in fields else None
            assert getattr(mppt, field) == want, (mppt, field)
    assert len(reading.dc) == len({f[:3] for f in fields if f.startswith("dc")})
    assert reading.state is InverterState.PRODUCING
    assert reading.flags == ()
    info = reader.device_info()
    assert info.manufacturer == profile.manufacturer
    assert info.profile == name
    if "serial" in profile.identify:
        assert info.serial == "SN-" + name
    # a state from the profile's table round-trips
    for entry in profile.states:
        sim.set_values(vendor_state=entry.last)
        got = reader.poll()
        assert (got.vendor_state, got.state) == (entry.last, entry.state)


@pytest.mark.parametrize("name", REGISTER_PROFILES)
def test_profile_invalid_values_become_missing(
    name: str, serve: Callable[..., SimulatedInverters], reader_for: Callable[..., DeviceReader]
) -> None:
    sim = serve({1: layout_for(name)})
    sim.set_values(ac_power_w=None, ac_energy_wh=5_000_000.0)
    reading = reader_for(sim, 1, profile=name).poll()
    assert reading.ac_power_w is None
    assert "sentinel" in reading.flags
    assert reading.ac_energy_wh == 5_000_000.0


def _growatt() -> dict[str, Any]:
    data = yaml.safe_load((DEVICES / "growatt.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _parse(data: dict[str, Any]) -> None:
    parse_profile(data, source="test.yaml", schema=_schema(DEVICES))


def test_schema_rejects_unknown_keys() -> None:
    data = _growatt()
    data["registers"][0]["gain"] = 10
    with pytest.raises(ProfileError, match=r"registers/0.*'gain' was unexpected"):
        _parse(data)
    data = _growatt()
    data["polling"] = {}
    with pytest.raises(ProfileError, match="'polling' was unexpected"):
        _parse(data)


def test_unit_must_match_the_glossary() -> None:
    data = _growatt()
    energy = next(r for r in data["registers"] if r["field"] == "ac_energy_wh")
    energy["unit"] = "W"
    with pytest.raises(ProfileError, match="unit 'W' does not match the glossary's 'Wh'"):
        _parse(data)


def test_overlapping_registers_and_states_are_refused() -> None:
    data = _growatt()
    data["registers"].append(
        {"field": "dc3_voltage_v", "vendor_name": "x", "address": 36, "type": "uint16", "unit": "V"}
    )
    with pytest.raises(ProfileError, match=r"ac_power_w .* overlaps dc3_voltage_v"):
        _parse(data)
    data = _growatt()
    data["states"].append({"code": 1, "state": "fault"})
    with pytest.raises(ProfileError, match="overlap"):
        _parse(data)


def test_unquoted_off_is_caught() -> None:
    """YAML 1.1 reads a bare ``off`` as false: the schema says so instead of mapping nonsense."""
    data = yaml.safe_load("code: 0\nstate: off\n")
    profile = copy.deepcopy(_growatt())
    profile["states"] = [data]
    with pytest.raises(ProfileError, match="False is not one of"):
        _parse(profile)


def test_file_name_must_match_profile_name(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text((DEVICES / "schema.json").read_text())
    path = tmp_path / "other-name.yaml"
    path.write_text((DEVICES / "growatt.yaml").read_text())
    with pytest.raises(ProfileError, match="must equal the file name"):
        load_profile_file(path)


def test_unknown_profile_lists_known_ones() -> None:
    from gateway_firmware.profiles import load_profile

    with pytest.raises(ProfileError, match="known: growatt, huawei-sun2000"):
        load_profile("fronius-typo")
