"""What a decoder (SunSpec or a vendor profile) extracts from one poll, before it is a Reading."""

from __future__ import annotations

from dataclasses import dataclass, field

from zonnewijk_wire import DcInput, InverterState, ReadingFlag

#: Glossary fields a decoder may fill, with their units.
GLOSSARY_FIELDS: dict[str, str] = {
    "ac_power_w": "W",
    "ac_energy_wh": "Wh",
    "ac_voltage_v": "V",
    "grid_frequency_hz": "Hz",
    "cabinet_temp_c": "°C",
}

#: Per-MPPT fields, with their units.
DC_FIELDS: dict[str, str] = {"dc_voltage_v": "V", "dc_current_a": "A", "dc_power_w": "W"}


@dataclass
class DecodedValues:
    """Values of one poll; missing values stay None, never a made-up number."""

    values: dict[str, float | None] = field(default_factory=dict)
    dc: dict[int, dict[str, float | None]] = field(default_factory=dict)
    state: InverterState = InverterState.UNKNOWN
    vendor_state: int | None = None
    events: list[str] = field(default_factory=list)
    vendor_events: int | None = None
    flags: set[ReadingFlag] = field(default_factory=set)
    raw: dict[str, float] = field(default_factory=dict)

    def dc_inputs(self) -> tuple[DcInput, ...]:
        """The per-MPPT values as wire objects, MPPTs without any value left out."""
        inputs = []
        for mppt in sorted(self.dc):
            fields = self.dc[mppt]
            if any(v is not None for v in fields.values()):
                inputs.append(DcInput(mppt=mppt, **fields))
        return tuple(inputs)
