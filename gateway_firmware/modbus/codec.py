"""Register <-> value conversion shared by the SunSpec client, vendor profiles and the simulator.

Built on pymodbus's ``convert_from_registers`` / ``convert_to_registers``; adds the register
counts of SunSpec's types, their "not implemented" sentinels, and a lossless raw integer for
keeping what a device actually sent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pymodbus.client.mixin import ModbusClientMixin

WordOrder = Literal["big", "little"]

_DT = ModbusClientMixin.DATATYPE

#: Register count and pymodbus data type of each numeric type name.
NUMERIC_TYPES: dict[str, tuple[int, ModbusClientMixin.DATATYPE]] = {
    "uint16": (1, _DT.UINT16),
    "int16": (1, _DT.INT16),
    "acc16": (1, _DT.UINT16),
    "enum16": (1, _DT.UINT16),
    "bitfield16": (1, _DT.UINT16),
    "count": (1, _DT.UINT16),
    "sunssf": (1, _DT.INT16),
    "pad": (1, _DT.UINT16),
    "uint32": (2, _DT.UINT32),
    "int32": (2, _DT.INT32),
    "acc32": (2, _DT.UINT32),
    "enum32": (2, _DT.UINT32),
    "bitfield32": (2, _DT.UINT32),
    "ipaddr": (2, _DT.UINT32),
    "float32": (2, _DT.FLOAT32),
    "float64": (4, _DT.FLOAT64),
    "uint64": (4, _DT.UINT64),
    "int64": (4, _DT.INT64),
    "acc64": (4, _DT.UINT64),
}

#: SunSpec "not implemented" values as unsigned raw integers (pysunspec2 ``mb.py``).
SUNSPEC_NOT_IMPLEMENTED: dict[str, int] = {
    "int16": 0x8000,
    "sunssf": 0x8000,
    "uint16": 0xFFFF,
    "enum16": 0xFFFF,
    "bitfield16": 0xFFFF,
    "count": 0xFFFF,
    "acc16": 0,
    "acc32": 0,
    "acc64": 0,
    "int32": 0x80000000,
    "uint32": 0xFFFFFFFF,
    "enum32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
    "ipaddr": 0,
    "int64": 0x8000000000000000,
    "uint64": 0xFFFFFFFFFFFFFFFF,
}


def register_count(type_name: str, size: int | None = None) -> int:
    """Registers a value of ``type_name`` occupies (``size`` for strings) [registers]."""
    if type_name == "string":
        if not size or size < 1:
            raise ValueError("a string needs a size in registers")
        return size
    try:
        return NUMERIC_TYPES[type_name][0]
    except KeyError:
        raise ValueError(f"unknown register type {type_name!r}") from None


def raw_int(registers: Sequence[int], word_order: WordOrder = "big") -> int:
    """The registers as one unsigned integer, most significant word first after ordering."""
    words = list(registers) if word_order == "big" else list(reversed(registers))
    value = 0
    for word in words:
        value = (value << 16) | (word & 0xFFFF)
    return value


def decode_number(
    registers: Sequence[int], type_name: str, word_order: WordOrder = "big"
) -> int | float:
    """Decode a numeric value (int for integer types, float for float32 and float64)."""
    count, data_type = NUMERIC_TYPES[type_name]
    if len(registers) != count:
        raise ValueError(f"{type_name} needs {count} registers, got {len(registers)}")
    value = ModbusClientMixin.convert_from_registers(
        list(registers), data_type=data_type, word_order=word_order
    )
    if not isinstance(value, int | float):
        raise TypeError(f"unexpected {type(value).__name__} decoding {type_name}")
    if data_type is _DT.FLOAT32 and isinstance(value, float) and math.isfinite(value):
        # a float32 carries about 7 significant digits; drop the widening noise
        return float(f"{value:.7g}")
    return value


def decode_string(registers: Sequence[int]) -> str | None:
    """Decode a NUL-padded string; None when it is all NUL (SunSpec "not implemented")."""
    data = b"".join(int(r & 0xFFFF).to_bytes(2, "big") for r in registers)
    text = data.split(b"\x00", 1)[0].decode("utf-8", errors="replace").strip()
    return text or None


def is_sunspec_not_implemented(registers: Sequence[int], type_name: str) -> bool:
    """True when the registers hold SunSpec's "not implemented" value for the type."""
    if type_name == "string":
        return all(r == 0 for r in registers)
    if type_name in ("float32", "float64"):
        return math.isnan(decode_number(registers, type_name))
    if type_name not in SUNSPEC_NOT_IMPLEMENTED:
        return False  # pad: no sentinel
    return raw_int(registers) == SUNSPEC_NOT_IMPLEMENTED[type_name]


def encode_number(value: int | float, type_name: str, word_order: WordOrder = "big") -> list[int]:
    """Registers for a numeric value (integers are range-checked by pymodbus)."""
    _, data_type = NUMERIC_TYPES[type_name]
    value = float(value) if data_type in (_DT.FLOAT32, _DT.FLOAT64) else int(value)
    return ModbusClientMixin.convert_to_registers(value, data_type=data_type, word_order=word_order)


def encode_string(text: str, size: int) -> list[int]:
    """A string NUL-padded to ``size`` registers (truncated when longer)."""
    data = text.encode("utf-8")[: size * 2].ljust(size * 2, b"\x00")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
