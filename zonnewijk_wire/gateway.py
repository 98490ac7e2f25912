"""What a gateway says about itself and its devices (retained messages)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from zonnewijk_wire.common import WIRE_VERSION, Identifier, Strict, UtcDatetime


class GatewayStatus(Strict):
    """Retained message on ``zonnewijk/v1/<gateway_id>/status`` (also the last will)."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    state: Literal["online", "offline"]
    ts: UtcDatetime | None = None
    firmware_version: str | None = None
    spool_depth: Annotated[int, Field(ge=0)] | None = None
    spool_dropped: Annotated[int, Field(ge=0)] | None = None
    last_poll: str | None = Field(default=None, description="outcome of the last poll")
    config_version: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="the server configuration version the gateway runs"
    )
    config_refused: str | None = Field(
        default=None,
        description="why the newest configuration sent was not applied (version: reason)",
    )
    package_version: str | None = Field(default=None, description="installed Debian package")
    channel: str | None = Field(default=None, description="release channel: canary, stable")
    spool_state: Literal["ok", "full", "read-only", "io-error", "unavailable"] | None = Field(
        default=None,
        description="whether the spool can be written; otherwise readings are held in memory",
    )
    spool_problem: str | None = Field(
        default=None, description="what is wrong with the spool (or was: a corrupt file moved)"
    )
    memory_readings: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="readings held in memory because the spool cannot be written"
    )
    clock_synced: bool | None = Field(
        default=None, description="whether the gateway's wall clock is synchronised (rev. 2)"
    )
    clock_source: str | None = Field(
        default=None, description="who says so: chrony, timesyncd, kernel, file, trust (rev. 2)"
    )
    clock_held: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="readings held until the clock is synchronised (rev. 2)"
    )


class DeviceInfo(Strict):
    """Retained message on ``zonnewijk/v1/<gateway_id>/devices/<device_id>/info``."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    device_id: Identifier
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    profile: str | None = Field(
        default=None, description="register map used (sunspec, huawei, ...)"
    )
    sunspec_models: tuple[int, ...] = ()
