"""Simulated Modbus inverters: a real pymodbus server (TCP, or RTU on a serial port/pty).

One :class:`SimulatedInverters` server serves one or more unit ids; each unit has a layout
that encodes inverter values into registers:

- :class:`SunSpecLayout` - SunSpec integer (models 1 + 101/103 + optional 160, scale factors),
  float (1 + 111/113) or DER (1 + 701 + 702 + optional 714), with options that mimic real
  devices (:mod:`collector.simulator.sunspec_layouts`: SMA, SolarEdge, DER);
- :class:`SunSpecMeterLayout` - a SunSpec grid meter (1 + 203/201/213/211);
- :class:`ProfileLayout` - any vendor profile from ``config/devices/``, encoded from the same
  YAML the gateway decodes with.

Values change while the server runs (:meth:`SimulatedInverters.set_values`,
:meth:`SimulatedInverters.set_reading`, raw :meth:`SimulatedInverters.poke` for glitches).
pymodbus 3.16 copies the datastore when the server is built, so updates go through the
server's own ``async_setValues`` on its event loop; a whole update is applied in one loop
callback, so a client never sees half of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from types import TracebackType
from typing import Any, Self

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collector.simulator.device_values import (
    DcValues,
    GridMeterValues,
    Image,
    InverterValues,
    Layout,
    clamp_int,
    initial_values,
)
from collector.simulator.sunspec_layouts import (
    SunSpecLayout,
    SunSpecMeterLayout,
    der_layout,
    sma_layout,
    solaredge_layout,
)
from gateway_firmware.modbus.codec import encode_number, encode_string
from gateway_firmware.modbus.transport import RegisterKind
from gateway_firmware.profiles import Profile, load_profile
from zonnewijk_wire import InverterState, Reading

__all__ = [
    "DcValues",
    "GridMeterValues",
    "Image",
    "InverterValues",
    "Layout",
    "ProfileLayout",
    "RegisterImageLayout",
    "SimulatedInverters",
    "SunSpecLayout",
    "SunSpecMeterLayout",
    "der_layout",
    "gateway_profile_for",
    "layout_for",
    "sma_layout",
    "solaredge_layout",
]

log = logging.getLogger(__name__)

_FUNC_CODE = {RegisterKind.HOLDING: 3, RegisterKind.INPUT: 4}


# --- vendor profiles ------------------------------------------------------------------------


def _raw_words(raw: int, count: int, word_order: str) -> list[int]:
    words = [(raw >> (16 * (count - 1 - i))) & 0xFFFF for i in range(count)]
    return words if word_order == "big" else list(reversed(words))


@dataclass
class ProfileLayout:
    """A vendor map from a ``config/devices/`` profile, encoded with the gateway's own file."""

    profile: Profile
    model: str = "SIM-5KTL"
    serial: str = "SIM0001"
    max_read_registers: int | None = None

    @property
    def name(self) -> str:
        return self.profile.name

    def _state_code(self, state: InverterState) -> int | None:
        entry = next((s for s in self.profile.states if s.state is state), None)
        return None if entry is None else entry.first

    def encode(self, values: InverterValues) -> Image:
        image: Image = {RegisterKind.HOLDING: {}, RegisterKind.INPUT: {}}
        vendor_state = values.vendor_state
        if vendor_state is None:
            vendor_state = self._state_code(values.state)
        by_field: dict[str, float | None] = {
            "ac_power_w": values.ac_power_w,
            "ac_energy_wh": values.ac_energy_wh,
            "ac_voltage_v": values.ac_voltage_v,
            "grid_frequency_hz": values.grid_frequency_hz,
            "cabinet_temp_c": values.cabinet_temp_c,
            "vendor_state": None if vendor_state is None else float(vendor_state),
            "vendor_events": float(values.events),
        }
        for index, dc in enumerate(values.dc, start=1):
            by_field[f"dc{index}_voltage_v"] = dc.dc_voltage_v
            by_field[f"dc{index}_current_a"] = dc.dc_current_a
            by_field[f"dc{index}_power_w"] = dc.dc_power_w
        for spec in self.profile.registers:
            value = by_field.get(spec.field)
            if value is None:
                raw = min(spec.invalid) if spec.invalid else 0
                words = _raw_words(raw, spec.count, spec.word_order)
            else:
                scaled = value if spec.unit == "code" else value / spec.scale
                number: float = scaled if spec.type == "float32" else clamp_int(scaled, spec.type)
                words = encode_number(number, spec.type, spec.word_order)
            for i, word in enumerate(words):
                image[spec.kind][spec.address + i] = word
        strings = {"model": self.model, "serial": self.serial, "firmware": "V100R001C00"}
        for key, string_spec in self.profile.identify.items():
            for i, word in enumerate(encode_string(strings.get(key, ""), string_spec.size)):
                image[string_spec.kind][string_spec.address + i] = word
        return image


@dataclass
class RegisterImageLayout:
    """A device serving a register image made elsewhere (e.g. by pysunspec2 in tests): holding
    registers ``start .. start + size - 1``, zeros where the image has none."""

    start: int = 40000
    size: int = 1000
    registers: dict[int, int] = field(default_factory=dict)
    name: str = "register-image"
    max_read_registers: int | None = None

    def encode(self, values: Any) -> Image:
        image = {a: 0 for a in range(self.start, self.start + self.size)}
        for address, value in self.registers.items():
            if address not in image:
                raise ValueError(f"register {address} is outside {self.start}+{self.size}")
            image[address] = value & 0xFFFF
        return {RegisterKind.HOLDING: image, RegisterKind.INPUT: {}}


def layout_for(name: str, **overrides: Any) -> Layout:
    """A layout by name: ``sunspec-int``, ``sunspec-float``, ``sunspec-der``, ``sunspec-meter``,
    ``sma``, ``solaredge``, or a profile name from ``config/devices/`` (``huawei`` and
    ``sungrow`` accepted as short names)."""
    aliases = {"huawei": "huawei-sun2000", "sungrow": "sungrow-sg", "sunspec": "sunspec-int"}
    name = aliases.get(name, name)
    if name == "sunspec-int":
        return SunSpecLayout(**overrides)
    if name == "sunspec-float":
        return SunSpecLayout(**{"name": "sunspec-float", "float_model": True, **overrides})
    if name == "sunspec-der":
        return der_layout(**overrides)
    if name == "sunspec-meter":
        return SunSpecMeterLayout(**overrides)
    if name == "sma":
        return sma_layout(**overrides)
    if name == "solaredge":
        return solaredge_layout(**overrides)
    return ProfileLayout(load_profile(name), **overrides)


_SUNSPEC_LAYOUTS = frozenset(
    {"sunspec", "sunspec-int", "sunspec-float", "sunspec-der", "sma", "solaredge"}
)


def gateway_profile_for(layout_name: str) -> str:
    """The profile a gateway must be configured with to read a layout (``sunspec`` for every
    SunSpec layout, the profile file name otherwise; accepts the short names)."""
    if layout_name in _SUNSPEC_LAYOUTS:
        return "sunspec"
    if layout_name == "sunspec-meter":
        return "sunspec-meter"
    return {"huawei": "huawei-sun2000", "sungrow": "sungrow-sg"}.get(layout_name, layout_name)


LAYOUT_NAMES = (
    "sunspec-int",
    "sunspec-float",
    "sunspec-der",
    "sunspec-meter",
    "sma",
    "solaredge",
    "huawei-sun2000",
    "sungrow-sg",
    "growatt",
)


# --- the server -----------------------------------------------------------------------------


async def _no_device(
    _function_code: int,
    _start_address: int,
    _address: int,
    _count: int,
    _registers: list[int],
    _set_values: list[int] | list[bool] | None,
) -> ExcCodes:
    return ExcCodes.GATEWAY_NO_RESPONSE


def _spans(addresses: Iterable[int], max_hole: int = 64) -> list[tuple[int, int]]:
    """Contiguous (start, count) blocks covering ``addresses``, bridging small holes."""
    spans: list[list[int]] = []
    for address in sorted(addresses):
        if spans and address - spans[-1][1] <= max_hole:
            spans[-1][1] = address + 1
        elif not spans or address >= spans[-1][1]:
            spans.append([address, address + 1])
    return [(lo, hi - lo) for lo, hi in spans]


@dataclass
class _Unit:
    layout: Layout
    values: InverterValues | GridMeterValues
    pokes: dict[RegisterKind, dict[int, int]] = field(
        default_factory=lambda: {RegisterKind.HOLDING: {}, RegisterKind.INPUT: {}}
    )
    busy_replies: int = 0
    requests: int = 0


class SimulatedInverters:
    """A Modbus server simulating inverters, one per unit id.

    Example::

        with SimulatedInverters({1: layout_for("sunspec-int")}) as sim:
            sim.set_values(1, ac_power_w=2400, ac_energy_wh=1_234_000)
            ... read 127.0.0.1:sim.port unit 1 ...

    Parameters
    ----------
    units
        Layout per unit id.
    host, port
        TCP address to listen on (port 0: pick a free one; see :attr:`port`).
    serial_port
        Serve Modbus RTU on this serial device (e.g. one end of a socat pty pair) instead of TCP.
    baudrate
        Serial speed [baud].
    """

    def __init__(
        self,
        units: Mapping[int, Layout],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        serial_port: str | None = None,
        baudrate: int = 19200,
    ) -> None:
        if not units:
            raise ValueError("serve at least one unit id")
        for unit in units:
            if not 1 <= unit <= 247:
                raise ValueError(f"unit id must be 1..247, got {unit}")
        self._units = {
            unit: _Unit(layout, initial_values(layout)) for unit, layout in units.items()
        }
        self.host = host
        self._requested_port = port
        self.port = port
        self.serial_port = serial_port
        self.baudrate = baudrate
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> Self:
        """Start serving in a background thread; returns when the server listens."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="sim-inverters", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise RuntimeError(f"simulated inverter did not start within {timeout_s} s")
        if self._error is not None:
            raise RuntimeError(
                f"simulated inverter failed to start: {self._error}"
            ) from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._started.set()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _devices(self) -> list[SimDevice]:
        devices = []
        for unit_id, unit in self._units.items():
            image = unit.layout.encode(unit.values)
            blocks: list[list[SimData]] = []
            for kind in (RegisterKind.HOLDING, RegisterKind.INPUT):
                spans = _spans(image[kind]) or [(0, 1)]
                blocks.append(
                    [SimData(s, count=n, values=0, datatype=DataType.REGISTERS) for s, n in spans]
                )
            bits = [SimData(0, values=False, datatype=DataType.BITS)]
            devices.append(
                SimDevice(
                    id=unit_id,
                    simdata=(bits, list(bits), blocks[0], blocks[1]),
                    action=partial(self._action, unit_id),
                )
            )
        # every other unit id: answer like a Modbus TCP gateway with nothing behind that id
        # (exception 11); pymodbus would otherwise fail the request with exception 4
        devices.append(
            SimDevice(
                id=0,
                simdata=[SimData(0, count=0x10000, values=0, datatype=DataType.REGISTERS)],
                action=_no_device,
            )
        )
        return devices

    async def _action(
        self,
        unit_id: int,
        function_code: int,
        _start_address: int,
        _address: int,
        count: int,
        _registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is not None:
            return None  # our own updates
        unit = self._units[unit_id]
        unit.requests += 1
        if unit.busy_replies > 0:
            unit.busy_replies -= 1
            return ExcCodes.DEVICE_BUSY
        limit = unit.layout.max_read_registers
        if limit is not None and count > limit:
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    async def _serve(self) -> None:
        devices = self._devices()
        if self.serial_port is not None:
            self._server = ModbusSerialServer(
                devices,
                framer=FramerType.RTU,
                port=self.serial_port,
                baudrate=self.baudrate,
                ignore_missing_devices=True,
            )
        else:
            self._server = ModbusTcpServer(
                devices, address=(self.host, self.port), ignore_missing_devices=True
            )
        await self._server.serve_forever(background=True)
        if self.serial_port is None and self.port == 0:
            sockets: Sequence[Any] = getattr(self._server.transport, "sockets", None) or []
            if not sockets:
                raise RuntimeError("the Modbus server has no listening socket")
            self.port = int(sockets[0].getsockname()[1])  # the free port the OS picked
        for unit_id in self._units:
            await self._write_unit(unit_id)
        self._started.set()
        await self._server.serving

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop is not None and self._server is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):
                shutdown = self._server.shutdown()  # type: ignore[no-untyped-call]
                asyncio.run_coroutine_threadsafe(shutdown, self._loop).result(5)
            self._thread.join(5)
        self._thread = None

    def __enter__(self) -> Self:
        return self if self._thread is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- updates ------------------------------------------------------------------------------

    async def _write_unit(self, unit_id: int) -> None:
        assert self._server is not None
        unit = self._units[unit_id]
        image = unit.layout.encode(unit.values)
        for kind, registers in image.items():
            merged = {**registers, **{a: v for a, v in unit.pokes[kind].items() if a in registers}}
            for start, count in _spans(merged, max_hole=0):
                values = [merged[start + i] for i in range(count)]
                await self._server.async_setValues(unit_id, _FUNC_CODE[kind], start, values)

    def _apply(self, unit_id: int) -> None:
        if self._loop is None or not self._started.is_set():
            return  # written when the server starts
        asyncio.run_coroutine_threadsafe(self._write_unit(unit_id), self._loop).result(10)

    def _unit(self, unit: int | None) -> tuple[int, _Unit]:
        if unit is None:
            if len(self._units) != 1:
                raise ValueError("several units served: say which one")
            unit = next(iter(self._units))
        if unit not in self._units:
            raise ValueError(f"unit {unit} is not served (units: {sorted(self._units)})")
        return unit, self._units[unit]

    def values(self, unit: int | None = None) -> InverterValues:
        """A copy of the values an inverter unit currently serves."""
        values = self._unit(unit)[1].values
        if not isinstance(values, InverterValues):
            raise ValueError("that unit is a meter: use meter_values()")
        return replace(values)

    def meter_values(self, unit: int | None = None) -> GridMeterValues:
        """A copy of the values a meter unit currently serves."""
        values = self._unit(unit)[1].values
        if not isinstance(values, GridMeterValues):
            raise ValueError("that unit is an inverter: use values()")
        return replace(values)

    def set_values(self, unit: int | None = None, **changes: Any) -> None:
        """Change some values of a unit, e.g. ``set_values(1, ac_power_w=2500.0)``.

        ``dc`` takes a list of :class:`DcValues` (or (V, A, W) tuples); ``scale_factors`` takes a
        dict merged into a SunSpec integer layout's scale factors.
        """
        unit_id, state = self._unit(unit)
        with self._lock:
            scale_factors = changes.pop("scale_factors", None)
            if scale_factors is not None:
                if not isinstance(state.layout, SunSpecLayout | SunSpecMeterLayout):
                    raise ValueError(f"unit {unit_id} ({state.layout.name}) has no scale factors")
                state.layout.scale_factors.update(scale_factors)
            if "dc" in changes:
                changes["dc"] = [
                    d if isinstance(d, DcValues) else DcValues(*d) for d in changes["dc"]
                ]
            state.values = replace(state.values, **changes)
            self._apply(unit_id)

    def set_reading(self, reading: Reading, unit: int | None = None) -> None:
        """Serve exactly the values of ``reading`` (one call, applied atomically)."""
        unit_id, state = self._unit(unit)
        with self._lock:
            state.values = InverterValues.from_reading(reading)
            self._apply(unit_id)

    def poke(
        self,
        address: int,
        values: Sequence[int],
        *,
        unit: int | None = None,
        kind: RegisterKind = RegisterKind.HOLDING,
    ) -> None:
        """Override raw registers (glitches: 65535, NaN, sentinels) until :meth:`clear_pokes`."""
        unit_id, state = self._unit(unit)
        with self._lock:
            for i, value in enumerate(values):
                if not 0 <= value <= 0xFFFF:
                    raise ValueError(f"register value {value} is not 0..65535")
                state.pokes[kind][address + i] = value
            self._apply(unit_id)

    def clear_pokes(self, unit: int | None = None) -> None:
        unit_id, state = self._unit(unit)
        with self._lock:
            for table in state.pokes.values():
                table.clear()
            self._apply(unit_id)

    def set_image(self, registers: Mapping[int, int], unit: int | None = None) -> None:
        """Serve ``registers`` on a :class:`RegisterImageLayout` unit (the rest zeros)."""
        unit_id, state = self._unit(unit)
        if not isinstance(state.layout, RegisterImageLayout):
            raise ValueError(f"unit {unit_id} ({state.layout.name}) is not a register image")
        with self._lock:
            state.layout.registers = dict(registers)
            self._apply(unit_id)

    def reply_busy(self, count: int, unit: int | None = None) -> None:
        """Answer the next ``count`` reads with exception 6 (device busy)."""
        self._unit(unit)[1].busy_replies = count

    def request_count(self, unit: int | None = None) -> int:
        """Read requests the unit has received."""
        return self._unit(unit)[1].requests

    def layout(self, unit: int | None = None) -> Layout:
        return self._unit(unit)[1].layout
