"""Readings of inverters: one poll of one inverter, and the batch a gateway publishes.

Units are in the names (``ac_power_w`` [W], ``ac_energy_wh`` [Wh], the lifetime counter).
:class:`ReadingView` is the read-only shape of a reading that the server reads through, so a
faster decoder's structs can stand in for :class:`Reading`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Protocol

from pydantic import Field

from zonnewijk_wire.common import (
    MAX_READINGS_PER_BATCH,
    WIRE_VERSION,
    FiniteFloat,
    Identifier,
    Strict,
    UtcDatetime,
)


class InverterState(StrEnum):
    """Normalised inverter state; the vendor's raw code travels beside it."""

    OFF = "off"
    SLEEPING = "sleeping"
    STARTING = "starting"
    PRODUCING = "producing"
    THROTTLED = "throttled"
    SHUTTING_DOWN = "shutting_down"
    FAULT = "fault"
    STANDBY = "standby"
    UNKNOWN = "unknown"


class ReadingFlag(StrEnum):
    """Quality flags a gateway sets on a reading; values are never silently "fixed"."""

    #: A value was the device's "not implemented"/invalid sentinel and was left out.
    SENTINEL = "sentinel"
    #: The lifetime counter is lower than the previous reading's.
    COUNTER_BACKWARDS = "counter_backwards"
    #: The counter rose by more than the AC rating allows in the elapsed time.
    COUNTER_JUMP = "counter_jump"
    #: A scale factor outside -10..10 made a value unusable.
    BAD_SCALE_FACTOR = "bad_scale_factor"
    #: The reading was replayed from the gateway's spool after an outage.
    REPLAYED = "replayed"
    #: Polled while the gateway's clock was unsynchronised, held, and stamped once it synced
    #: from the monotonic time of the poll (wire revision 2, docs/clock.md).
    TIME_RESTAMPED = "time_restamped"
    #: The wall clock stepped back: the stamp was moved to 1 ms after the device's previous
    #: one, so stamps stay unique and in order (wire revision 2).
    TIME_GUARDED = "time_guarded"
    #: Polled while the clock was unsynchronised in a boot that ended before it synced: the
    #: stamp is the unsynchronised clock's and must not be used for billing (wire revision 2).
    TIME_UNKNOWN = "time_unknown"


class DcInput(Strict):
    """One MPPT input (string) of an inverter."""

    mppt: Annotated[int, Field(ge=1, le=32, description="MPPT number, 1-based")]
    dc_voltage_v: FiniteFloat | None = Field(default=None, description="DC voltage [V]")
    dc_current_a: FiniteFloat | None = Field(default=None, description="DC current [A]")
    dc_power_w: FiniteFloat | None = Field(default=None, description="DC power [W]")


class Reading(Strict):
    """One poll of one inverter."""

    device_id: Identifier
    ts: UtcDatetime = Field(description="time of the poll, UTC")
    ac_power_w: FiniteFloat | None = Field(default=None, description="AC active power [W]")
    ac_energy_wh: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        default=None, description="lifetime AC energy counter [Wh]"
    )
    ac_voltage_v: FiniteFloat | None = Field(default=None, description="AC voltage, phase A [V]")
    grid_frequency_hz: FiniteFloat | None = Field(default=None, description="grid frequency [Hz]")
    cabinet_temp_c: FiniteFloat | None = Field(default=None, description="cabinet temperature [°C]")
    dc: tuple[DcInput, ...] = Field(default=(), description="per-MPPT DC values")
    state: InverterState = InverterState.UNKNOWN
    vendor_state: int | None = Field(default=None, description="the vendor's raw state code")
    events: tuple[str, ...] = Field(default=(), description="normalised event names")
    vendor_events: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="the vendor's raw event bitfield"
    )
    flags: tuple[ReadingFlag, ...] = Field(default=(), description="quality flags")
    raw: dict[str, FiniteFloat] = Field(
        default_factory=dict, description="raw register values kept for flagged fields"
    )


class DcView(Protocol):
    """The read-only shape of one MPPT input (:class:`DcInput` or a faster decoder's)."""

    @property
    def mppt(self) -> int: ...
    @property
    def dc_voltage_v(self) -> float | None: ...
    @property
    def dc_current_a(self) -> float | None: ...
    @property
    def dc_power_w(self) -> float | None: ...


class ReadingView(Protocol):
    """The read-only shape of a reading: :class:`Reading` and any faster decoder's struct.

    The server reads readings through this protocol, so a decoder other than pydantic (the
    collector's msgspec structs) can stand in for the model; units as in :class:`Reading`.
    """

    @property
    def device_id(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def ac_power_w(self) -> float | None: ...
    @property
    def ac_energy_wh(self) -> float | None: ...
    @property
    def ac_voltage_v(self) -> float | None: ...
    @property
    def grid_frequency_hz(self) -> float | None: ...
    @property
    def cabinet_temp_c(self) -> float | None: ...
    @property
    def dc(self) -> Sequence[DcView]: ...
    @property
    def state(self) -> InverterState: ...
    @property
    def vendor_state(self) -> int | None: ...
    @property
    def events(self) -> Sequence[str]: ...
    @property
    def vendor_events(self) -> int | None: ...
    @property
    def flags(self) -> Sequence[ReadingFlag]: ...
    @property
    def raw(self) -> Mapping[str, float]: ...


class ReadingsBatch(Strict):
    """A message on ``zonnewijk/v1/<gateway_id>/readings``."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    seq: Annotated[int, Field(ge=0, description="per-gateway sequence number")]
    sent_at: UtcDatetime
    readings: Annotated[tuple[Reading, ...], Field(min_length=1, max_length=MAX_READINGS_PER_BATCH)]
