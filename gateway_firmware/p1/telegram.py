"""One P1 telegram, decoded with dsmr-parser into values with units in their names.

A telegram runs from ``/`` (the meter's identification line) to ``!`` and, from DSMR 4 on, a
CRC16 of everything in between. Which DSMR version sent it decides how it is parsed:

========================= =================================== ============ ==============
line                      protocol                            CRC          dsmr-parser spec
========================= =================================== ============ ==============
``1-3:0.2.8(50)``         DSMR 5.0 (5.0.2: 1 telegram per s)  required     ``V5``
``1-3:0.2.8(40)``/``(42)`` DSMR 4.0 / 4.2 (one per 10 s)       required     ``V4``
``0-0:96.1.4(50217)``     Belgian eMUCS (Fluvius) 1.7         required     ``BELGIUM_FLUVIUS``
neither, no CRC           DSMR 2.2/3.0 (9600 baud 7E1)       none         ``V2_2``
========================= =================================== ============ ==============

:func:`decode_telegram` returns a :class:`P1Telegram` or raises :class:`P1Error` with one of
:data:`P1_REASONS`; it never returns a telegram whose CRC did not match or that lacks the
energy registers. Energy is converted to Wh and power to W from the unit the meter printed
(``kWh``/``Wh``, ``kW``/``W``), in :class:`~decimal.Decimal` until the last step.

The equipment id (``0-0:96.1.1``) is personal data: it is kept here only for hashing
(:mod:`gateway_firmware.p1.identity`) and never leaves the gateway.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dsmr_parser import telegram_specifications
from dsmr_parser.exceptions import ParseError
from dsmr_parser.parsers import TelegramParser

from gateway_firmware.p1.crc import telegram_crc

__all__ = [
    "P1_REASONS",
    "GasSample",
    "P1Error",
    "P1Telegram",
    "PhaseSample",
    "decode_telegram",
]

# dsmr-parser logs every line it cannot parse at ERROR, with a traceback, once a second on a
# DSMR 5 meter; what matters reaches our status as a reason instead.
logging.getLogger("dsmr_parser").setLevel(logging.CRITICAL)

#: Why a telegram (or the line) gave no reading.
P1_REASONS: dict[str, str] = {
    "no_data": "nothing arrives on the P1 port: cable unplugged, wrong device, or the meter's "
    "P1 port is not enabled",
    "garbage": "bytes arrive but no telegram: wrong baud rate or a bad cable",
    "incomplete": "a telegram without its end, its CRC or the energy registers",
    "crc_mismatch": "the telegram's CRC16 does not match its contents: a transmission error",
    "unknown_version": "a P1 version this gateway does not decode",
    "implausible": "values that cannot be true (a counter that fell or jumped)",
}

_VERSION_LINE = re.compile(r"^1-3:0\.2\.8\((\d{2})\)\r?$", re.MULTILINE)
_BELGIAN_LINE = re.compile(r"^0-0:96\.1\.4\((\d{5})\)\r?$", re.MULTILINE)
_CRC_TAIL = re.compile(r"!([0-9A-Fa-f]{1,4})?\r?\n?$")

# One parser per specification: they compile their regular expressions once.
_PARSERS: dict[str, TelegramParser] = {}

#: The objects of dsmr-parser's specifications that a reading uses. The parser runs one
#: regular expression per object over the whole telegram, so leaving out the others (power
#: failure log, voltage sags, text messages...) halves the time per telegram; the CRC is
#: still checked over the whole telegram (gateway_firmware.p1.crc).
USED_OBJECTS = frozenset(
    {
        "P1_MESSAGE_TIMESTAMP",
        "EQUIPMENT_IDENTIFIER",
        "BELGIUM_EQUIPMENT_IDENTIFIER",
        "ELECTRICITY_USED_TARIFF_1",
        "ELECTRICITY_USED_TARIFF_2",
        "ELECTRICITY_DELIVERED_TARIFF_1",
        "ELECTRICITY_DELIVERED_TARIFF_2",
        "ELECTRICITY_ACTIVE_TARIFF",
        "CURRENT_ELECTRICITY_USAGE",
        "CURRENT_ELECTRICITY_DELIVERY",
        *(f"INSTANTANEOUS_ACTIVE_POWER_L{n}_POSITIVE" for n in (1, 2, 3)),
        *(f"INSTANTANEOUS_ACTIVE_POWER_L{n}_NEGATIVE" for n in (1, 2, 3)),
        *(f"INSTANTANEOUS_VOLTAGE_L{n}" for n in (1, 2, 3)),
        *(f"INSTANTANEOUS_CURRENT_L{n}" for n in (1, 2, 3)),
        "MBUS_DEVICE_TYPE",
        "DEVICE_TYPE",
        "MBUS_METER_READING",
        "HOURLY_GAS_METER_READING",
        "GAS_METER_READING",
    }
)


def _parser(name: str) -> TelegramParser:
    parser = _PARSERS.get(name)
    if parser is None:
        spec = dict(getattr(telegram_specifications, name))
        spec["objects"] = [o for o in spec["objects"] if o["value_name"] in USED_OBJECTS]
        # the CRC is checked before parsing, by gateway_firmware.p1.crc (ten times faster)
        parser = TelegramParser(spec, apply_checksum_validation=False)
        _PARSERS[name] = parser
    return parser


class P1Error(Exception):
    """A telegram that gives no reading; ``reason`` is one of :data:`P1_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in P1_REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PhaseSample:
    """One phase in one telegram (``21.7.0``/``22.7.0`` L1 power, ``32.7.0`` voltage...)."""

    phase: str
    import_power_w: float | None = None
    export_power_w: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None


@dataclass(frozen=True)
class GasSample:
    """The gas meter's last value (M-Bus, ``0-n:24.2.1``), at the gas meter's own time."""

    ts: datetime
    gas_m3: float


@dataclass(frozen=True)
class P1Telegram:
    """The values of one telegram [Wh, W, V, A, m³]."""

    protocol: str
    header: str
    meter_ts: datetime | None
    equipment_id: str | None
    import_energy_t1_wh: float
    import_energy_t2_wh: float
    export_energy_t1_wh: float
    export_energy_t2_wh: float
    tariff: int | None
    import_power_w: float | None
    export_power_w: float | None
    phases: tuple[PhaseSample, ...] = ()
    gas: GasSample | None = None
    #: Values present as the meter's "nothing here" placeholder (e.g. a 1970 gas reading).
    sentinels: tuple[str, ...] = ()

    @property
    def import_energy_wh(self) -> float:
        """Lifetime import, both tariffs [Wh]."""
        return self.import_energy_t1_wh + self.import_energy_t2_wh

    @property
    def export_energy_wh(self) -> float:
        """Lifetime export, both tariffs [Wh]."""
        return self.export_energy_t1_wh + self.export_energy_t2_wh


def detect_protocol(text: str) -> tuple[str, str]:
    """The protocol name and dsmr-parser specification of a framed telegram.

    Raises :class:`P1Error` (``unknown_version``) for a version line we do not decode.
    """
    belgian = _BELGIAN_LINE.search(text)
    if belgian:
        digits = belgian.group(1)
        return f"eMUCS {digits[3]}.{digits[4]}", "BELGIUM_FLUVIUS"
    version = _VERSION_LINE.search(text)
    if version:
        code = version.group(1)
        if code[0] == "5":
            return f"DSMR 5.{code[1]}", "V5"
        if code[0] == "4":
            return f"DSMR 4.{code[1]}", "V4"
        raise P1Error(
            "unknown_version",
            f"P1 version line 1-3:0.2.8({code}): this gateway decodes DSMR 2.2-5 and eMUCS",
        )
    tail = _CRC_TAIL.search(text)
    if tail and tail.group(1):
        raise P1Error(
            "unknown_version",
            "a telegram with a CRC but no version line (1-3:0.2.8 or 0-0:96.1.4)",
        )
    return "DSMR 2.2/3.0", "V2_2"


def _value(obj: Any) -> Any:
    return None if obj is None else getattr(obj, "value", None)


_ENERGY_UNITS = {"kWh": Decimal(1000), "Wh": Decimal(1)}
_POWER_UNITS = {"kW": Decimal(1000), "W": Decimal(1)}


def _scaled(obj: Any, units: dict[str, Decimal], name: str) -> float | None:
    """A cosem object's value in Wh or W, from the unit the meter printed."""
    value = _value(obj)
    if value is None:
        return None
    unit = getattr(obj, "unit", None)
    factor = units.get(str(unit))
    if factor is None:
        raise P1Error("incomplete", f"{name} has the unit {unit!r}, expected one of {list(units)}")
    return float(Decimal(value) * factor)


def _plain(obj: Any) -> float | None:
    value = _value(obj)
    return None if value is None else float(Decimal(value))


_PHASE_OBJECTS = {
    "L1": ("L1_POSITIVE", "L1_NEGATIVE", "VOLTAGE_L1", "CURRENT_L1"),
    "L2": ("L2_POSITIVE", "L2_NEGATIVE", "VOLTAGE_L2", "CURRENT_L2"),
    "L3": ("L3_POSITIVE", "L3_NEGATIVE", "VOLTAGE_L3", "CURRENT_L3"),
}


def _phases(telegram: Any) -> tuple[PhaseSample, ...]:
    phases = []
    for phase, (plus, minus, volts, amps) in _PHASE_OBJECTS.items():
        sample = PhaseSample(
            phase=phase,
            import_power_w=_scaled(
                getattr(telegram, f"INSTANTANEOUS_ACTIVE_POWER_{plus}", None), _POWER_UNITS, phase
            ),
            export_power_w=_scaled(
                getattr(telegram, f"INSTANTANEOUS_ACTIVE_POWER_{minus}", None), _POWER_UNITS, phase
            ),
            voltage_v=_plain(getattr(telegram, f"INSTANTANEOUS_{volts}", None)),
            current_a=_plain(getattr(telegram, f"INSTANTANEOUS_{amps}", None)),
        )
        if any(
            v is not None for v in (sample.import_power_w, sample.export_power_w, sample.voltage_v)
        ):
            phases.append(sample)
    return tuple(phases)


#: M-Bus device type of a gas meter (EN 13757-3).
_GAS_DEVICE_TYPE = 3
#: Meters print a reading dated before this for an empty M-Bus channel ("700101010000W").
_NO_READING_BEFORE = datetime(2000, 1, 1, tzinfo=UTC)


def _gas(telegram: Any) -> tuple[GasSample | None, bool]:
    """The gas meter's reading, and whether a channel held the "no reading" placeholder."""
    placeholder = False
    for device in getattr(telegram, "MBUS_DEVICES", ()) or ():
        fields = dict(device)
        kind = _value(fields.get("MBUS_DEVICE_TYPE") or fields.get("DEVICE_TYPE"))
        reading = (
            fields.get("MBUS_METER_READING")
            or fields.get("HOURLY_GAS_METER_READING")
            or fields.get("GAS_METER_READING")
        )
        if reading is None or kind is None or int(kind) != _GAS_DEVICE_TYPE:
            continue
        ts, value, unit = reading.datetime, reading.value, reading.unit
        if not isinstance(ts, datetime) or ts < _NO_READING_BEFORE or value is None:
            placeholder = True
            continue
        if str(unit).lower() != "m3":
            continue
        return GasSample(ts=ts.astimezone(UTC), gas_m3=float(Decimal(value))), placeholder
    return None, placeholder


def _tariff(telegram: Any) -> int | None:
    value = _value(getattr(telegram, "ELECTRICITY_ACTIVE_TARIFF", None))
    try:
        tariff = int(str(value))
    except ValueError:
        return None
    return tariff if tariff in (1, 2) else None


def _check_crc(text: str, protocol: str) -> None:
    crc = telegram_crc(text)
    if crc is None:
        raise P1Error(
            "incomplete", f"a {protocol} telegram without its four-digit CRC after the '!'"
        )
    calculated, expected = crc
    if calculated != expected:
        raise P1Error(
            "crc_mismatch",
            f"the telegram says CRC {expected:04X}, its contents give {calculated:04X}: "
            "a transmission error",
        )


def decode_telegram(text: str) -> P1Telegram:
    """Decode one framed telegram (``/`` ... ``!CRC``, lines ending in CR LF).

    Raises :class:`P1Error` when the telegram gives no reading: its CRC does not match
    (``crc_mismatch``), it is cut off or lacks the energy registers (``incomplete``), it
    does not start like a telegram (``garbage``) or its version is unknown
    (``unknown_version``).
    """
    start = text.find("/")
    if start < 0 or "!" not in text[start:]:
        raise P1Error("garbage", "no '/' ... '!' telegram in the data")
    text = text[start:]
    header = text.split("\r\n", 1)[0].split("\n", 1)[0].strip()
    protocol, spec = detect_protocol(text)
    parser = _parser(spec)
    if parser.telegram_specification["checksum_support"]:
        _check_crc(text, protocol)
    try:
        telegram = parser.parse(text)
    except ParseError as exc:
        raise P1Error("incomplete", str(exc)) from None
    except (ValueError, TypeError, ArithmeticError, RuntimeError) as exc:
        raise P1Error("garbage", f"{type(exc).__name__}: {exc}") from None
    counters = {}
    for name, obis in (
        ("import_energy_t1_wh", "ELECTRICITY_USED_TARIFF_1"),
        ("import_energy_t2_wh", "ELECTRICITY_USED_TARIFF_2"),
        ("export_energy_t1_wh", "ELECTRICITY_DELIVERED_TARIFF_1"),
        ("export_energy_t2_wh", "ELECTRICITY_DELIVERED_TARIFF_2"),
    ):
        value = _scaled(getattr(telegram, obis, None), _ENERGY_UNITS, name)
        if value is None:
            raise P1Error(
                "incomplete",
                "a telegram without the energy registers 1-0:1.8.1, 1.8.2, 2.8.1 and 2.8.2",
            )
        counters[name] = value
    equipment = _value(
        getattr(telegram, "EQUIPMENT_IDENTIFIER", None)
        or getattr(telegram, "BELGIUM_EQUIPMENT_IDENTIFIER", None)
    )
    meter_ts = _value(getattr(telegram, "P1_MESSAGE_TIMESTAMP", None))
    gas, placeholder = _gas(telegram)
    return P1Telegram(
        protocol=protocol,
        header=header,
        meter_ts=meter_ts if isinstance(meter_ts, datetime) else None,
        equipment_id=str(equipment) if equipment else None,
        tariff=_tariff(telegram),
        import_power_w=_scaled(
            getattr(telegram, "CURRENT_ELECTRICITY_USAGE", None), _POWER_UNITS, "1-0:1.7.0"
        ),
        export_power_w=_scaled(
            getattr(telegram, "CURRENT_ELECTRICITY_DELIVERY", None), _POWER_UNITS, "1-0:2.7.0"
        ),
        phases=_phases(telegram),
        gas=gas,
        sentinels=("gas",) if placeholder and gas is None else (),
        **counters,
    )
