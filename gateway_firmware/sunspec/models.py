"""SunSpec model definitions, loaded from ``models.yaml`` (data, not code)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from gateway_firmware.modbus.codec import register_count
from zonnewijk_wire import InverterState

INVERTER_INT_MODELS = frozenset({101, 102, 103})
INVERTER_FLOAT_MODELS = frozenset({111, 112, 113})
INVERTER_MODELS = INVERTER_INT_MODELS | INVERTER_FLOAT_MODELS
COMMON_MODEL = 1
MPPT_MODEL = 160
END_MODEL_IDS = frozenset({0xFFFF, 0})


@dataclass(frozen=True)
class Point:
    """One SunSpec point; ``offset`` counts from the model id register [registers]."""

    name: str
    offset: int
    type: str
    size: int
    sf: str | None = None

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class ModelDef:
    """A SunSpec model the gateway understands."""

    model_id: int
    name: str
    length: int | None
    points: dict[str, Point]
    module_start: int | None = None
    module_length: int | None = None
    module_points: dict[str, Point] | None = None


def _points(raw: dict[str, Any]) -> dict[str, Point]:
    points = {}
    for name, spec in raw.items():
        type_name = spec["type"]
        size = register_count(type_name, spec.get("size"))
        points[name] = Point(name, int(spec["offset"]), type_name, size, spec.get("sf"))
    return points


@cache
def _data() -> dict[Any, Any]:
    text = resources.files("gateway_firmware.sunspec").joinpath("models.yaml").read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise RuntimeError("gateway_firmware/sunspec/models.yaml is not a mapping")
    return data


@cache
def model_defs() -> dict[int, ModelDef]:
    """Every known model by id."""
    defs = {}
    for key, spec in _data().items():
        if not isinstance(key, int):
            continue
        module_points = spec.get("module_points")
        defs[key] = ModelDef(
            model_id=key,
            name=spec["name"],
            length=spec["length"],
            points=_points(spec["points"]),
            module_start=spec.get("module_start"),
            module_length=spec.get("module_length"),
            module_points=_points(module_points) if module_points else None,
        )
    return defs


@cache
def state_map() -> dict[int, InverterState]:
    """SunSpec ``St`` code -> normalised state."""
    return {int(k): InverterState(v) for k, v in _data()["states"].items()}


@cache
def evt1_names() -> dict[int, str]:
    """``Evt1`` bit number -> event name."""
    return {int(k): str(v) for k, v in _data()["evt1"].items()}


def event_names(bits: int) -> list[str]:
    """Names of the Evt1 bits set in ``bits``; unknown bits as ``evt1_bit<N>``."""
    names = evt1_names()
    return [names.get(bit, f"evt1_bit{bit}") for bit in range(32) if bits >> bit & 1]
