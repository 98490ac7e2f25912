"""The reader for a configured device: an inverter (:class:`DeviceReader`) or a grid meter
(:class:`MeterReader`), chosen by the profile's ``device_kind``."""

from __future__ import annotations

from pathlib import Path

from gateway_firmware.devices.meter_reader import MeterReader
from gateway_firmware.devices.reader import SUNSPEC, DeviceReader
from gateway_firmware.modbus.transport import ModbusBus
from gateway_firmware.profiles import load_profile


def is_meter_profile(profile: str, devices_dir: Path | None = None) -> bool:
    """Whether ``profile`` reads a grid meter (``sunspec-meter``) rather than an inverter."""
    if profile == SUNSPEC:
        return False
    return load_profile(profile, devices_dir).device_kind == "meter"


def make_reader(
    bus: ModbusBus,
    *,
    unit: int,
    device_id: str,
    gateway_id: str,
    profile: str = SUNSPEC,
    rated_ac_power_w: float | None = None,
    devices_dir: Path | None = None,
) -> DeviceReader | MeterReader:
    """A reader for one device on ``bus``; :class:`ProfileError` for an unknown profile."""
    if is_meter_profile(profile, devices_dir):
        return MeterReader(
            bus, unit=unit, device_id=device_id, gateway_id=gateway_id, profile_name=profile
        )
    return DeviceReader(
        bus,
        unit=unit,
        device_id=device_id,
        gateway_id=gateway_id,
        profile=profile,
        rated_ac_power_w=rated_ac_power_w,
        devices_dir=devices_dir,
    )
