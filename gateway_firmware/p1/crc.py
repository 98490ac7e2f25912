"""The CRC16 that protects a DSMR 4/5 and eMUCS telegram (P1 Companion Standard 5.0.2, 6.12).

CRC-16/ARC: polynomial x^16 + x^15 + x^2 + 1 (0x8005, processed least significant bit first
as 0xA001), initial value 0, no final XOR, over every character from ``/`` to ``!``
inclusive; the telegram carries it as four hexadecimal digits after the ``!``.

dsmr-parser checks the same CRC, but character by character through ``ctypes`` and hex
strings: 0.3 ms of the 0.66 ms a DSMR 5 telegram takes to decode here, once a second for as
long as the gateway runs. This table-driven version gives the same value in a tenth of the
time; tests/gateway_firmware/p1/test_crc.py checks it against dsmr-parser's own and the
published telegrams' CRCs.
"""

from __future__ import annotations

__all__ = ["crc16_arc", "telegram_crc"]


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()
_HEX = frozenset("0123456789abcdefABCDEF")


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC of ``data`` (check value of ``b"123456789"``: 0xBB3D)."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def telegram_crc(text: str) -> tuple[int, int] | None:
    """The CRC ``(calculated, expected)`` of a telegram ``/ ... !XXXX``, or ``None`` when it has no
    four-digit CRC after its ``!`` (cut off, or a DSMR 2.2/3.0 telegram)."""
    end = text.rfind("!")
    start = text.find("/")
    digits = text[end + 1 : end + 5]
    if start < 0 or end < start or len(digits) != 4 or not _HEX.issuperset(digits):
        return None
    expected = int(digits, 16)
    return crc16_arc(text[start : end + 1].encode("latin-1")), expected
