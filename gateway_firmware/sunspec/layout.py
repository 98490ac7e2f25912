"""Where each point of a model sits on a device: from the definition, the model's length L and
(for repeating groups counted by a point) the count the device holds.

Points follow each other without gaps in definition order: the model's own points, then each
group in turn (every instance of a repeating group before the next group). A point past the
end the device gives (``address + 2 + L``) is absent: the device implements an older, shorter
revision. Registers past the definition's end (a newer, longer revision) are left alone.

Point paths name a point in its group instance, 1-based: ``W``, ``module[2].DCV``,
``Crv[1].Pt[3].V``; a group that appears once has no index (``PFWInj.Ena``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway_firmware.modbus.codec import decode_number, is_sunspec_not_implemented
from gateway_firmware.sunspec.definitions import GroupDef, ModelDef, PointDef

#: Most instances of one repeating group the gateway places (a corrupt count is not a loop).
MAX_INSTANCES = 256


@dataclass(frozen=True)
class PlacedPoint:
    """A point at its register address, with its scale factor's path (or fixed exponent)."""

    path: str
    address: int
    point: PointDef
    sf_path: str | None = None
    sf_fixed: int | None = None

    @property
    def end(self) -> int:
        """One past the point's last register."""
        return self.address + self.point.size


@dataclass(frozen=True)
class PlacedModel:
    """A model as one device holds it."""

    definition: ModelDef
    #: Address of the model's ID register.
    address: int
    #: L as the device gives it [registers].
    length: int
    points: Mapping[str, PlacedPoint]
    #: Instances placed per repeating group path (``module`` -> 2, ``Crv[1].Pt`` -> 4).
    counts: Mapping[str, int] = field(default_factory=dict)
    #: Count points whose value was not in the registers given (read them and place again).
    unresolved: tuple[PlacedPoint, ...] = ()

    @property
    def model_id(self) -> int:
        return self.definition.model_id

    @property
    def end(self) -> int:
        """One past the model's last register."""
        return self.address + 2 + self.length

    def get(self, path: str) -> PlacedPoint | None:
        return self.points.get(path)

    def sf_of(self, placed: PlacedPoint) -> PlacedPoint | None:
        return None if placed.sf_path is None else self.points.get(placed.sf_path)

    def instances(self, group: str) -> list[str]:
        """Path prefixes of a top-level repeating group's instances (``module[1].``...)."""
        return [f"{group}[{i}]." for i in range(1, self.counts.get(group, 0) + 1)]


def _static_length(group: GroupDef) -> int | None:
    """Registers of one instance of ``group``, or None when it holds groups counted by a point."""
    total = group.points_length
    for sub in group.groups:
        if sub.count is None:
            inner = _static_length(sub)
        elif isinstance(sub.count, int) and sub.count > 0:
            one = _static_length(sub)
            inner = None if one is None else one * sub.count
        else:
            return None
        if inner is None:
            return None
        total += inner
    return total


def _count_value(placed: PlacedPoint, registers: Mapping[int, int]) -> int | None:
    """The count a point holds, None when absent from ``registers`` or not implemented."""
    regs = [registers.get(placed.address + i) for i in range(placed.point.size)]
    if any(r is None for r in regs) or placed.point.size != 1:
        return None
    words = [int(r) for r in regs if r is not None]
    if is_sunspec_not_implemented(words, "uint16"):
        return None
    return int(decode_number(words, "uint16"))


class _Placer:
    def __init__(self, definition: ModelDef, address: int, length: int, regs: Mapping[int, int]):
        self.definition = definition
        self.end = address + 2 + length
        self.registers = regs
        self.points: dict[str, PlacedPoint] = {}
        self.counts: dict[str, int] = {}
        self.unresolved: list[PlacedPoint] = []

    def group(self, group: GroupDef, prefix: str, offset: int, scopes: list[dict[str, str]]) -> int:
        """Place ``group``'s points and sub-groups from ``offset``; returns the offset after."""
        local: dict[str, str] = {}
        placed: list[tuple[PointDef, str, int]] = []
        for point in group.points:
            path = prefix + point.name
            local[point.name] = path
            placed.append((point, path, offset))
            offset += point.size
        chain = [local, *scopes]
        top = chain[-1]
        for point, path, address in placed:
            if address + point.size > self.end:
                continue  # past the length the device gives: an older, shorter revision
            sf_path = sf_fixed = None
            if isinstance(point.sf, int):
                sf_fixed = point.sf
            elif isinstance(point.sf, str):
                # the point's own group first, then the model's top level (as pysunspec2)
                sf_path = local.get(point.sf) or top.get(point.sf)
                if sf_path is None:
                    sf_path = next((s[point.sf] for s in chain if point.sf in s), None)
            self.points[path] = PlacedPoint(path, address, point, sf_path, sf_fixed)
        for sub in group.groups:
            offset = self.subgroup(sub, prefix, offset, chain)
        return offset

    def subgroup(self, sub: GroupDef, prefix: str, offset: int, chain: list[dict[str, str]]) -> int:
        if sub.count is None:
            return self.group(sub, f"{prefix}{sub.name}.", offset, chain)
        one = _static_length(sub)
        fits = MAX_INSTANCES if not one else max(0, (self.end - offset) // one)
        if isinstance(sub.count, int):
            count = fits if sub.count == 0 else min(sub.count, fits)
        else:
            count = self.count_from_point(sub.count, chain, fits)
        count = min(count, MAX_INSTANCES)
        path = f"{prefix}{sub.name}"
        self.counts[path] = count
        for index in range(1, count + 1):
            if offset >= self.end:
                self.counts[path] = index - 1
                break
            offset = self.group(sub, f"{path}[{index}].", offset, chain)
        return offset

    def count_from_point(self, name: str, chain: list[dict[str, str]], fits: int) -> int:
        path = next((s[name] for s in chain if name in s), None)
        placed = None if path is None else self.points.get(path)
        if placed is None:
            return fits if fits < MAX_INSTANCES else 0
        value = _count_value(placed, self.registers)
        if value is None:
            if all(placed.address + i in self.registers for i in range(placed.point.size)):
                return fits if fits < MAX_INSTANCES else 0  # not implemented: what L holds
            self.unresolved.append(placed)
            return 0
        return min(value, fits)


def place_model(
    definition: ModelDef, address: int, length: int, registers: Mapping[int, int] | None = None
) -> PlacedModel:
    """Place every point of ``definition`` for a device whose model starts at ``address``.

    Parameters
    ----------
    definition
        The model's definition.
    address
        Protocol address of the model's ID register.
    length
        L as the device gives it [registers].
    registers
        Register values by address holding the count points of groups counted by a point;
        a count point not among them is listed in :attr:`PlacedModel.unresolved` (read it and
        place again). A count point that is "not implemented" counts what L holds.
    """
    placer = _Placer(definition, address, length, registers or {})
    placer.group(definition.group, "", address, [])
    return PlacedModel(
        definition=definition,
        address=address,
        length=length,
        points=placer.points,
        counts=placer.counts,
        unresolved=tuple(placer.unresolved),
    )
