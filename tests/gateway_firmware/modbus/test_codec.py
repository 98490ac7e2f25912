"""Register conversions: round trips, word order, sentinels, scale factors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_firmware.modbus.codec import (
    decode_number,
    decode_string,
    encode_number,
    encode_string,
    is_sunspec_not_implemented,
    raw_int,
)
from gateway_firmware.sunspec.decode import decode_point
from gateway_firmware.sunspec.definitions import PointDef
from gateway_firmware.sunspec.layout import PlacedPoint

W = PlacedPoint("W", 100, PointDef("W", "int16", 1, sf="W_SF"), sf_path="W_SF")
W_SF = PlacedPoint("W_SF", 101, PointDef("W_SF", "sunssf", 1))

RANGES = {
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFFFFFF),
    "int32": (-(2**31), 2**31 - 1),
}


@pytest.mark.parametrize("type_name", sorted(RANGES))
@pytest.mark.parametrize("word_order", ["big", "little"])
def test_integer_round_trip(type_name: str, word_order: str) -> None:
    lo, hi = RANGES[type_name]

    @given(st.integers(lo, hi))
    def check(value: int) -> None:
        regs = encode_number(value, type_name, word_order)  # type: ignore[arg-type]
        assert decode_number(regs, type_name, word_order) == value  # type: ignore[arg-type]

    check()


def test_word_order() -> None:
    assert encode_number(0x12345678, "uint32", "big") == [0x1234, 0x5678]
    assert encode_number(0x12345678, "uint32", "little") == [0x5678, 0x1234]
    assert raw_int([0x5678, 0x1234], "little") == 0x12345678


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_keeps_seven_digits(value: float) -> None:
    decoded = decode_number(encode_number(value, "float32"), "float32")
    assert decoded == pytest.approx(value, rel=1e-6, abs=1e-38)


def test_sentinels() -> None:
    assert is_sunspec_not_implemented([0x8000], "int16")
    assert is_sunspec_not_implemented([0xFFFF], "uint16")
    assert is_sunspec_not_implemented([0, 0], "acc32")
    assert is_sunspec_not_implemented([0xFFFF, 0xFFFF], "bitfield32")
    assert is_sunspec_not_implemented(encode_number(math.nan, "float32"), "float32")
    assert not is_sunspec_not_implemented([0x7FFF], "int16")
    assert not is_sunspec_not_implemented([0, 1], "acc32")


def test_strings() -> None:
    assert decode_string(encode_string("SE5000H", 16)) == "SE5000H"
    assert decode_string([0] * 8) is None
    assert len(encode_string("x" * 40, 8)) == 8


@given(st.integers(-32767, 32767), st.integers(-10, 10))
def test_scale_factor_applied(raw: int, sf: int) -> None:
    registers = {100: raw & 0xFFFF, 101: sf & 0xFFFF}
    value = decode_point(registers, W, W_SF)
    assert value.value == pytest.approx(raw * 10.0**sf)
    assert value.scale_factor == sf


@pytest.mark.parametrize("sf", [11, -11, 0x7FFF])
def test_scale_factor_out_of_range(sf: int) -> None:
    registers = {100: 1234, 101: sf & 0xFFFF}
    value = decode_point(registers, W, W_SF)
    assert value.value is None and value.bad_scale_factor and value.raw == 1234
