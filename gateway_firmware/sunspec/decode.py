"""Pure decoding of SunSpec registers: sentinels, scale factors, and the glossary mapping.

Values are ``raw × 10^sf`` (``sf`` from the point's scale-factor point, read in the same
request), rounded to the digits the scale factor gives, as the SunSpec specification and
pysunspec2's ``cvalue`` compute them. "Not implemented" values (and values whose scale factor
is not implemented) are missing, never a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway_firmware.modbus.codec import (
    NUMERIC_TYPES,
    decode_number,
    decode_string,
    is_sunspec_not_implemented,
    raw_int,
)
from gateway_firmware.modbus.values import DecodedValues
from gateway_firmware.sunspec.glossary import (
    DC_GROUPS,
    DC_PORT_TYPE_POINT,
    EVENT_BY_SYMBOL,
    METER_POINTS,
    PV_PORT_SYMBOLS,
    STATE_BY_SYMBOL,
    inverter_points,
)
from gateway_firmware.sunspec.layout import PlacedModel, PlacedPoint
from zonnewijk_wire import InverterState, ReadingFlag

#: Scale factors outside this range are rejected (a corrupted read, not a real device).
SF_MIN, SF_MAX = -10, 10

Value = float | int | str | None


@dataclass(frozen=True)
class PointValue:
    """A decoded point: ``value`` is None when the device sent a sentinel or a bad scale factor."""

    value: Value
    raw: int
    sentinel: bool = False
    bad_scale_factor: bool = False
    scale_factor: int | None = None


def registers_at(registers: Mapping[int, int], placed: PlacedPoint) -> list[int]:
    """The registers of a placed point (KeyError when they were not read)."""
    return [registers[placed.address + i] for i in range(placed.point.size)]


def scaled(value: int | float, sf: int) -> int | float:
    """``value × 10^sf``, keeping the digits the scale factor gives and no binary noise (an
    integer stays an integer for sf 0: a 64-bit counter keeps every digit)."""
    if sf == 0:
        return value
    return float(round(value * 10.0**sf, -sf))


def _text(regs: list[int], type_name: str) -> str | None:
    data = b"".join(int(r & 0xFFFF).to_bytes(2, "big") for r in regs)
    if not any(data):
        return None
    if type_name == "eui48":
        return ":".join(f"{b:02X}" for b in data[2:8])
    return ":".join(data[i : i + 4].hex().upper() for i in range(0, len(data), 4))


def decode_point(
    registers: Mapping[int, int], placed: PlacedPoint, sf_point: PlacedPoint | None = None
) -> PointValue:
    """Decode one point, applying its scale factor when it has one.

    Parameters
    ----------
    registers
        Register values by protocol address.
    placed
        The point at its address.
    sf_point
        Its scale-factor point, or None (no scale factor, or a fixed one in ``placed``).
    """
    regs = registers_at(registers, placed)
    raw = raw_int(regs)
    type_name = placed.point.type
    if type_name == "string":
        return PointValue(decode_string(regs), raw, sentinel=not any(regs))
    if type_name in ("eui48", "ipv6addr"):
        text = _text(regs, type_name)
        return PointValue(text, raw, sentinel=text is None)
    if type_name not in NUMERIC_TYPES:
        return PointValue(raw, raw)
    if placed.sf_path is not None and sf_point is None:
        return PointValue(None, raw)  # its scale factor is past the model's end: absent
    if is_sunspec_not_implemented(regs, type_name):
        return PointValue(None, raw, sentinel=True)
    value = decode_number(regs, type_name)
    if isinstance(value, float) and not math.isfinite(value):
        return PointValue(None, raw, sentinel=True)  # ±inf: no measurement either
    sf: int | None = placed.sf_fixed
    if sf_point is not None:
        sf_regs = registers_at(registers, sf_point)
        if is_sunspec_not_implemented(sf_regs, "sunssf"):
            return PointValue(None, raw, sentinel=True)
        sf = int(decode_number(sf_regs, "sunssf"))
    if sf is None:
        return PointValue(value, raw)
    if not SF_MIN <= sf <= SF_MAX:
        return PointValue(None, raw, bad_scale_factor=True, scale_factor=sf)
    return PointValue(scaled(value, sf), raw, scale_factor=sf)


def decode_model(
    model: PlacedModel, registers: Mapping[int, int], paths: Iterable[str] | None = None
) -> dict[str, PointValue]:
    """Every placed point of ``model`` (or those in ``paths``) by path."""
    wanted = model.points if paths is None else {p: model.points[p] for p in paths}
    return {path: decode_point(registers, p, model.sf_of(p)) for path, p in wanted.items()}


def decode_common(model: PlacedModel, registers: Mapping[int, int]) -> dict[str, str | None]:
    """Manufacturer (Mn), model (Md), options (Opt), version (Vr), serial (SN) of model 1."""
    result: dict[str, str | None] = {}
    for name in ("Mn", "Md", "Opt", "Vr", "SN"):
        placed = model.get(name)
        result[name] = None if placed is None else decode_string(registers_at(registers, placed))
    return result


# --- inverters ---------------------------------------------------------------------------------


def _apply(out: DecodedValues, field: str, result: PointValue, *, mppt: int | None = None) -> None:
    key = field if mppt is None else f"dc{mppt}_{field.removeprefix('dc_')}"
    if result.sentinel:
        out.flags.add(ReadingFlag.SENTINEL)
        out.raw[key] = float(result.raw)
    if result.bad_scale_factor:
        out.flags.add(ReadingFlag.BAD_SCALE_FACTOR)
        out.raw[key] = float(result.raw)
        out.raw[f"{key}_sf"] = float(result.scale_factor or 0)
    value = None if not isinstance(result.value, int | float) else float(result.value)
    if mppt is None:
        out.values[field] = value
    else:
        out.dc.setdefault(mppt, {})[field] = value


def _first(
    model: PlacedModel, registers: Mapping[int, int], names: Iterable[str]
) -> PointValue | None:
    """The first of ``names`` the device implements; else the first one it has (a sentinel)."""
    found = None
    for name in names:
        placed = model.get(name)
        if placed is None:
            continue
        result = decode_point(registers, placed, model.sf_of(placed))
        if result.value is not None:
            return result
        found = found or result
    return found


def event_names(bits: int, placed: PlacedPoint) -> list[str]:
    """The wire's names of the bits set in ``bits``, from the point's symbols."""
    names = []
    for bit in range(placed.point.size * 16):
        if bits >> bit & 1:
            symbol = placed.point.symbols.get(bit)
            if symbol is None:
                names.append(f"{placed.point.name.lower()}_bit{bit}")
            else:
                names.append(EVENT_BY_SYMBOL.get(symbol, symbol.lower()))
    return names


def state_of(code: int, placed: PlacedPoint) -> InverterState:
    """The normalised state of a state code, through the point's symbol for it."""
    symbol = placed.point.symbols.get(code)
    return STATE_BY_SYMBOL.get(symbol or "", InverterState.UNKNOWN)


def decode_inverter(
    model: PlacedModel,
    registers: Mapping[int, int],
    out: DecodedValues,
    *,
    with_dc: bool,
) -> None:
    """Fill ``out`` from an inverter model (101-103, 111-113 or 701)."""
    points = inverter_points(model.model_id)
    for field_name, names in points.ac.items():
        result = _first(model, registers, names)
        if result is not None:
            _apply(out, field_name, result)
    if with_dc:
        for field_name, name in points.dc_totals.items():
            result = _first(model, registers, (name,))
            if result is not None:
                _apply(out, field_name, result, mppt=1)
    st_point = model.get(points.state)
    st = _first(model, registers, (points.state,))
    if st_point is not None and st is not None:
        if isinstance(st.value, int):
            out.state = state_of(st.value, st_point)
            out.vendor_state = st.value
        else:
            out.flags.add(ReadingFlag.SENTINEL)
            out.raw["state"] = float(st.raw)
    if points.vendor_state is not None:
        st_vnd = _first(model, registers, (points.vendor_state,))
        if st_vnd is not None and isinstance(st_vnd.value, int):
            out.vendor_state = st_vnd.value
    evt_point = model.get(points.events)
    evt = _first(model, registers, (points.events,))
    if evt_point is not None and evt is not None and isinstance(evt.value, int):
        out.vendor_events = evt.value
        out.events.extend(event_names(evt.value, evt_point))


def decode_dc(model: PlacedModel, registers: Mapping[int, int], out: DecodedValues) -> None:
    """Fill ``out.dc`` from model 160 modules or model 714 ports (MPPT numbers 1-based)."""
    group, fields = DC_GROUPS[model.model_id]
    mppt = 0
    for prefix in model.instances(group):
        port_type = model.get(prefix + DC_PORT_TYPE_POINT)
        if port_type is not None:
            kind = decode_point(registers, port_type)
            if isinstance(kind.value, int):
                symbol = port_type.point.symbols.get(kind.value)
                if symbol not in PV_PORT_SYMBOLS:
                    continue  # a battery, EV or unknown port, not a PV input
        mppt += 1
        for field_name, name in fields.items():
            placed = model.get(prefix + name)
            if placed is not None:
                result = decode_point(registers, placed, model.sf_of(placed))
                _apply(out, field_name, result, mppt=mppt)


# --- meters ------------------------------------------------------------------------------------


@dataclass
class MeterValues:
    """What a SunSpec meter model gives for a :class:`~zonnewijk_wire.MeterReading`."""

    import_energy_wh: float | None = None
    export_energy_wh: float | None = None
    import_power_w: float | None = None
    export_power_w: float | None = None
    #: phase -> (import W, export W, voltage V, current A)
    phases: dict[str, tuple[float | None, float | None, float | None, float | None]] = field(
        default_factory=dict
    )
    sentinel: bool = False
    bad_scale_factor: bool = False


def _number(
    model: PlacedModel, registers: Mapping[int, int], name: str, out: MeterValues
) -> float | None:
    placed = model.get(name)
    if placed is None:
        return None
    result = decode_point(registers, placed, model.sf_of(placed))
    out.sentinel |= result.sentinel
    out.bad_scale_factor |= result.bad_scale_factor
    return float(result.value) if isinstance(result.value, int | float) else None


def _split(power_w: float | None) -> tuple[float | None, float | None]:
    """(import, export) from a signed power, positive importing."""
    if power_w is None:
        return None, None
    return (power_w, 0.0) if power_w >= 0 else (0.0, -power_w)


def decode_meter(model: PlacedModel, registers: Mapping[int, int]) -> MeterValues:
    """Grid import/export energy and power, per phase where the meter gives them."""
    points = METER_POINTS
    out = MeterValues()
    out.import_energy_wh = _number(model, registers, points.import_energy, out)
    out.export_energy_wh = _number(model, registers, points.export_energy, out)
    for name in ("import_energy_wh", "export_energy_wh"):
        value = getattr(out, name)
        if value is not None and value < 0:  # a float meter's lifetime counter below zero
            setattr(out, name, None)
            out.sentinel = True
    out.import_power_w, out.export_power_w = _split(_number(model, registers, points.power, out))
    for phase, power, voltage, current in points.phases:
        probe = MeterValues()
        imp, exp = _split(_number(model, registers, power, probe))
        volts = _number(model, registers, voltage, probe)
        amps = _number(model, registers, current, probe)
        if any(v is not None for v in (imp, volts, amps)):
            out.phases[phase] = (imp, exp, volts, amps)
            out.bad_scale_factor |= probe.bad_scale_factor
    return out
