"""SunSpec over Modbus: find the base address, walk the model chain, read and decode.

Discovery reads 2 registers at 40000, 50000 and 0 and one register either side of each
(vendors print 1-based addresses), looking for the "SunS" marker. The chain is walked by each
model's own length, never by where a model "should" start (SolarEdge's model 1 is 65 long,
SMA puts models 11 and 12 before 103); models the gateway does not decode, or that the
catalogue does not know, are skipped by their length. Every value is read in the same request
as its scale factor wherever the two fit in one request (the DER models keep their static
scale factors at the end of a 150-register model: those are read in a request of their own).

Two kinds of device: :class:`SunSpecDevice` (an inverter: 701 or 101-103/111-113, DC from 160
or 714) and :class:`SunSpecMeter` (a grid meter, 201-204/211-214).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from gateway_firmware.modbus.errors import DeviceException, IllegalAddress, NotIdentified
from gateway_firmware.modbus.planner import Group, ReadPlan
from gateway_firmware.modbus.transport import MAX_REGISTERS_PER_READ, ModbusBus, RegisterKind
from gateway_firmware.modbus.values import DecodedValues
from gateway_firmware.sunspec.decode import (
    MeterValues,
    PointValue,
    decode_common,
    decode_dc,
    decode_inverter,
    decode_meter,
    decode_model,
)
from gateway_firmware.sunspec.definitions import (
    COMMON_MODEL,
    END_MODEL_IDS,
    model_definition,
    model_name,
    require_definition,
)
from gateway_firmware.sunspec.glossary import (
    DC_GROUPS,
    DC_MODEL_PREFERENCE,
    DC_PORT_TYPE_POINT,
    INVERTER_MODEL_PREFERENCE,
    METER_MODEL_PREFERENCE,
    METER_MODELS,
    METER_POINTS,
    inverter_points,
)
from gateway_firmware.sunspec.layout import PlacedModel, PlacedPoint, place_model

log = logging.getLogger(__name__)

SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
BASE_ADDRESSES = (40000, 50000, 0)
PROBE_ORDER = (0, -1, 1)
MAX_MODELS = 64
#: Rounds of reading count points before a model's repeating groups are placed.
MAX_COUNT_ROUNDS = 4


@dataclass(frozen=True)
class ModelHeader:
    """Where a model sits: ``address`` of its id register, ``length`` L from the device."""

    model_id: int
    address: int
    length: int


@dataclass(frozen=True)
class SunSpecLayout:
    base: int
    models: tuple[ModelHeader, ...]

    @property
    def model_ids(self) -> tuple[int, ...]:
        return tuple(m.model_id for m in self.models)

    def first(self, ids: Iterable[int]) -> ModelHeader | None:
        """The first model in the chain whose id is in ``ids``."""
        wanted = set(ids)
        return next((m for m in self.models if m.model_id in wanted), None)

    def preferred(self, preference: Iterable[int]) -> ModelHeader | None:
        """The model of the first id in ``preference`` that the device has."""
        for model_id in preference:
            found = self.first((model_id,))
            if found is not None:
                return found
        return None

    def describe(self) -> str:
        """``1 (Common), 701 (DER AC Measurement), ...`` for messages."""
        return ", ".join(f"{m.model_id} ({model_name(m.model_id)})" for m in self.models)


def find_base(bus: ModbusBus, unit: int, kind: RegisterKind = RegisterKind.HOLDING) -> int:
    """Protocol address of the "SunS" marker; raises :class:`NotIdentified` if none answers."""
    tried = []
    for base in BASE_ADDRESSES:
        for delta in PROBE_ORDER:
            address = base + delta
            if address < 0:
                continue
            tried.append(address)
            try:
                regs = bus.read_registers(kind, address, 2, unit=unit)
            except DeviceException:
                continue
            if tuple(regs) == SUNSPEC_MARKER:
                return address
    raise NotIdentified(
        f"{bus.description} unit {unit}: no SunSpec marker at {', '.join(map(str, tried))}"
    )


def walk_models(bus: ModbusBus, unit: int, base: int) -> tuple[ModelHeader, ...]:
    """The model chain after the marker at ``base``."""
    models: list[ModelHeader] = []
    address = base + 2
    while len(models) < MAX_MODELS and address < 0xFFFF:
        try:
            model_id, length = bus.read_registers(RegisterKind.HOLDING, address, 2, unit=unit)
        except IllegalAddress:
            # some devices give no length register after the end marker
            (model_id,) = bus.read_registers(RegisterKind.HOLDING, address, 1, unit=unit)
            if model_id in END_MODEL_IDS:
                break
            raise
        if model_id in END_MODEL_IDS:
            break
        models.append(ModelHeader(model_id, address, length))
        address += 2 + length
    return tuple(models)


def point_groups(model: PlacedModel, paths: Iterable[str]) -> list[Group]:
    """Register groups for points: each point with its scale factor when both fit one request."""
    groups = []
    for path in paths:
        placed = model.get(path)
        if placed is None:
            continue
        sf = model.sf_of(placed)
        if sf is not None:
            lo, hi = min(placed.address, sf.address), max(placed.end, sf.end)
            if hi - lo <= MAX_REGISTERS_PER_READ:
                groups.append(Group(lo, hi - lo))
                continue
            groups.append(Group(sf.address, sf.point.size))
        groups.append(Group(placed.address, placed.point.size))
    return groups


class SunSpecUnit:
    """A SunSpec device on a bus: its model chain and the models it is read through.

    Discovers itself on first use and caches the layout; :class:`SunSpecDevice` and
    :class:`SunSpecMeter` say which models they read.
    """

    def __init__(self, bus: ModbusBus, unit: int, *, max_registers_per_read: int = 125) -> None:
        self.bus = bus
        self.unit = unit
        self.max_registers_per_read = max_registers_per_read
        self._layout: SunSpecLayout | None = None
        self._plan: ReadPlan | None = None
        self._identity_plan: ReadPlan | None = None
        self._common: PlacedModel | None = None

    @property
    def layout(self) -> SunSpecLayout:
        if self._layout is None:
            self.discover()
        assert self._layout is not None
        return self._layout

    def _read_plan(self, groups: list[Group], *, max_gap: int = 2) -> ReadPlan:
        return ReadPlan(
            RegisterKind.HOLDING, groups, max_count=self.max_registers_per_read, max_gap=max_gap
        )

    def place(self, header: ModelHeader) -> PlacedModel:
        """The model at ``header`` placed on this device, reading its count points if needed."""
        definition = require_definition(header.model_id)
        registers: dict[int, int] = {}
        placed = place_model(definition, header.address, header.length, registers)
        for _ in range(MAX_COUNT_ROUNDS):
            if not placed.unresolved:
                break
            groups = [Group(p.address, p.point.size) for p in placed.unresolved]
            registers.update(self._read_plan(groups, max_gap=0).read(self.bus, self.unit))
            placed = place_model(definition, header.address, header.length, registers)
        return placed

    def discover(self) -> SunSpecLayout:
        """Find the marker and walk the chain (again); resets the learned read plans."""
        base = find_base(self.bus, self.unit)
        layout = SunSpecLayout(base, walk_models(self.bus, self.unit, base))
        self._layout = layout
        self._identity_plan = None
        self._plan = None
        common = layout.first((COMMON_MODEL,))
        self._common = None if common is None else self.place(common)
        self._choose(layout)
        log.info(
            "%s unit %s: SunSpec base %s, models %s",
            self.bus.description,
            self.unit,
            base,
            list(layout.model_ids),
        )
        return layout

    def _choose(self, layout: SunSpecLayout) -> None:
        """Pick and place the models this kind of device is read through (subclasses)."""

    def _where(self) -> str:
        return f"{self.bus.description} unit {self.unit}"

    def identity(self) -> dict[str, str | None]:
        """Model 1 strings: Mn, Md, Opt, Vr, SN (None when absent)."""
        self.layout  # noqa: B018 - discovers on first use
        common = self._common
        if common is None:
            return {}
        if self._identity_plan is None:
            names = ("Mn", "Md", "Opt", "Vr", "SN")
            groups = [Group(p.address, p.point.size) for n in names if (p := common.get(n))]
            if not groups:
                return {}
            self._identity_plan = self._read_plan(groups, max_gap=0)
        registers = self._identity_plan.read(self.bus, self.unit)
        return decode_common(common, registers)

    def _read_registers(self) -> dict[int, int]:
        self.layout  # noqa: B018 - discovers on first use
        assert self._plan is not None
        try:
            return self._plan.read(self.bus, self.unit)
        except IllegalAddress:
            self._layout = None  # the map changed (firmware update?): discover again next time
            raise

    def read_all(self) -> list[tuple[ModelHeader, dict[str, PointValue] | None]]:
        """Every point of every model the catalogue defines, decoded (for ``scan --points``);
        None for models the catalogue does not know."""
        result: list[tuple[ModelHeader, dict[str, PointValue] | None]] = []
        for header in self.layout.models:
            if model_definition(header.model_id) is None:
                result.append((header, None))
                continue
            placed = self.place(header)
            plan = self._read_plan(point_groups(placed, placed.points), max_gap=0)
            result.append((header, decode_model(placed, plan.read(self.bus, self.unit))))
        return result


class SunSpecDevice(SunSpecUnit):
    """A SunSpec inverter: the DER model 701 or 101-103/111-113, DC from 160 or 714."""

    def __init__(self, bus: ModbusBus, unit: int, *, max_registers_per_read: int = 125) -> None:
        super().__init__(bus, unit, max_registers_per_read=max_registers_per_read)
        self._inverter: PlacedModel | None = None
        self._dc: PlacedModel | None = None

    @property
    def inverter_model(self) -> PlacedModel | None:
        return self._inverter

    @property
    def dc_model(self) -> PlacedModel | None:
        return self._dc

    @property
    def plan(self) -> ReadPlan | None:
        """The read plan of one poll (after discovery)."""
        return self._plan

    def _choose(self, layout: SunSpecLayout) -> None:
        inverter = layout.preferred(INVERTER_MODEL_PREFERENCE)
        if inverter is None:
            meter = layout.first(METER_MODELS)
            hint = (
                f"; it has the meter model {meter.model_id}: read it with the profile sunspec-meter"
                if meter is not None
                else ""
            )
            raise NotIdentified(
                f"{self._where()}: SunSpec device without an inverter model (models "
                f"{layout.describe()}); expected one of 701, 101-103, 111-113{hint}"
            )
        dc = layout.preferred(DC_MODEL_PREFERENCE)
        self._inverter = self.place(inverter)
        self._dc = None if dc is None else self.place(dc)
        points = inverter_points(inverter.model_id)
        paths = [name for names in points.ac.values() for name in names]
        paths += [points.state, points.events]
        if points.vendor_state:
            paths.append(points.vendor_state)
        if self._dc is None:
            paths += list(points.dc_totals.values())
        groups = point_groups(self._inverter, paths)
        if self._dc is not None:
            group, fields = DC_GROUPS[self._dc.model_id]
            dc_paths = [
                prefix + name
                for prefix in self._dc.instances(group)
                for name in (*fields.values(), DC_PORT_TYPE_POINT)
            ]
            groups += point_groups(self._dc, dc_paths)
        if not groups:
            raise NotIdentified(
                f"{self._where()}: SunSpec model {inverter.model_id} is {inverter.length} "
                "registers long, too short to hold any value the gateway reads"
            )
        self._plan = self._read_plan(groups)

    def read(self) -> DecodedValues:
        """Read and decode the inverter (and DC) model; few requests, each value with its SF."""
        registers = self._read_registers()
        assert self._inverter is not None
        out = DecodedValues()
        decode_inverter(self._inverter, registers, out, with_dc=self._dc is None)
        if self._dc is not None:
            decode_dc(self._dc, registers, out)
        return out


class SunSpecMeter(SunSpecUnit):
    """A SunSpec AC meter (201-204 integer + SF, 211-214 float) at the grid connection."""

    def __init__(self, bus: ModbusBus, unit: int, *, max_registers_per_read: int = 125) -> None:
        super().__init__(bus, unit, max_registers_per_read=max_registers_per_read)
        self._meter: PlacedModel | None = None

    @property
    def meter_model(self) -> PlacedModel | None:
        return self._meter

    def _choose(self, layout: SunSpecLayout) -> None:
        header = layout.preferred(METER_MODEL_PREFERENCE)
        if header is None:
            raise NotIdentified(
                f"{self._where()}: SunSpec device without a meter model (models "
                f"{layout.describe()}); expected one of 201-204, 211-214"
            )
        self._meter = self.place(header)
        points = METER_POINTS
        paths = [points.import_energy, points.export_energy, points.power]
        for _phase, *names in points.phases:
            paths += names
        groups = point_groups(self._meter, paths)
        if not groups:
            raise NotIdentified(
                f"{self._where()}: SunSpec meter model {header.model_id} is {header.length} "
                "registers long, too short to hold any value the gateway reads"
            )
        self._plan = self._read_plan(groups)

    def read(self) -> MeterValues:
        registers = self._read_registers()
        assert self._meter is not None
        return decode_meter(self._meter, registers)


__all__ = [
    "ModelHeader",
    "PlacedPoint",
    "SunSpecDevice",
    "SunSpecLayout",
    "SunSpecMeter",
    "SunSpecUnit",
    "find_base",
    "walk_models",
]
