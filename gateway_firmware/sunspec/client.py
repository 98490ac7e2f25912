"""SunSpec over Modbus: find the base address, walk the model chain, read and decode.

Discovery reads 2 registers at 40000, 50000 and 0 and one register either side of each
(vendors print 1-based addresses), looking for the "SunS" marker. The chain is walked by each
model's own length, never by where a model "should" start (SolarEdge's model 1 is 65 long,
SMA puts models 11 and 12 before 103). Every value is read in the same request as its
scale factor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from gateway_firmware.modbus.errors import DeviceException, IllegalAddress, NotIdentified
from gateway_firmware.modbus.planner import Group, ReadPlan
from gateway_firmware.modbus.transport import MAX_REGISTERS_PER_READ, ModbusBus, RegisterKind
from gateway_firmware.modbus.values import DecodedValues
from gateway_firmware.sunspec.decode import decode_common, decode_inverter, decode_mppt
from gateway_firmware.sunspec.models import (
    COMMON_MODEL,
    END_MODEL_IDS,
    INVERTER_MODELS,
    MPPT_MODEL,
    ModelDef,
    model_defs,
)

log = logging.getLogger(__name__)

SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
BASE_ADDRESSES = (40000, 50000, 0)
PROBE_ORDER = (0, -1, 1)
MAX_MODELS = 64


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

    def first(self, ids: frozenset[int] | set[int]) -> ModelHeader | None:
        return next((m for m in self.models if m.model_id in ids), None)


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


def _intervals(model: ModelDef, header: ModelHeader, names: Sequence[str] | None) -> list[Group]:
    """Register groups for a model's points: each point with its scale factor, overlaps merged."""
    limit = 2 + header.length
    spans: list[tuple[int, int]] = []
    for point in model.points.values():
        if names is not None and point.name not in names:
            continue
        if point.end > limit:
            continue
        lo, hi = point.offset, point.end
        if point.sf and point.sf in model.points:
            sf = model.points[point.sf]
            lo, hi = min(lo, sf.offset), max(hi, sf.end)
        spans.append((lo, hi))
    if model.module_points and model.module_start and model.module_length:
        module_count = (limit - model.module_start) // model.module_length
        sf_lo = min(p.offset for p in model.points.values() if p.type == "sunssf")
        for index in range(module_count):
            lo = model.module_start + index * model.module_length
            spans.append((lo, lo + model.module_length))
        whole = (sf_lo, model.module_start + module_count * model.module_length)
        if whole[1] - whole[0] <= MAX_REGISTERS_PER_READ:
            spans.append(whole)  # one group: every module read with its scale factors
    spans.sort()
    merged: list[list[int]] = []
    for lo, hi in spans:
        if merged and lo < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    groups = []
    for lo, hi in merged:
        # a span longer than one request is split into request-sized pieces
        for start in range(lo, hi, MAX_REGISTERS_PER_READ):
            count = min(MAX_REGISTERS_PER_READ, hi - start)
            groups.append(Group(header.address + start, count))
    return groups


class SunSpecDevice:
    """A SunSpec device on a bus; discovers itself on first use and caches the layout."""

    def __init__(self, bus: ModbusBus, unit: int, *, max_registers_per_read: int = 125) -> None:
        self.bus = bus
        self.unit = unit
        self.max_registers_per_read = max_registers_per_read
        self._layout: SunSpecLayout | None = None
        self._plan: ReadPlan | None = None
        self._identity_plan: ReadPlan | None = None
        self._inverter: ModelHeader | None = None
        self._mppt: ModelHeader | None = None

    @property
    def layout(self) -> SunSpecLayout:
        if self._layout is None:
            self.discover()
        assert self._layout is not None
        return self._layout

    def discover(self) -> SunSpecLayout:
        """Find the marker and walk the chain (again); resets the learned read plan."""
        base = find_base(self.bus, self.unit)
        layout = SunSpecLayout(base, walk_models(self.bus, self.unit, base))
        self._layout = layout
        self._identity_plan = None
        self._inverter = layout.first(INVERTER_MODELS)
        self._mppt = layout.first({MPPT_MODEL})
        if self._inverter is None:
            raise NotIdentified(
                f"{self.bus.description} unit {self.unit}: SunSpec device without an inverter "
                f"model (models {list(layout.model_ids)}); expected one of 101-103, 111-113"
            )
        defs = model_defs()
        groups = _intervals(defs[self._inverter.model_id], self._inverter, None)
        if self._mppt is not None:
            groups += _intervals(defs[MPPT_MODEL], self._mppt, None)
        self._plan = ReadPlan(
            RegisterKind.HOLDING,
            groups,
            max_count=self.max_registers_per_read,
            max_gap=2,  # the next model's id and length registers
        )
        log.info(
            "%s unit %s: SunSpec base %s, models %s",
            self.bus.description,
            self.unit,
            base,
            list(layout.model_ids),
        )
        return layout

    def identity(self) -> dict[str, str | None]:
        """Model 1 strings: Mn, Md, Opt, Vr, SN (None when absent)."""
        header = self.layout.first({COMMON_MODEL})
        if header is None:
            return {}
        model = model_defs()[COMMON_MODEL]
        if self._identity_plan is None:
            self._identity_plan = ReadPlan(
                RegisterKind.HOLDING,
                _intervals(model, header, ("Mn", "Md", "Opt", "Vr", "SN")),
                max_count=self.max_registers_per_read,
            )
        registers = self._identity_plan.read(self.bus, self.unit)
        return decode_common(registers, header.address, model, header.length)

    def read(self) -> DecodedValues:
        """Read and decode the inverter (and MPPT) model; one request when the device allows."""
        self.layout  # noqa: B018 - discovers on first use
        assert self._plan is not None and self._inverter is not None
        try:
            registers = self._plan.read(self.bus, self.unit)
        except IllegalAddress:
            self._layout = None  # the map changed (firmware update?): discover again next time
            raise
        out = DecodedValues()
        defs = model_defs()
        decode_inverter(
            registers,
            self._inverter.address,
            defs[self._inverter.model_id],
            self._inverter.length,
            out,
            with_dc=self._mppt is None,
        )
        if self._mppt is not None:
            decode_mppt(registers, self._mppt.address, defs[MPPT_MODEL], self._mppt.length, out)
        return out
