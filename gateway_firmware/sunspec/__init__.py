"""SunSpec Modbus client: the official model definitions, discovery, model chain, decoding."""

from gateway_firmware.sunspec.client import (
    SunSpecDevice,
    SunSpecLayout,
    SunSpecMeter,
    find_base,
    walk_models,
)

__all__ = ["SunSpecDevice", "SunSpecLayout", "SunSpecMeter", "find_base", "walk_models"]
