"""Pure decoding of SunSpec registers: sentinels, scale factors, and the glossary mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway_firmware.modbus.codec import (
    decode_number,
    decode_string,
    is_sunspec_not_implemented,
    raw_int,
)
from gateway_firmware.modbus.values import DecodedValues
from gateway_firmware.sunspec.models import (
    INVERTER_INT_MODELS,
    ModelDef,
    Point,
    event_names,
    state_map,
)
from zonnewijk_wire import InverterState, ReadingFlag

#: Scale factors outside this range are rejected (a corrupted read, not a real device).
SF_MIN, SF_MAX = -10, 10

#: Glossary field <- inverter model point.
INVERTER_FIELDS: dict[str, str] = {
    "ac_power_w": "W",
    "ac_energy_wh": "WH",
    "ac_voltage_v": "PhVphA",
    "grid_frequency_hz": "Hz",
    "cabinet_temp_c": "TmpCab",
}
#: Per-MPPT glossary field <- inverter model point (used when there is no model 160).
INVERTER_DC_FIELDS: dict[str, str] = {
    "dc_voltage_v": "DCV",
    "dc_current_a": "DCA",
    "dc_power_w": "DCW",
}
#: Per-MPPT glossary field <- model 160 module point.
MPPT_DC_FIELDS: dict[str, str] = {
    "dc_voltage_v": "DCV",
    "dc_current_a": "DCA",
    "dc_power_w": "DCW",
}


@dataclass(frozen=True)
class PointValue:
    """A decoded point: ``value`` is None when the device sent a sentinel or a bad scale factor."""

    value: float | int | None
    raw: int
    sentinel: bool = False
    bad_scale_factor: bool = False
    scale_factor: int | None = None


def registers_of(registers: Mapping[int, int], start: int, point: Point) -> list[int]:
    """The registers of ``point`` in a model whose id register is at ``start``."""
    return [registers[start + point.offset + i] for i in range(point.size)]


def decode_point(
    registers: Mapping[int, int], start: int, point: Point, sf_point: Point | None
) -> PointValue:
    """Decode one numeric point, applying its scale factor when it has one.

    Parameters
    ----------
    registers
        Register values by protocol address.
    start
        Address of the model's id register [register address].
    point
        The point to decode.
    sf_point
        Its scale-factor point (same model), or None.
    """
    regs = registers_of(registers, start, point)
    raw = raw_int(regs)
    if is_sunspec_not_implemented(regs, point.type):
        return PointValue(None, raw, sentinel=True)
    value = decode_number(regs, point.type)
    if sf_point is None:
        return PointValue(value, raw)
    sf_regs = registers_of(registers, start, sf_point)
    if is_sunspec_not_implemented(sf_regs, "sunssf"):
        return PointValue(None, raw, sentinel=True)
    sf = int(decode_number(sf_regs, "sunssf"))
    if not SF_MIN <= sf <= SF_MAX:
        return PointValue(None, raw, bad_scale_factor=True, scale_factor=sf)
    # round away binary noise of 10**-n while keeping every digit the device sent
    scaled = round(value * 10.0**sf, max(0, -sf)) if sf < 0 else value * 10**sf
    return PointValue(float(scaled), raw, scale_factor=sf)


def decode_common(
    registers: Mapping[int, int], start: int, model: ModelDef, length: int
) -> dict[str, str | None]:
    """Manufacturer (Mn), model (Md), options (Opt), version (Vr), serial (SN) of model 1."""
    result: dict[str, str | None] = {}
    for name in ("Mn", "Md", "Opt", "Vr", "SN"):
        point = model.points[name]
        result[name] = (
            decode_string(registers_of(registers, start, point))
            if point.end <= 2 + length
            else None
        )
    return result


def _apply(out: DecodedValues, field: str, result: PointValue, *, mppt: int | None = None) -> None:
    key = field if mppt is None else f"dc{mppt}_{field.removeprefix('dc_')}"
    if result.sentinel:
        out.flags.add(ReadingFlag.SENTINEL)
        out.raw[key] = float(result.raw)
    if result.bad_scale_factor:
        out.flags.add(ReadingFlag.BAD_SCALE_FACTOR)
        out.raw[key] = float(result.raw)
        out.raw[f"{key}_sf"] = float(result.scale_factor or 0)
    value = None if result.value is None else float(result.value)
    if mppt is None:
        out.values[field] = value
    else:
        out.dc.setdefault(mppt, {})[field] = value


def _point(model: ModelDef, name: str, length: int) -> Point | None:
    point = model.points.get(name)
    if point is None or point.end > 2 + length:
        return None  # device's model is shorter than the specification's
    return point


def decode_inverter(
    registers: Mapping[int, int],
    start: int,
    model: ModelDef,
    length: int,
    out: DecodedValues,
    *,
    with_dc: bool,
) -> None:
    """Fill ``out`` from an inverter model (101-103 integer + SF, 111-113 float)."""
    is_int = model.model_id in INVERTER_INT_MODELS

    def value(name: str) -> PointValue | None:
        point = _point(model, name, length)
        if point is None:
            return None
        sf_point = _point(model, point.sf, length) if (is_int and point.sf) else None
        if is_int and point.sf and sf_point is None:
            return None
        return decode_point(registers, start, point, sf_point)

    for field, name in INVERTER_FIELDS.items():
        result = value(name)
        if result is not None:
            _apply(out, field, result)
    if with_dc:
        for field, name in INVERTER_DC_FIELDS.items():
            result = value(name)
            if result is not None:
                _apply(out, field, result, mppt=1)

    st = value("St")
    if st is not None and st.value is not None:
        out.state = state_map().get(int(st.value), InverterState.UNKNOWN)
    elif st is not None:
        out.flags.add(ReadingFlag.SENTINEL)
        out.raw["state"] = float(st.raw)
    st_vnd = value("StVnd")
    if st_vnd is not None and st_vnd.value is not None:
        out.vendor_state = int(st_vnd.value)
    elif st is not None and st.value is not None:
        out.vendor_state = int(st.value)
    evt1 = value("Evt1")
    if evt1 is not None and evt1.value is not None:
        out.vendor_events = int(evt1.value)
        out.events.extend(event_names(int(evt1.value)))


def decode_mppt(
    registers: Mapping[int, int], start: int, model: ModelDef, length: int, out: DecodedValues
) -> None:
    """Fill ``out.dc`` from model 160 (one entry per module, MPPT numbers 1-based)."""
    assert model.module_points is not None and model.module_start and model.module_length
    n_point = model.points["N"]
    regs = registers_of(registers, start, n_point)
    if is_sunspec_not_implemented(regs, "count"):
        return
    count = int(decode_number(regs, "count"))
    count = min(count, (length + 2 - model.module_start) // model.module_length)
    for index in range(count):
        base = start + model.module_start + index * model.module_length
        for field, name in MPPT_DC_FIELDS.items():
            point = model.module_points[name]
            sf_point = model.points[point.sf] if point.sf else None
            # module point offsets are relative to the module; express them from `start`
            shifted = Point(
                point.name, base - start + point.offset, point.type, point.size, point.sf
            )
            _apply(out, field, decode_point(registers, start, shifted, sf_point), mppt=index + 1)
