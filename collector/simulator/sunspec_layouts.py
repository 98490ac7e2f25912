"""Simulated SunSpec devices: inverters (101/103, 111/113, DER 701 with 160 or 714) and grid
meters (201/203, 211/213), encoded from the official model definitions.

Options mimic real devices: :func:`sma_layout` (unit 126, models 11 and 12 before 103, large
reads refused with exception 2), :func:`solaredge_layout` (model 1 with L=65, sentinels at
night), :func:`der_layout` (an IEEE 1547-2018 inverter: 701, 702, 714).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from collector.simulator.device_values import DcValues, GridMeterValues, Image, InverterValues
from collector.simulator.sunspec_image import ModelImage, encode_model, state_code
from gateway_firmware.modbus.transport import RegisterKind
from gateway_firmware.sunspec.client import SUNSPEC_MARKER
from gateway_firmware.sunspec.definitions import require_definition
from gateway_firmware.sunspec.glossary import DER_AC_MODEL, DER_DC_MODEL, MPPT_MODEL
from zonnewijk_wire import InverterState

DEFAULT_INT_SF: dict[str, int] = {
    "A_SF": -2,
    "V_SF": -1,
    "W_SF": 0,
    "Hz_SF": -2,
    "VA_SF": 0,
    "VAr_SF": 0,
    "PF_SF": -2,
    "WH_SF": 0,
    "DCA_SF": -2,
    "DCV_SF": -1,
    "DCW_SF": 0,
    "Tmp_SF": -1,
}
DEFAULT_MPPT_SF: dict[str, int] = {"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0}
#: The DER models' scale factors (701: frequency in mHz, power factor in thousandths).
DEFAULT_DER_SF: dict[str, int] = {
    "Hz_SF": -3,
    "PF_SF": -3,
    "Var_SF": 0,
    "TotWh_SF": 0,
    "TotVarh_SF": 0,
}
DEFAULT_METER_SF: dict[str, int] = {
    "A_SF": -2,
    "V_SF": -1,
    "Hz_SF": -2,
    "W_SF": 0,
    "VA_SF": 0,
    "VAR_SF": 0,
    "PF_SF": -2,
    "TotWh_SF": 0,
    "TotVAh_SF": 0,
    "TotVArh_SF": 0,
}


class _Chain:
    """A SunSpec register image being written: marker, models one after another, end."""

    def __init__(self, base: int) -> None:
        self.regs: dict[int, int] = {base: SUNSPEC_MARKER[0], base + 1: SUNSPEC_MARKER[1]}
        self.address = base + 2
        self.addresses: dict[int, int] = {}
        self.models: dict[int, ModelImage] = {}

    def add(self, image: ModelImage) -> None:
        self.regs.update(image.registers)
        self.addresses.setdefault(image.placed.model_id, image.placed.address)
        self.models.setdefault(image.placed.model_id, image)
        self.address = image.end

    def add_zeros(self, model_id: int, length: int) -> None:
        self.regs[self.address] = model_id
        self.regs[self.address + 1] = length
        for i in range(length):
            self.regs[self.address + 2 + i] = 0
        self.addresses.setdefault(model_id, self.address)
        self.address += 2 + length

    def image(self) -> Image:
        self.regs[self.address] = 0xFFFF
        self.regs[self.address + 1] = 0
        return {RegisterKind.HOLDING: self.regs, RegisterKind.INPUT: {}}


@dataclass
class _Identity:
    manufacturer: str = "Zonnewijk"
    model: str = "SimInverter 5000"
    serial: str = "SIM0001"
    version: str = "1.0.0"
    options: str = ""

    def common(self, address: int, length: int) -> ModelImage:
        values: dict[str, str | int] = {
            "Mn": self.manufacturer,
            "Md": self.model,
            "Opt": self.options,
            "Vr": self.version,
            "SN": self.serial,
            "DA": 1,
        }
        return encode_model(1, address, values, length=length)


@dataclass
class SunSpecLayout:
    """A SunSpec inverter's register map.

    Parameters
    ----------
    float_model
        Serve 111/113 (float32) instead of 101/103 (integer + scale factor).
    der
        Serve the DER models (701 AC measurement, 702 capacity, 714 DC ports for
        ``mppt_count``) instead of 101-113 and 160.
    classic_too
        With ``der``: also serve 103 after 701 (a device with both; the gateway reads 701).
    phases
        1 (model 101/111) or 3 (103/113).
    base
        Address of the "SunS" marker (40000, 50000 or 0; 40001 mimics a 1-based mistake).
    common_length
        L of model 1 (66 in the specification, 65 on SolarEdge).
    extra_models
        (model id, length) of models served between model 1 and the inverter model
        (SMA: 11 and 12), filled with zeros.
    inverter_length
        L announced for the inverter model (default: the definition's; longer: a newer
        revision, shorter: an older one).
    mppt_count
        Serve model 160 (714 with ``der``) with this many modules (None: none).
    scale_factors
        Scale factors by point name (``W_SF``, ``DCW_SF``, ...).
    max_read_registers
        Refuse reads longer than this with exception 2 (SMA-like); None: accept up to 125.
    """

    name: str = "sunspec-int"
    float_model: bool = False
    der: bool = False
    classic_too: bool = False
    phases: int = 3
    base: int = 40000
    common_length: int = 66
    extra_models: tuple[tuple[int, int], ...] = ()
    inverter_length: int | None = None
    mppt_count: int | None = None
    manufacturer: str = "Zonnewijk"
    model: str = "SimInverter 5000"
    serial: str = "SIM0001"
    version: str = "1.0.0"
    options: str = ""
    rated_power_w: float = 5000.0
    scale_factors: dict[str, int] = field(default_factory=dict)
    max_read_registers: int | None = None
    #: While sleeping, report measurements as "not implemented" (SolarEdge at night).
    sleep_sentinels: bool = False

    def __post_init__(self) -> None:
        if self.phases not in (1, 3):
            raise ValueError("phases must be 1 or 3")
        defaults = {**DEFAULT_INT_SF, **DEFAULT_MPPT_SF}
        if self.der:
            defaults.update(DEFAULT_DER_SF)
        self.scale_factors = {**defaults, **self.scale_factors}

    @property
    def inverter_model_id(self) -> int:
        if self.der:
            return DER_AC_MODEL
        if self.float_model:
            return 111 if self.phases == 1 else 113
        return 101 if self.phases == 1 else 103

    def model_addresses(self) -> dict[int, int]:
        """Address of each served model's id register (by model id)."""
        return self._chain(InverterValues()).addresses

    def point_address(self, model_id: int, path: str) -> int:
        """Address of a point of a served model (``point_address(103, "W_SF")``)."""
        placed = self._chain(InverterValues()).models[model_id].placed.points[path]
        return placed.address

    def encode(self, values: InverterValues) -> Image:
        return self._chain(values).image()

    def _chain(self, values: InverterValues) -> _Chain:
        if self.sleep_sentinels and values.state is InverterState.SLEEPING:
            values = replace(
                values,
                ac_power_w=0.0,
                ac_voltage_v=None,
                grid_frequency_hz=None,
                cabinet_temp_c=None,
                dc=[DcValues() for _ in values.dc],
            )
        chain = _Chain(self.base)
        identity = _Identity(self.manufacturer, self.model, self.serial, self.version, self.options)
        chain.add(identity.common(chain.address, self.common_length))
        for model_id, length in self.extra_models:
            chain.add_zeros(model_id, length)
        if self.der:
            chain.add(self._der_ac(chain.address, values))
            chain.add(self._der_capacity(chain.address))
            if self.classic_too:
                chain.add(self._classic(103, chain.address, values))
            if self.mppt_count is not None:
                chain.add(self._dc_ports(chain.address, values))
        else:
            chain.add(self._classic(self.inverter_model_id, chain.address, values))
            if self.mppt_count is not None:
                chain.add(self._mppt(chain.address, values))
        return chain

    def _ac_current(self, values: InverterValues) -> float | None:
        if values.ac_power_w is None or not values.ac_voltage_v:
            return None
        return abs(values.ac_power_w) / values.ac_voltage_v / self.phases

    def _classic(self, model_id: int, address: int, values: InverterValues) -> ModelImage:
        dc = values.dc
        dc_v = [d.dc_voltage_v for d in dc if d.dc_voltage_v is not None]
        dc_a = [d.dc_current_a for d in dc if d.dc_current_a is not None]
        dc_w = [d.dc_power_w for d in dc if d.dc_power_w is not None]
        current = self._ac_current(values)
        points: dict[str, float | int | None] = {
            "A": None if current is None else current * self.phases,
            "AphA": current,
            "PhVphA": values.ac_voltage_v,
            "W": values.ac_power_w,
            "Hz": values.grid_frequency_hz,
            "WH": values.ac_energy_wh,
            "DCV": sum(dc_v) / len(dc_v) if dc_v else None,
            "DCA": sum(dc_a) if dc_a else None,
            "DCW": sum(dc_w) if dc_w else None,
            "TmpCab": values.cabinet_temp_c,
            "StVnd": values.vendor_state,
            "Evt1": values.events,
        }
        if self.phases == 3:
            points.update(
                AphB=current, AphC=current, PhVphB=values.ac_voltage_v, PhVphC=values.ac_voltage_v
            )
        definition = require_definition(model_id)
        st = definition.group.point("St")
        assert st is not None
        points["St"] = state_code(st, values.state)
        return encode_model(
            model_id,
            address,
            points,
            scale_factors=self.scale_factors,
            length=self.inverter_length if model_id == self.inverter_model_id else None,
        )

    def _der_ac(self, address: int, values: InverterValues) -> ModelImage:
        current = self._ac_current(values)
        definition = require_definition(DER_AC_MODEL)
        inv_st = definition.group.point("InvSt")
        assert inv_st is not None
        producing = values.state in (InverterState.PRODUCING, InverterState.THROTTLED)
        points: dict[str, float | int | None] = {
            "ACType": 2 if self.phases == 3 else 0,
            "St": 1 if producing else 0,
            "InvSt": state_code(inv_st, values.state),
            "ConnSt": 1 if producing else 0,
            "Alrm": values.events,
            "W": values.ac_power_w,
            "A": None if current is None else current * self.phases,
            "LNV": values.ac_voltage_v,
            "Hz": values.grid_frequency_hz,
            "TotWhInj": values.ac_energy_wh,
            "TmpCab": values.cabinet_temp_c,
            "WL1": None if values.ac_power_w is None else values.ac_power_w / self.phases,
            "AL1": current,
            "VL1": values.ac_voltage_v,
        }
        if self.phases == 3:
            for phase in ("L2", "L3"):
                points[f"W{phase}"] = points["WL1"]
                points[f"A{phase}"] = current
                points[f"V{phase}"] = values.ac_voltage_v
        return encode_model(
            DER_AC_MODEL,
            address,
            points,
            scale_factors=self.scale_factors,
            length=self.inverter_length,
        )

    def _der_capacity(self, address: int) -> ModelImage:
        points = {"WMaxRtg": self.rated_power_w, "VAMaxRtg": self.rated_power_w}
        return encode_model(702, address, points, scale_factors=self.scale_factors)

    def _dc_values(self, values: InverterValues, index: int) -> DcValues:
        return values.dc[index] if index < len(values.dc) else DcValues()

    def _mppt(self, address: int, values: InverterValues) -> ModelImage:
        assert self.mppt_count is not None
        points: dict[str, float | int | str | None] = {"N": self.mppt_count, "Evt": 0}
        for i in range(self.mppt_count):
            dc = self._dc_values(values, i)
            prefix = f"module[{i + 1}]."
            points |= {
                f"{prefix}ID": i + 1,
                f"{prefix}IDStr": f"MPPT {i + 1}",
                f"{prefix}DCA": dc.dc_current_a,
                f"{prefix}DCV": dc.dc_voltage_v,
                f"{prefix}DCW": dc.dc_power_w,
                f"{prefix}Tms": 0,
                f"{prefix}DCSt": 4 if (dc.dc_power_w or 0) > 0 else 2,
                f"{prefix}DCEvt": 0,
            }
        return encode_model(
            MPPT_MODEL,
            address,
            points,
            scale_factors=self.scale_factors,
            counts={"module": self.mppt_count},
        )

    def _dc_ports(self, address: int, values: InverterValues) -> ModelImage:
        assert self.mppt_count is not None
        points: dict[str, float | int | str | None] = {"PrtAlrms": 0}
        total_a = total_w = 0.0
        for i in range(self.mppt_count):
            dc = self._dc_values(values, i)
            prefix = f"Prt[{i + 1}]."
            points |= {
                f"{prefix}PrtTyp": 0,  # PV
                f"{prefix}ID": i + 1,
                f"{prefix}IDStr": f"PV {i + 1}",
                f"{prefix}DCA": dc.dc_current_a,
                f"{prefix}DCV": dc.dc_voltage_v,
                f"{prefix}DCW": dc.dc_power_w,
                f"{prefix}DCSta": 1 if (dc.dc_power_w or 0) > 0 else 0,
                f"{prefix}DCAlrm": 0,
            }
            total_a += dc.dc_current_a or 0.0
            total_w += dc.dc_power_w or 0.0
        points |= {"DCA": total_a, "DCW": total_w}
        return encode_model(
            DER_DC_MODEL,
            address,
            points,
            scale_factors=self.scale_factors,
            counts={"Prt": self.mppt_count},
        )


def sma_layout(**overrides: Any) -> SunSpecLayout:
    """SMA-like: models 11 and 12 before 103, reads over 60 registers refused (exception 2).

    Serve it on unit 126.
    """
    settings: dict[str, Any] = {
        "name": "sma",
        "extra_models": ((11, 13), (12, 98)),
        "manufacturer": "SMA",
        "model": "STP 6.0-3AV-40",
        "serial": "3012345678",
        "version": "3.10.10.R",
        "max_read_registers": 60,
    }
    return SunSpecLayout(**{**settings, **overrides})


def solaredge_layout(**overrides: Any) -> SunSpecLayout:
    """SolarEdge-like: model 1 with L=65 (the specification says 66), model 101, unit 1; asleep
    (St 2) it reports W 0 and its measurements as "not implemented"."""
    settings: dict[str, Any] = {
        "name": "solaredge",
        "common_length": 65,
        "sleep_sentinels": True,
        "phases": 1,
        "manufacturer": "SolarEdge",
        "model": "SE5000H",
        "serial": "7E123456",
        "version": "0004.0019.0035",
    }
    return SunSpecLayout(**{**settings, **overrides})


def der_layout(**overrides: Any) -> SunSpecLayout:
    """An IEEE 1547-2018 inverter: DER models 701 (AC), 702 (capacity), 714 (two PV ports)."""
    settings: dict[str, Any] = {
        "name": "sunspec-der",
        "der": True,
        "mppt_count": 2,
        "manufacturer": "Zonnewijk",
        "model": "SimDER 6000",
        "version": "2.0.0",
    }
    return SunSpecLayout(**{**settings, **overrides})


@dataclass
class SunSpecMeterLayout:
    """A SunSpec AC meter at the grid connection: 203 (or 201 single phase, 213/211 float)."""

    name: str = "sunspec-meter"
    float_model: bool = False
    phases: int = 3
    base: int = 40000
    manufacturer: str = "Zonnewijk"
    model: str = "SimMeter 3P"
    serial: str = "MTR0001"
    version: str = "1.0.0"
    scale_factors: dict[str, int] = field(default_factory=dict)
    max_read_registers: int | None = None
    #: The server creates values of this kind for a unit with this layout.
    is_meter: bool = True

    def __post_init__(self) -> None:
        if self.phases not in (1, 3):
            raise ValueError("phases must be 1 or 3")
        self.scale_factors = {**DEFAULT_METER_SF, **self.scale_factors}

    @property
    def meter_model_id(self) -> int:
        return (
            (211 if self.phases == 1 else 213)
            if self.float_model
            else (201 if self.phases == 1 else 203)
        )

    def encode(self, values: GridMeterValues) -> Image:
        chain = _Chain(self.base)
        identity = _Identity(self.manufacturer, self.model, self.serial, self.version)
        chain.add(identity.common(chain.address, 66))
        phases = ("A", "B", "C")[: self.phases]
        power = values.net_power_w
        per_phase = None if power is None else power / self.phases
        current = None
        if per_phase is not None and values.voltage_v:
            current = abs(per_phase) / values.voltage_v
        points: dict[str, float | int | None] = {
            "W": power,
            "TotWhImp": values.import_energy_wh,
            "TotWhExp": values.export_energy_wh,
            "PhV": values.voltage_v,
            "Hz": values.frequency_hz,
            "A": None if current is None else current * self.phases,
            "Evt": 0,
        }
        for phase in phases:
            points[f"Wph{phase}"] = per_phase
            points[f"PhVph{phase}"] = values.voltage_v
            points[f"Aph{phase}"] = current
        chain.add(
            encode_model(
                self.meter_model_id, chain.address, points, scale_factors=self.scale_factors
            )
        )
        return chain.image()
