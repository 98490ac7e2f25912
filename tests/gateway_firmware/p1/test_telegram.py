"""Decoding published P1 telegrams (tests/gateway_firmware/p1/published_telegrams.py names the
sources): each value checked against the telegram's own text, in Wh, W, V, A and m³."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dsmr_parser.parsers import TelegramParser

from gateway_firmware.p1.telegram import P1Error, decode_telegram
from tests.gateway_firmware.p1 import published_telegrams as published


def with_crc(text: str) -> str:
    """The telegram with its CRC16 recomputed (after an edit)."""
    body = text[: text.index("!") + 1]
    return f"{body}{TelegramParser.crc16(body):04X}\r\n"


def test_dsmr_5_of_the_companion_standard() -> None:
    t = decode_telegram(published.TELEGRAM_DSMR_502_STANDARD)
    assert t.protocol == "DSMR 5.0"
    # 1-0:1.8.1(123456.789*kWh) and so on: every register 123,456.789 kWh
    assert t.import_energy_t1_wh == t.import_energy_t2_wh == 123_456_789.0
    assert t.export_energy_t1_wh == t.export_energy_t2_wh == 123_456_789.0
    assert t.import_energy_wh == 246_913_578.0
    assert (t.tariff, t.import_power_w, t.export_power_w) == (2, 1193.0, 0.0)
    # 0-0:1.0.0(101209113020W): 9 December 2010 11:30:20 winter time (UTC+1)
    assert t.meter_ts == datetime(2010, 12, 9, 10, 30, 20, tzinfo=UTC)
    l1, l2, l3 = t.phases
    assert (l1.phase, l1.import_power_w, l1.export_power_w, l1.voltage_v, l1.current_a) == (
        "L1",
        1111.0,
        4444.0,
        220.1,
        1.0,
    )
    assert (l2.import_power_w, l2.export_power_w, l2.voltage_v) == (2222.0, 5555.0, 220.2)
    assert (l3.import_power_w, l3.export_power_w, l3.current_a) == (3333.0, 6666.0, 3.0)
    # "The register value of the Gas meter is 12785,123 m3 ... captured ... at 2010,
    # December 9th, at 11h25m00s Wintertime"
    assert t.gas is not None
    assert (t.gas.ts, t.gas.gas_m3) == (datetime(2010, 12, 9, 10, 25, tzinfo=UTC), 12785.123)


def test_dsmr_5_telegrams_of_the_parsers_suite() -> None:
    t = decode_telegram(published.TELEGRAM_V5)
    assert (t.protocol, t.header) == ("DSMR 5.0", "/ISk5\\2MT382-1000")
    assert (t.import_energy_t1_wh, t.import_energy_t2_wh) == (4426.0, 2399.0)
    assert (t.export_energy_t1_wh, t.export_energy_t2_wh) == (2444.0, 0.0)
    assert (t.import_power_w, t.export_power_w) == (244.0, 0.0)
    assert [p.voltage_v for p in t.phases] == [230.0, 230.0, 229.0]
    assert [p.current_a for p in t.phases] == [0.48, 0.44, 0.86]
    assert [p.import_power_w for p in t.phases] == [70.0, 32.0, 142.0]
    assert t.equipment_id == "4B384547303034303436333935353037"
    assert t.gas is not None and t.gas.gas_m3 == 0.107  # 0-1:24.2.1(170102161005W)(00000.107*m3)
    two = decode_telegram(published.TELEGRAM_V5_TWO_MBUS)
    # channel 1 is empty (700101010000W)(00000000); the gas meter is on channel 2
    assert two.gas is not None
    assert (two.gas.ts, two.gas.gas_m3) == (datetime(2020, 4, 26, 20, 30, 1, tzinfo=UTC), 246.138)
    assert (two.tariff, two.import_energy_wh) == (1, 2_130_115.0 + 245_467.0)


def test_dsmr_4_2() -> None:
    t = decode_telegram(published.TELEGRAM_V4_2)
    assert t.protocol == "DSMR 4.2"
    assert (t.import_energy_t1_wh, t.import_energy_t2_wh) == (1_581_123.0, 1_435_706.0)
    assert t.export_energy_wh == 0.0
    assert (t.import_power_w, t.tariff) == (2027.0, 2)
    assert [p.current_a for p in t.phases] == [0.0, 6.0, 2.0]
    assert [p.import_power_w for p in t.phases] == [170.0, 1247.0, 209.0]
    assert t.meter_ts == datetime(2016, 11, 13, 19, 57, 57, tzinfo=UTC)
    assert t.gas is not None and t.gas.gas_m3 == 981.443


@pytest.mark.parametrize("name", ["TELEGRAM_V2_2", "TELEGRAM_V3"])
def test_dsmr_2_2_and_3_without_crc(name: str) -> None:
    t = decode_telegram(getattr(published, name))
    assert t.protocol == "DSMR 2.2/3.0"
    assert t.meter_ts is None  # no 0-0:1.0.0 before DSMR 4
    per_register = {"TELEGRAM_V2_2": 1001.0, "TELEGRAM_V3": 12_345_678.0}[name]
    assert t.import_energy_t1_wh == t.export_energy_t2_wh == per_register
    assert t.gas is not None and t.gas.gas_m3 == 1.001  # the value on the line after 24.3.0


def test_belgian_emucs() -> None:
    t = decode_telegram(published.TELEGRAM_FLUVIUS_V171)
    assert t.protocol == "eMUCS 1.7"
    assert (t.import_energy_t1_wh, t.import_energy_t2_wh) == (34.0, 15_758.0)
    assert (t.export_energy_t1_wh, t.export_energy_t2_wh) == (0.0, 11.0)
    # gas on channel 1 (24.2.3, device type 3), water on channel 2 (device type 7) left out
    assert t.gas is not None
    assert (t.gas.ts, t.gas.gas_m3) == (datetime(2020, 5, 12, 11, 45, 58, tzinfo=UTC), 112.384)
    alt = decode_telegram(published.TELEGRAM_FLUVIUS_V171_ALT)
    assert alt.import_power_w == 338.0 and alt.gas is not None and alt.gas.gas_m3 == 92.287


def test_a_changed_character_fails_the_crc() -> None:
    damaged = published.TELEGRAM_V5.replace("1-0:1.8.1(000004.426", "1-0:1.8.1(000009.426")
    with pytest.raises(P1Error) as err:
        decode_telegram(damaged)
    assert err.value.reason == "crc_mismatch"
    # the same edit with a recomputed CRC is a valid telegram again
    assert decode_telegram(with_crc(damaged)).import_energy_t1_wh == 9426.0


def test_unknown_version_incomplete_and_garbage() -> None:
    v6 = with_crc(published.TELEGRAM_V5.replace("1-3:0.2.8(50)", "1-3:0.2.8(60)"))
    with pytest.raises(P1Error, match=r"unknown_version: P1 version line 1-3:0\.2\.8\(60\)"):
        decode_telegram(v6)
    no_export = with_crc(published.TELEGRAM_V5.replace("1-0:2.8.2(000000.000*kWh)\r\n", ""))
    with pytest.raises(P1Error, match="incomplete: a telegram without the energy registers"):
        decode_telegram(no_export)
    cut = published.TELEGRAM_V5.replace("!6EEE\r\n", "!\r\n")  # a DSMR 5 telegram needs its CRC
    with pytest.raises(
        P1Error, match=r"incomplete: a DSMR 5\.0 telegram without its four-digit CRC"
    ):
        decode_telegram(cut)
    with pytest.raises(P1Error, match="garbage"):
        decode_telegram("\x00\x7f1-0:1.8.1(0000")
