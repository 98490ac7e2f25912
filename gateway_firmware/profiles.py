"""Vendor register profiles: one YAML file per inverter family in ``config/devices/``.

A file is checked against ``config/devices/schema.json`` (unknown keys rejected) and then
for meaning (units match the glossary field, registers do not overlap, state codes are
unique). :func:`decode_registers` turns register values into :class:`DecodedValues` using a
profile; it is pure, so the simulator can encode with the same file and tests can check both.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from gateway_firmware.modbus.codec import (
    WordOrder,
    decode_number,
    decode_string,
    raw_int,
    register_count,
)
from gateway_firmware.modbus.errors import ProfileError
from gateway_firmware.modbus.transport import RegisterKind
from gateway_firmware.modbus.values import DC_FIELDS, GLOSSARY_FIELDS, DecodedValues
from zonnewijk_wire import InverterState, ReadingFlag

#: Environment variable naming the folder of profile files.
DEVICES_DIR_ENV = "ZONNEWIJK_DEVICES_DIR"

_DC_FIELD = re.compile(r"^dc([1-9])_(voltage_v|current_a|power_w)$")
_CODE_FIELDS = {"vendor_state": "code", "vendor_events": "code"}


@dataclass(frozen=True)
class RegisterSpec:
    """One register (or register pair) of a profile."""

    field: str
    vendor_name: str
    documented_address: int
    address: int  # protocol address (documented + offset)
    kind: RegisterKind
    type: str
    word_order: WordOrder
    scale: float
    unit: str
    invalid: frozenset[int]

    @property
    def count(self) -> int:
        return register_count(self.type)


@dataclass(frozen=True)
class StringSpec:
    address: int
    size: int
    kind: RegisterKind


@dataclass(frozen=True)
class StateRange:
    first: int
    last: int
    state: InverterState
    vendor_text: str


@dataclass(frozen=True)
class BusDefaults:
    unit: int = 1
    timeout_s: float = 3.0
    gap_s: float = 0.05
    busy_backoff_s: float = 1.0
    max_registers_per_read: int = 125
    max_gap: int = 0


@dataclass(frozen=True)
class Profile:
    """A parsed, validated profile file."""

    name: str
    manufacturer: str
    models: str
    source: str
    protocol: Literal["sunspec", "registers"]
    bus: BusDefaults
    registers: tuple[RegisterSpec, ...]
    states: tuple[StateRange, ...]
    identify: Mapping[str, StringSpec]
    path: Path | None = None
    #: ``inverter`` (readings) or ``meter`` (grid meter readings).
    device_kind: Literal["inverter", "meter"] = "inverter"

    def state_for(self, code: int) -> InverterState:
        for entry in self.states:
            if entry.first <= code <= entry.last:
                return entry.state
        return InverterState.UNKNOWN

    def register(self, field: str) -> RegisterSpec | None:
        return next((r for r in self.registers if r.field == field), None)


def default_devices_dir() -> Path:
    """Where profile files live: ``$ZONNEWIJK_DEVICES_DIR``, the source tree's ``config/devices``,
    ``<prefix>/share/zonnewijk/devices`` (installed with the package), else
    ``/etc/zonnewijk/devices``."""
    if env := os.environ.get(DEVICES_DIR_ENV):
        return Path(env)
    in_tree = Path(__file__).resolve().parents[1] / "config" / "devices"
    if in_tree.is_dir():
        return in_tree
    installed = Path(sys.prefix) / "share" / "zonnewijk" / "devices"
    if installed.is_dir():
        return installed
    return Path("/etc/zonnewijk/devices")


@cache
def _schema(devices_dir: Path) -> dict[str, Any]:
    path = devices_dir / "schema.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read the profile schema {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path} is not a JSON object")
    return data


def parse_profile(data: object, *, source: str, schema: Mapping[str, Any]) -> Profile:
    """Validate a loaded profile document and build a :class:`Profile`.

    Raises :class:`ProfileError` naming ``source`` and the offending key.
    """
    import jsonschema  # only when a profile is loaded: 3 MB resident a SunSpec gateway saves

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ProfileError(f"{source}: {where}: {first.message}{more}")
    assert isinstance(data, dict)
    defaults = data.get("defaults", {})
    bus = BusDefaults(**data.get("bus", {}))
    registers = []
    for index, spec in enumerate(data.get("registers", [])):
        registers.append(_register(spec, defaults, f"{source}: registers/{index}"))
    _check_overlaps(registers, source)
    fields = [r.field for r in registers]
    duplicates = sorted({f for f in fields if fields.count(f) > 1})
    if duplicates:
        raise ProfileError(f"{source}: field(s) {duplicates} mapped more than once")
    states = []
    for index, entry in enumerate(data.get("states", [])):
        last = entry.get("to", entry["code"])
        if last < entry["code"]:
            raise ProfileError(
                f"{source}: states/{index}: 'to' {last} is below 'code' {entry['code']}"
            )
        states.append(
            StateRange(
                entry["code"], last, InverterState(entry["state"]), entry.get("vendor_text", "")
            )
        )
    for i, a in enumerate(states):
        for b in states[i + 1 :]:
            if a.first <= b.last and b.first <= a.last:
                raise ProfileError(
                    f"{source}: state codes {a.first:#06x}-{a.last:#06x} and "
                    f"{b.first:#06x}-{b.last:#06x} overlap"
                )
    if data.get("device_kind") == "meter" and data["protocol"] != "sunspec":
        raise ProfileError(f"{source}: device_kind meter is read through SunSpec only")
    if data["protocol"] == "registers" and "vendor_state" not in fields:
        raise ProfileError(f"{source}: a register profile needs a vendor_state register")
    identify = {
        key: StringSpec(
            spec["address"] + spec.get("address_offset", defaults.get("address_offset", 0)),
            spec["size"],
            RegisterKind(spec.get("kind", defaults.get("kind", "holding"))),
        )
        for key, spec in data.get("identify", {}).items()
    }
    return Profile(
        name=data["name"],
        manufacturer=data["manufacturer"],
        models=data.get("models", ""),
        source=data["source"],
        protocol=data["protocol"],
        bus=bus,
        registers=tuple(registers),
        states=tuple(states),
        identify=identify,
        device_kind=data.get("device_kind", "inverter"),
    )


def _register(spec: dict[str, Any], defaults: dict[str, Any], where: str) -> RegisterSpec:
    field = spec["field"]
    unit = spec.get("unit")
    expected = _expected_unit(field)
    if unit is None:
        raise ProfileError(f"{where} ({field}): 'unit' is required; expected {expected!r}")
    if unit != expected:
        raise ProfileError(
            f"{where} ({field}): unit {unit!r} does not match the glossary's {expected!r}"
        )
    offset = spec.get("address_offset", defaults.get("address_offset", 0))
    address = spec["address"] + offset
    if address < 0:
        raise ProfileError(f"{where}: address {spec['address']} with offset {offset} is negative")
    scale = float(spec.get("scale", 1))
    if expected == "code" and scale != 1:
        raise ProfileError(f"{where} ({field}): codes are not scaled, remove 'scale'")
    return RegisterSpec(
        field=field,
        vendor_name=spec["vendor_name"],
        documented_address=spec["address"],
        address=address,
        kind=RegisterKind(spec.get("kind", defaults.get("kind", "holding"))),
        type=spec["type"],
        word_order=spec.get("word_order", defaults.get("word_order", "big")),
        scale=scale,
        unit=unit,
        invalid=frozenset(spec.get("invalid", ())),
    )


def _expected_unit(field: str) -> str:
    if field in GLOSSARY_FIELDS:
        return GLOSSARY_FIELDS[field]
    if field in _CODE_FIELDS:
        return _CODE_FIELDS[field]
    match = _DC_FIELD.match(field)
    if match:
        return DC_FIELDS[f"dc_{match.group(2)}"]
    raise ProfileError(f"unknown field {field!r}")


def _check_overlaps(registers: list[RegisterSpec], source: str) -> None:
    for kind in RegisterKind:
        spans = sorted(
            (r.address, r.address + r.count, r.field) for r in registers if r.kind is kind
        )
        for (a_lo, a_hi, a_field), (b_lo, _b_hi, b_field) in itertools.pairwise(spans):
            if b_lo < a_hi:
                raise ProfileError(
                    f"{source}: {a_field} ({kind} {a_lo}..{a_hi - 1}) overlaps {b_field} at {b_lo}"
                )


def load_profile_file(path: Path, *, schema: Mapping[str, Any] | None = None) -> Profile:
    """Load and validate one profile file."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    profile = parse_profile(
        data, source=str(path), schema=schema if schema is not None else _schema(path.parent)
    )
    if profile.name != path.stem:
        raise ProfileError(f"{path}: name {profile.name!r} must equal the file name {path.stem!r}")
    return Profile(**{**profile.__dict__, "path": path})


def load_profiles(devices_dir: Path | None = None) -> dict[str, Profile]:
    """Every ``*.yaml`` profile in ``devices_dir`` by name."""
    folder = devices_dir or default_devices_dir()
    if not folder.is_dir():
        raise ProfileError(
            f"profile folder {folder} not found; set {DEVICES_DIR_ENV} to the config/devices folder"
        )
    schema = _schema(folder)
    return {p.stem: load_profile_file(p, schema=schema) for p in sorted(folder.glob("*.yaml"))}


def load_profile(name: str, devices_dir: Path | None = None) -> Profile:
    """One profile by name; the error lists the names that exist."""
    profiles = load_profiles(devices_dir)
    if name not in profiles:
        raise ProfileError(f"unknown profile {name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


# --- decoding ---------------------------------------------------------------------------------


def _registers(values: Mapping[int, int], spec: RegisterSpec) -> list[int]:
    return [values[spec.address + i] for i in range(spec.count)]


def decode_registers(
    profile: Profile, holding: Mapping[int, int], inputs: Mapping[int, int]
) -> DecodedValues:
    """Decode register values (by protocol address) into glossary values using ``profile``."""
    out = DecodedValues()
    for spec in profile.registers:
        table = holding if spec.kind is RegisterKind.HOLDING else inputs
        regs = _registers(table, spec)
        raw = raw_int(regs, spec.word_order)
        number = decode_number(regs, spec.type, spec.word_order)
        sentinel = raw in spec.invalid or (isinstance(number, float) and not math.isfinite(number))
        dc = _DC_FIELD.match(spec.field)
        if sentinel:
            out.flags.add(ReadingFlag.SENTINEL)
            out.raw[spec.field] = float(raw)
            value: float | None = None
        elif spec.unit == "code":
            value = float(raw)
        else:
            value = _scaled(number, spec.scale)
        if spec.field == "vendor_state":
            if value is not None:
                out.vendor_state = int(value)
                out.state = profile.state_for(int(value))
        elif spec.field == "vendor_events":
            if value is not None:
                out.vendor_events = int(value)
                if out.vendor_events:
                    out.events.append(f"{profile.name}_fault_{out.vendor_events}")
        elif dc:
            out.dc.setdefault(int(dc.group(1)), {})[f"dc_{dc.group(2)}"] = value
        else:
            out.values[spec.field] = value
    return out


def _scaled(number: float, scale: float) -> float:
    value = number * scale
    # keep the digits the device sent, drop binary noise (0.1 * 3 = 0.30000000000000004)
    decimals = max(0, -math.floor(math.log10(scale))) + 3 if scale < 1 else 3
    return round(value, decimals)


def decode_identity(strings: Mapping[str, list[int]]) -> dict[str, str | None]:
    """Identify strings (model, serial, firmware) from their registers."""
    return {key: decode_string(regs) for key, regs in strings.items()}
