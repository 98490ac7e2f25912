"""The SunSpec Alliance's model definitions (``json/model_<id>.json``), as typed data.

The files are the official JSON definitions that pysunspec2 ships (``sunspec2/models/json``,
Apache-2.0, see ``json/README.md``), copied unchanged: every offset, type, size, scale-factor
link, symbol and unit the gateway uses comes from them, none is typed by hand. Offsets are not
stored in the files: a point's place follows from the sizes of the points and groups before
it (:mod:`gateway_firmware.sunspec.layout`).

Repeating groups have a ``count``: a number, the name of a point holding the number, or 0
("as many as the model's length holds", the older models 160, 401...). A group without a
count appears once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

#: Registers of each type whose size the definitions may leave out (strings always give one).
TYPE_SIZES: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "count": 1,
    "acc16": 1,
    "enum16": 1,
    "bitfield16": 1,
    "pad": 1,
    "sunssf": 1,
    "int32": 2,
    "uint32": 2,
    "acc32": 2,
    "enum32": 2,
    "bitfield32": 2,
    "ipaddr": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "acc64": 4,
    "float64": 4,
    "eui48": 4,
    "ipv6addr": 8,
}

COMMON_MODEL = 1
END_MODEL_IDS = frozenset({0xFFFF, 0})


class DefinitionError(ValueError):
    """A model definition file is missing or does not have the shape of the SunSpec schema."""


@dataclass(frozen=True)
class PointDef:
    """One point of a model definition.

    ``sf`` names the scale-factor point (looked up in the point's own group, then at the
    model's top level, as pysunspec2 does) or is a fixed exponent.
    """

    name: str
    type: str
    size: int
    label: str = ""
    units: str | None = None
    sf: str | int | None = None
    #: Enum value or bit number -> symbol name (``MPPT``, ``GROUND_FAULT``...).
    symbols: Mapping[int, str] = field(default_factory=dict)
    #: The point's value does not change (scale factors of the DER models).
    static: bool = False
    #: The value the definition fixes (``ID`` and, for fixed models, ``L``).
    value: int | None = None


@dataclass(frozen=True)
class GroupDef:
    """A group of points: the model itself, or a (repeating) group inside it."""

    name: str
    label: str
    points: tuple[PointDef, ...]
    groups: tuple[GroupDef, ...] = ()
    #: None for a group that appears once; a number, a point name, or 0: "as many as fit".
    count: int | str | None = None

    @property
    def points_length(self) -> int:
        """Registers of this group's own points (without its sub-groups) [registers]."""
        return sum(p.size for p in self.points)

    def point(self, name: str) -> PointDef | None:
        return next((p for p in self.points if p.name == name), None)

    def group(self, name: str) -> GroupDef | None:
        return next((g for g in self.groups if g.name == name), None)


@dataclass(frozen=True)
class ModelDef:
    """One SunSpec information model."""

    model_id: int
    group: GroupDef
    description: str = ""

    @property
    def name(self) -> str:
        """The definition's short name (``inverter_three_phase``, ``DERMeasureAC``)."""
        return self.group.name

    @property
    def label(self) -> str:
        """The definition's human name (``Inverter (Three Phase)``, ``DER AC Measurement``)."""
        return self.group.label or self.group.name

    @property
    def fixed_length(self) -> int:
        """L of the model's fixed part: its top-level points after ID and L [registers]."""
        return self.group.points_length - 2

    @property
    def repeats(self) -> bool:
        return bool(self.group.groups)


def _symbols(raw: list[dict[str, Any]] | None) -> dict[int, str]:
    return {int(s["value"]): str(s["name"]) for s in raw or ()}


def _point(raw: dict[str, Any], where: str) -> PointDef:
    type_name = raw["type"]
    size = raw.get("size", TYPE_SIZES.get(type_name))
    if size is None:
        raise DefinitionError(f"{where}: point {raw.get('name')} of type {type_name} has no size")
    sf = raw.get("sf")
    if isinstance(sf, str) and sf.lstrip("-").isdigit():
        sf = int(sf)
    value = raw.get("value")
    return PointDef(
        name=str(raw["name"]),
        type=type_name,
        size=int(size),
        label=str(raw.get("label", "")),
        units=raw.get("units"),
        sf=sf,
        symbols=_symbols(raw.get("symbols")),
        static=raw.get("static") == "S",
        value=value if isinstance(value, int) else None,
    )


def _group(raw: dict[str, Any], where: str, *, top: bool) -> GroupDef:
    count: int | str | None = None
    raw_count = raw.get("count")
    if not top and isinstance(raw_count, int | str):
        count = int(raw_count) if isinstance(raw_count, str) and raw_count.isdigit() else raw_count
    return GroupDef(
        name=str(raw["name"]),
        label=str(raw.get("label", "")),
        points=tuple(_point(p, where) for p in raw.get("points", ())),
        groups=tuple(_group(g, where, top=False) for g in raw.get("groups", ())),
        count=count,
    )


def parse_definition(data: object, *, source: str) -> ModelDef:
    """A :class:`ModelDef` from one loaded JSON definition; :class:`DefinitionError` if bad."""
    if not isinstance(data, dict) or not isinstance(data.get("group"), dict):
        raise DefinitionError(f"{source}: not a SunSpec model definition (no 'group')")
    try:
        model_id = int(data["id"])
        group = _group(data["group"], source, top=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise DefinitionError(f"{source}: {exc!r}") from None
    if [p.name for p in group.points[:2]] != ["ID", "L"]:
        raise DefinitionError(f"{source}: a model starts with the points ID and L")
    return ModelDef(model_id, group, str(data["group"].get("desc", "")))


def _folder() -> Traversable:
    return resources.files("gateway_firmware.sunspec").joinpath("json")


@cache
def catalogue_ids() -> tuple[int, ...]:
    """Every model id that has a definition file."""
    ids = []
    for entry in _folder().iterdir():
        name = entry.name
        if name.startswith("model_") and name.endswith(".json"):
            ids.append(int(name.removeprefix("model_").removesuffix(".json")))
    return tuple(sorted(ids))


@cache
def model_definition(model_id: int) -> ModelDef | None:
    """The definition of ``model_id``, or None when the catalogue has none (vendor models)."""
    if model_id not in catalogue_ids():
        return None
    entry = _folder().joinpath(f"model_{model_id}.json")
    source = f"gateway_firmware/sunspec/json/model_{model_id}.json"
    try:
        data = json.loads(entry.read_text())
    except (OSError, ValueError) as exc:
        raise DefinitionError(f"{source}: cannot read: {exc}") from None
    definition = parse_definition(data, source=source)
    if definition.model_id != model_id:
        raise DefinitionError(f"{source}: holds model {definition.model_id}")
    return definition


def require_definition(model_id: int) -> ModelDef:
    """The definition of a model the gateway decodes (these always ship)."""
    definition = model_definition(model_id)
    if definition is None:
        raise DefinitionError(f"no definition for SunSpec model {model_id}")
    return definition


def model_name(model_id: int) -> str:
    """``label (name)`` from the definitions, or a note that the catalogue does not know it."""
    prefix = "vendor model" if 64000 <= model_id <= 65534 else "unknown model"
    definition = model_definition(model_id)
    if definition is None:
        return f"{prefix} (not in the SunSpec catalogue)"
    return definition.label
