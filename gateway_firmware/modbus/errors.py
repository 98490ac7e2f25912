"""Errors raised while talking Modbus; each message names where (host/port or serial port, unit)."""

from __future__ import annotations


class ModbusError(Exception):
    """Base class: a poll could not produce a reading.

    ``reason`` is short and stable (usable as a metric label or a status ``last_poll``).
    """

    reason = "modbus_error"


class ConnectionFailed(ModbusError):
    """The bus (TCP connection or serial port) could not be opened or was lost."""

    reason = "connection_failed"


class NoResponse(ModbusError):
    """The bus is up but the unit did not answer in time (wrong unit id, device asleep)."""

    reason = "no_response"


class DeviceException(ModbusError):
    """The device answered with a Modbus exception response."""

    reason = "device_exception"

    def __init__(self, message: str, *, code: int, address: int, count: int, unit: int) -> None:
        super().__init__(message)
        self.code = code
        self.address = address
        self.count = count
        self.unit = unit


class IllegalAddress(DeviceException):
    """Exception code 2: the device does not serve (all of) the registers asked for."""

    reason = "illegal_address"


class DeviceBusy(DeviceException):
    """Exception code 6: the device (often a slow dongle) is busy; try again later."""

    reason = "device_busy"


class NotIdentified(ModbusError):
    """No SunSpec marker and no matching profile: the device could not be identified."""

    reason = "not_identified"


class ProfileError(ValueError):
    """A vendor profile file is invalid; the message names the file and the offending key."""
