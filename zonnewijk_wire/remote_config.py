"""The part of a gateway's configuration the server keeps and sends: devices, intervals, logging.

The server stores one :class:`RemoteConfig` per gateway and version, validates it before it is
sent (with this very model, so both sides agree on what is valid) and delivers it at enrolment
and later over MQTT (retained ``zonnewijk/v1/<gateway_id>/config``). The gateway's own file
keeps what only the Pi knows: its broker connection, credentials and spool.

:class:`DeviceConfig` is one inverter (or meter) as the gateway polls it; the gateway's
configuration file uses the same model for its ``devices`` section.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from zonnewijk_wire.common import WIRE_VERSION, Identifier, Strict, UtcDatetime

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class DeviceConfig(Strict):
    """One inverter, polled every ``interval_s``.

    Either ``host`` (Modbus TCP) or ``serial_port`` (Modbus RTU over RS-485) is given; devices
    with the same host:port or serial port share one bus and are polled one request at a time.
    """

    device_id: Identifier
    profile: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        default="sunspec", description="sunspec (discovered) or a file name in config/devices/"
    )
    unit: Annotated[int, Field(ge=0, le=247)] = 1
    interval_s: Annotated[float, Field(ge=1, le=3600, allow_inf_nan=False)] = 10.0
    host: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    serial_port: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    baudrate: Annotated[int, Field(ge=1200, le=115200)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    timeout_s: PositiveSeconds = 3.0
    gap_s: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = 0.05
    rated_power_w: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        default=None, description="AC rating, used to flag implausible counter jumps [W]"
    )

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.host is None) == (self.serial_port is None):
            raise ValueError("give exactly one of host (Modbus TCP) or serial_port (Modbus RTU)")
        return self

    @property
    def bus_key(self) -> str:
        """Devices with the same key share one bus."""
        return (
            f"tcp:{self.host}:{self.port}" if self.host is not None else f"rtu:{self.serial_port}"
        )


def unique_device_ids(devices: tuple[DeviceConfig, ...]) -> tuple[DeviceConfig, ...]:
    """``devices`` unchanged, or ValueError naming the first id that appears twice."""
    seen: set[str] = set()
    for d in devices:
        if d.device_id in seen:
            raise ValueError(f"device_id {d.device_id!r} appears twice")
        seen.add(d.device_id)
    return devices


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class RemoteConfig(Strict):
    """A gateway's server-kept configuration, one version of it.

    ``version`` grows by one with every change the operators make; a gateway applies a
    document only when its version is newer than the one it runs, and reports the version it
    runs (or the one it refused, with the reason) in its status.
    """

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    version: Annotated[int, Field(ge=1)]
    issued_at: UtcDatetime
    devices: Annotated[tuple[DeviceConfig, ...], Field(min_length=1, max_length=32)]
    status_interval_s: Annotated[float, Field(ge=1, le=3600, allow_inf_nan=False)] = 60.0
    log_level: LogLevel = "INFO"

    @field_validator("devices")
    @classmethod
    def _unique_ids(cls, devices: tuple[DeviceConfig, ...]) -> tuple[DeviceConfig, ...]:
        return unique_device_ids(devices)

    def body(self) -> dict[str, object]:
        """The settings without version and time: what decides whether two versions differ."""
        return self.model_dump(mode="json", exclude={"version", "issued_at"})

    def digest(self) -> str:
        """SHA-256 of :meth:`body` as canonical JSON (hex)."""
        return hashlib.sha256(canonical_json(self.body()).encode()).hexdigest()


def canonical_json(data: object) -> str:
    """JSON with sorted keys and no spaces: the same bytes for the same data, for hashing."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
