"""Which SunSpec points fill which wire glossary fields (data, not register facts).

Register facts (offsets, types, scale factors, symbols' codes) come from the definitions; this
module only says which point *means* which glossary field, and which of the wire's normalised
names a SunSpec symbol stands for. Model families:

- inverters: 101-103 (integer + scale factor), 111-113 (float32), and the DER model 701
  (IEEE 1547-2018 devices), preferred where a device has both;
- per-MPPT DC: model 160 modules, else the DER model 714 ports, else the inverter model's
  DC totals as MPPT 1;
- meters at the grid connection: 201-204 (integer + scale factor), 211-214 (float32).
"""

from __future__ import annotations

from dataclasses import dataclass

from zonnewijk_wire import InverterState

INVERTER_INT_MODELS = frozenset({101, 102, 103})
INVERTER_FLOAT_MODELS = frozenset({111, 112, 113})
DER_AC_MODEL = 701
DER_MODELS = frozenset(range(701, 714))
#: Inverter models in order of preference: a device with 701 and 10x is read from 701.
INVERTER_MODEL_PREFERENCE: tuple[int, ...] = (DER_AC_MODEL, 103, 102, 101, 113, 112, 111)
INVERTER_MODELS = frozenset(INVERTER_MODEL_PREFERENCE)
MPPT_MODEL = 160
DER_DC_MODEL = 714
DC_MODEL_PREFERENCE: tuple[int, ...] = (MPPT_MODEL, DER_DC_MODEL)
METER_INT_MODELS = frozenset({201, 202, 203, 204})
METER_FLOAT_MODELS = frozenset({211, 212, 213, 214})
METER_MODEL_PREFERENCE: tuple[int, ...] = (203, 204, 202, 201, 213, 214, 212, 211)
METER_MODELS = frozenset(METER_MODEL_PREFERENCE)


@dataclass(frozen=True)
class InverterPoints:
    """The points of one inverter model family that fill a :class:`~zonnewijk_wire.Reading`.

    Each glossary field lists candidate points: the first one the device implements is used.
    """

    ac: dict[str, tuple[str, ...]]
    #: Inverter-level DC totals, reported as MPPT 1 when the device has no DC model.
    dc_totals: dict[str, str]
    state: str
    vendor_state: str | None
    events: str


CLASSIC_INVERTER = InverterPoints(
    ac={
        "ac_power_w": ("W",),
        "ac_energy_wh": ("WH",),
        "ac_voltage_v": ("PhVphA",),
        "grid_frequency_hz": ("Hz",),
        "cabinet_temp_c": ("TmpCab",),
    },
    dc_totals={"dc_voltage_v": "DCV", "dc_current_a": "DCA", "dc_power_w": "DCW"},
    state="St",
    vendor_state="StVnd",
    events="Evt1",
)

DER_INVERTER = InverterPoints(
    ac={
        "ac_power_w": ("W",),
        "ac_energy_wh": ("TotWhInj",),
        "ac_voltage_v": ("VL1", "LNV"),
        "grid_frequency_hz": ("Hz",),
        "cabinet_temp_c": ("TmpCab",),
    },
    dc_totals={},
    state="InvSt",
    vendor_state=None,
    events="Alrm",
)


def inverter_points(model_id: int) -> InverterPoints:
    return DER_INVERTER if model_id == DER_AC_MODEL else CLASSIC_INVERTER


#: Per-MPPT glossary field <- point of one repeating group instance, and the group's name.
DC_GROUPS: dict[int, tuple[str, dict[str, str]]] = {
    MPPT_MODEL: ("module", {"dc_voltage_v": "DCV", "dc_current_a": "DCA", "dc_power_w": "DCW"}),
    DER_DC_MODEL: ("Prt", {"dc_voltage_v": "DCV", "dc_current_a": "DCA", "dc_power_w": "DCW"}),
}
#: Model 714 ports that are PV inputs (``PrtTyp`` symbol); batteries and EV ports are not MPPTs.
DC_PORT_TYPE_POINT = "PrtTyp"
PV_PORT_SYMBOLS = frozenset({"PV"})

#: Normalised state <- SunSpec state symbol (``St`` of 101-113, ``InvSt`` of 701).
STATE_BY_SYMBOL: dict[str, InverterState] = {
    "OFF": InverterState.OFF,
    "SLEEPING": InverterState.SLEEPING,
    "STARTING": InverterState.STARTING,
    "MPPT": InverterState.PRODUCING,
    "RUNNING": InverterState.PRODUCING,
    "THROTTLED": InverterState.THROTTLED,
    "SHUTTING_DOWN": InverterState.SHUTTING_DOWN,
    "FAULT": InverterState.FAULT,
    "STANDBY": InverterState.STANDBY,
}

#: The wire's event names <- SunSpec event symbol (``Evt1`` of 101-113, ``Alrm`` of 701).
#: Symbols not listed travel lower-cased; a set bit without a symbol as ``<point>_bit<N>``.
EVENT_BY_SYMBOL: dict[str, str] = {
    "GROUND_FAULT": "ground_fault",
    "DC_OVER_VOLT": "dc_over_voltage",
    "AC_DISCONNECT": "ac_disconnect",
    "DC_DISCONNECT": "dc_disconnect",
    "GRID_DISCONNECT": "grid_disconnect",
    "CABINET_OPEN": "cabinet_open",
    "MANUAL_SHUTDOWN": "manual_shutdown",
    "OVER_TEMP": "over_temperature",
    "OVER_FREQUENCY": "over_frequency",
    "UNDER_FREQUENCY": "under_frequency",
    "AC_OVER_VOLT": "ac_over_voltage",
    "AC_UNDER_VOLT": "ac_under_voltage",
    "BLOWN_STRING_FUSE": "blown_string_fuse",
    "UNDER_TEMP": "under_temperature",
    "MEMORY_LOSS": "memory_loss",
    "HW_TEST_FAILURE": "hardware_test_failure",
    "MANUFACTURER_ALRM": "manufacturer_alarm",
}


@dataclass(frozen=True)
class MeterPoints:
    """The points of a meter model that fill a :class:`~zonnewijk_wire.MeterReading`.

    SunSpec meters count from the grid's side of the meter: ``TotWhImp`` is energy taken from
    the grid, ``TotWhExp`` energy fed into it, and ``W`` is positive while importing.
    """

    import_energy: str = "TotWhImp"
    export_energy: str = "TotWhExp"
    power: str = "W"
    #: phase -> (power, voltage, current)
    phases: tuple[tuple[str, str, str, str], ...] = (
        ("L1", "WphA", "PhVphA", "AphA"),
        ("L2", "WphB", "PhVphB", "AphB"),
        ("L3", "WphC", "PhVphC", "AphC"),
    )


METER_POINTS = MeterPoints()
