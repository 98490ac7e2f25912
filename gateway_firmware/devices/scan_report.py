"""What ``zonnewijk-gateway scan`` says about a SunSpec device: every model in its chain with
the name the SunSpec definitions give it, how its length compares with the definition, and
which profile reads it; text a member of the technical group can paste into a support request.
"""

from __future__ import annotations

from typing import Any

from gateway_firmware.sunspec.client import ModelHeader, SunSpecLayout
from gateway_firmware.sunspec.decode import PointValue
from gateway_firmware.sunspec.definitions import model_definition, model_name
from gateway_firmware.sunspec.glossary import (
    DC_MODEL_PREFERENCE,
    INVERTER_MODEL_PREFERENCE,
    METER_MODEL_PREFERENCE,
)


def length_note(header: ModelHeader) -> str | None:
    """How the device's L compares with the definition, or why the model is skipped."""
    definition = model_definition(header.model_id)
    if definition is None:
        return "not in the SunSpec catalogue: skipped by its length"
    fixed = definition.fixed_length
    if definition.repeats:
        if header.length < fixed:
            return f"shorter than the definition's fixed part ({fixed}): an older revision"
        return None
    if header.length > fixed:
        return f"longer than the definition's {fixed}: a newer revision, the rest is not read"
    if header.length < fixed:
        return f"shorter than the definition's {fixed}: an older revision, points past L missing"
    return None


def model_entry(header: ModelHeader) -> dict[str, Any]:
    definition = model_definition(header.model_id)
    return {
        "id": header.model_id,
        "name": None if definition is None else definition.name,
        "label": model_name(header.model_id),
        "address": header.address,
        "length": header.length,
        "note": length_note(header),
    }


def profiles_for(layout: SunSpecLayout) -> dict[str, Any]:
    """Which gateway profile reads the device, through which models."""
    found: dict[str, Any] = {}
    inverter = layout.preferred(INVERTER_MODEL_PREFERENCE)
    if inverter is not None:
        dc = layout.preferred(DC_MODEL_PREFERENCE)
        found["sunspec"] = {
            "inverter_model": inverter.model_id,
            "dc_model": None if dc is None else dc.model_id,
        }
    meter = layout.preferred(METER_MODEL_PREFERENCE)
    if meter is not None:
        found["sunspec-meter"] = {"meter_model": meter.model_id}
    return found


def point_values(values: dict[str, PointValue] | None) -> dict[str, Any] | None:
    """Decoded points for JSON: numbers and strings, None for "not implemented"."""
    if values is None:
        return None
    return {path: v.value for path, v in values.items()}


def describe(result: dict[str, Any]) -> str:
    """The text form of one SunSpec unit's scan result."""
    unit = result["unit"]
    who = " ".join(str(result[k]) for k in ("manufacturer", "model") if result.get(k)) or "?"
    lines = [
        f"unit {unit}: SunSpec at {result['base']}: {who} (serial {result.get('serial') or '?'},"
        f" firmware {result.get('firmware') or '?'})"
    ]
    for entry in result["model_chain"]:
        note = f"; {entry['note']}" if entry["note"] else ""
        name = f" ({entry['name']})" if entry["name"] else ""
        lines.append(
            f"  {entry['address']:>5}  model {entry['id']:<5} L={entry['length']:<4} "
            f"{entry['label']}{name}{note}"
        )
        for path, value in (entry.get("points") or {}).items():
            lines.append(f"           {path} = {'-' if value is None else value}")
    profiles = result["profiles"]
    if not profiles:
        lines.append(
            "  -> no model the gateway reads: expected an inverter model (701, 101-103, 111-113)"
            " or a meter model (201-204, 211-214)"
        )
    for profile, via in profiles.items():
        models = ", ".join(f"{k.removesuffix('_model')} {v}" for k, v in via.items() if v)
        lines.append(f"  -> profile {profile} ({models})")
    return "\n".join(lines)
