"""Inverters as the gateway meets them: discovery, a reader per device, the read/scan commands.

Above the Modbus plumbing (:mod:`gateway_firmware.modbus`) and the two ways to decode a
device (:mod:`gateway_firmware.sunspec`, :mod:`gateway_firmware.profiles`).
"""
