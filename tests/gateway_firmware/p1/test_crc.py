"""The telegram CRC against outside references: the CRC catalogue's check value, the CRCs
printed in the published telegrams (dsmr-parser's test suite, see published_telegrams.py),
and dsmr-parser's own implementation."""

from __future__ import annotations

import pytest
from dsmr_parser.parsers import TelegramParser

from gateway_firmware.p1.crc import crc16_arc, telegram_crc
from tests.gateway_firmware.p1 import published_telegrams as published

WITH_PUBLISHED_CRC = [
    "TELEGRAM_V4_2",
    "TELEGRAM_V5",
    "TELEGRAM_V5_TWO_MBUS",
    "TELEGRAM_FLUVIUS_V171",
    "TELEGRAM_FLUVIUS_V171_ALT",
]


def test_check_value_of_the_crc_catalogue() -> None:
    # Greg Cook's CRC catalogue (reveng), CRC-16/ARC: check=0xbb3d over "123456789"
    assert crc16_arc(b"123456789") == 0xBB3D
    assert crc16_arc(b"") == 0


@pytest.mark.parametrize("name", WITH_PUBLISHED_CRC)
def test_the_published_crcs_match(name: str) -> None:
    text = getattr(published, name)
    assert telegram_crc(text) is not None
    calculated, expected = telegram_crc(text)  # type: ignore[misc]
    assert calculated == expected
    body = text[text.find("/") : text.rfind("!") + 1]
    assert calculated == TelegramParser.crc16(body)  # dsmr-parser's own


@pytest.mark.parametrize("name", WITH_PUBLISHED_CRC)
def test_one_changed_character_is_caught(name: str) -> None:
    text = getattr(published, name)
    i = text.index("kWh)") - 2
    changed = text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1 :]
    calculated, expected = telegram_crc(changed)  # type: ignore[misc]
    assert calculated != expected


def test_telegrams_without_a_crc() -> None:
    body = published.TELEGRAM_V5[: published.TELEGRAM_V5.rfind("!")]
    assert telegram_crc(published.TELEGRAM_V2_2) is None  # DSMR 2.2 has none
    assert telegram_crc(body + "!12\r\n") is None  # cut off
    assert telegram_crc(body + "!12G4\r\n") is None  # not hex
    assert telegram_crc("no telegram at all") is None
