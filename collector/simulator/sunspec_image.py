"""SunSpec register images from the official model definitions (the gateway's own copy).

:func:`encode_model` writes one model: its ID and L, every point "not implemented" unless a
value is given, scale factors as given, values divided by 10^sf. Points are named by their
paths (``W``, ``module[2].DCV``, ``Prt[1].DCA``, see :mod:`gateway_firmware.sunspec.layout`),
so a simulated device and the gateway place every register from the same definitions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from collector.simulator.device_values import clamp_int
from gateway_firmware.modbus.codec import SUNSPEC_NOT_IMPLEMENTED, encode_number, encode_string
from gateway_firmware.sunspec.definitions import ModelDef, PointDef, require_definition
from gateway_firmware.sunspec.glossary import STATE_BY_SYMBOL
from gateway_firmware.sunspec.layout import (
    PlacedModel,
    place_model,
)
from zonnewijk_wire import InverterState

PointValue = float | int | str | None


def not_implemented(point: PointDef) -> list[int]:
    """The registers of a point's "not implemented" value."""
    if point.type in ("float32", "float64"):
        return encode_number(math.nan, point.type)
    if point.type in ("string", "eui48", "ipv6addr"):
        return [0] * point.size
    raw = SUNSPEC_NOT_IMPLEMENTED.get(point.type, 0)
    return [(raw >> (16 * (point.size - 1 - i))) & 0xFFFF for i in range(point.size)]


def state_code(point: PointDef, state: InverterState) -> int | None:
    """The code of ``state`` in a state point's symbols (``MPPT`` = 4 in 103, ``RUNNING`` = 3 in
    701), None when the point has none for it."""
    for code, symbol in sorted(point.symbols.items()):
        if STATE_BY_SYMBOL.get(symbol) is state:
            return code
    return None


def model_length(definition: ModelDef, counts: Mapping[str, int]) -> int:
    """L of a model whose top-level repeating groups have ``counts`` instances."""
    length = definition.fixed_length
    for group in definition.group.groups:
        instances = counts.get(group.name, 1 if group.count is None else 0)
        length += instances * group.points_length  # groups of points only (160, 714)
    return length


@dataclass(frozen=True)
class ModelImage:
    """One encoded model: where its points sit and its registers."""

    placed: PlacedModel
    registers: dict[int, int]

    @property
    def end(self) -> int:
        return self.placed.end


def encode_model(
    model_id: int,
    address: int,
    values: Mapping[str, PointValue],
    *,
    scale_factors: Mapping[str, int] | None = None,
    counts: Mapping[str, int] | None = None,
    length: int | None = None,
) -> ModelImage:
    """The registers of one model at ``address`` (its ID register).

    Parameters
    ----------
    values
        Physical values by point path (scaled by the point's scale factor); None or absent:
        "not implemented". Enum and bitfield points take their raw code.
    scale_factors
        Scale-factor point values by path (``W_SF``); those not given are "not implemented".
    counts
        Instances of each top-level repeating group (model 160 ``module``, 714 ``Prt``); a
        group counted by a point gets that point set too.
    length
        L to announce (default: what the definition and ``counts`` give); a longer L leaves
        zeros after the definition's points (a newer revision).
    """
    definition = require_definition(model_id)
    counts = dict(counts or {})
    scale_factors = dict(scale_factors or {})
    announced = length if length is not None else model_length(definition, counts)
    count_regs: dict[int, int] = {}
    placed = place_model(definition, address, announced, count_regs)
    for _ in range(4):
        if not placed.unresolved:
            break
        for point in placed.unresolved:
            group = next(g for g in definition.group.groups if g.count == point.point.name)
            count_regs[point.address] = counts.get(group.name, 0)
        placed = place_model(definition, address, announced, count_regs)
    regs: dict[int, int] = {address + i: 0 for i in range(2 + announced)}
    for path, point in placed.points.items():
        words = not_implemented(point.point)
        if path == "ID":
            words = [model_id]
        elif path == "L":
            words = [announced]
        elif point.address in count_regs:
            words = [count_regs[point.address]]
        elif point.point.type == "sunssf":
            sf = scale_factors.get(path, scale_factors.get(point.point.name))
            if sf is not None:
                words = encode_number(sf, "sunssf")
        elif values.get(path) is not None:
            words = _encode_value(placed, path, values[path], scale_factors)
        for i, word in enumerate(words):
            regs[point.address + i] = word & 0xFFFF
    return ModelImage(placed, regs)


def _encode_value(
    placed: PlacedModel, path: str, value: PointValue, scale_factors: Mapping[str, int]
) -> list[int]:
    point = placed.points[path]
    type_name = point.point.type
    if type_name == "string":
        return encode_string(str(value), point.point.size)
    assert isinstance(value, int | float)
    if type_name in ("float32", "float64"):
        return encode_number(float(value), type_name)
    sf = point.sf_fixed
    if point.sf_path is not None:
        sf_point = placed.points.get(point.sf_path)
        name = point.sf_path.rsplit(".", 1)[-1]
        sf = scale_factors.get(point.sf_path, scale_factors.get(name))
        if sf_point is None or sf is None:
            return not_implemented(point.point)
    number = value / 10.0**sf if sf else value
    return encode_number(clamp_int(number, type_name), type_name)
