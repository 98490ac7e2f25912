"""SunSpec Modbus client: discovery, model chain, decoding to the glossary."""

from gateway_firmware.sunspec.client import SunSpecDevice, SunSpecLayout, find_base, walk_models

__all__ = ["SunSpecDevice", "SunSpecLayout", "find_base", "walk_models"]
