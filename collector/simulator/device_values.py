"""What a simulated Modbus device reports, before a layout encodes it into registers.

:class:`InverterValues` for inverters (SunSpec or a vendor profile), :class:`GridMeterValues`
for a SunSpec meter at the grid connection. ``None`` encodes the layout's "not implemented" or
invalid value, never a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway_firmware.modbus.transport import RegisterKind
from zonnewijk_wire import InverterState, Reading

Image = dict[RegisterKind, dict[int, int]]


@dataclass
class DcValues:
    """One MPPT input of a simulated inverter; None encodes the layout's sentinel."""

    dc_voltage_v: float | None = None
    dc_current_a: float | None = None
    dc_power_w: float | None = None


@dataclass
class InverterValues:
    """Everything a simulated inverter reports; None encodes "not implemented" / invalid."""

    ac_power_w: float | None = 0.0
    ac_energy_wh: float | None = 0.0
    ac_voltage_v: float | None = 230.0
    grid_frequency_hz: float | None = 50.0
    cabinet_temp_c: float | None = 25.0
    dc: list[DcValues] = field(default_factory=list)
    state: InverterState = InverterState.PRODUCING
    vendor_state: int | None = None
    events: int = 0  # SunSpec Evt1 / Alrm bits, or a vendor fault code

    @classmethod
    def from_reading(cls, reading: Reading) -> InverterValues:
        """The values a device must hold to produce ``reading`` (events from vendor_events)."""
        dc = [DcValues(d.dc_voltage_v, d.dc_current_a, d.dc_power_w) for d in reading.dc]
        return cls(
            ac_power_w=reading.ac_power_w,
            ac_energy_wh=reading.ac_energy_wh,
            ac_voltage_v=reading.ac_voltage_v,
            grid_frequency_hz=reading.grid_frequency_hz,
            cabinet_temp_c=reading.cabinet_temp_c,
            dc=dc,
            state=reading.state,
            vendor_state=reading.vendor_state,
            events=reading.vendor_events or 0,
        )


@dataclass
class GridMeterValues:
    """A meter at the grid connection, from the home's side: import is taken from the grid."""

    import_energy_wh: float | None = 0.0
    export_energy_wh: float | None = 0.0
    #: Net power, positive while importing [W].
    net_power_w: float | None = 0.0
    voltage_v: float | None = 230.0
    frequency_hz: float | None = 50.0


class Layout(Protocol):
    """Encodes values into a register image."""

    @property
    def name(self) -> str: ...

    #: Largest read the device accepts; larger ones get exception 2 (None: protocol limit).
    max_read_registers: int | None

    def encode(self, values: Any) -> Image: ...


def initial_values(layout: Layout) -> InverterValues | GridMeterValues:
    """What a device of ``layout`` reports before anything is set."""
    return GridMeterValues() if getattr(layout, "is_meter", False) else InverterValues()


def clamp_int(value: float, type_name: str) -> int:
    """``value`` rounded and kept inside the type's range, off its "not implemented" value."""
    limits = {
        "int16": (-0x7FFF, 0x7FFF),
        "uint16": (0, 0xFFFE),
        "acc32": (1, 0xFFFFFFFF),
        "uint32": (0, 0xFFFFFFFE),
        "int32": (-(2**31) + 1, 2**31 - 1),
        "enum16": (0, 0xFFFE),
        "bitfield16": (0, 0xFFFE),
        "count": (0, 0xFFFE),
        "acc16": (1, 0xFFFF),
        "enum32": (0, 0xFFFFFFFE),
        "bitfield32": (0, 0xFFFFFFFE),
        "int64": (-(2**63) + 1, 2**63 - 1),
        "uint64": (0, 2**64 - 2),
        "acc64": (1, 2**64 - 1),
    }
    lo, hi = limits.get(type_name, (-(2**31) + 1, 2**31 - 1))
    return max(lo, min(hi, round(value)))
