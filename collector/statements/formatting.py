"""Numbers, money and dates for people, in Dutch (``1.234,56``; "31 oktober 2026") or English.

Thin, typed wrappers around babel's CLDR formatting; decimals stay exact (babel formats
:class:`~decimal.Decimal` without going through float).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from babel.dates import format_date
from babel.numbers import format_decimal

Language = Literal["nl", "en"]

LOCALES: dict[str, str] = {"nl": "nl_NL", "en": "en_GB"}


def locale_of(language: str) -> str:
    """The babel locale of a statement language (``nl`` or ``en``)."""
    try:
        return LOCALES[language]
    except KeyError:
        raise ValueError(f"language {language!r} is not supported: use nl or en") from None


def amount(value_eur: Decimal, language: str) -> str:
    """A money amount with two decimals and grouping, no currency sign: ``1.234,56``.

    Parameters
    ----------
    value_eur
        The amount [EUR].
    """
    return format_decimal(value_eur, format="#,##0.00", locale=locale_of(language))


def euro(value_eur: Decimal, language: str) -> str:
    """A money amount with the euro sign: ``€ 1.234,56`` / ``€1,234.56``."""
    sign = "-" if value_eur < 0 else ""
    sep = " " if language == "nl" else ""
    return f"{sign}€{sep}{amount(abs(value_eur), language)}"


def unit_price(value_eur: Decimal, language: str) -> str:
    """A unit price with four decimals, as the tariff rounds it: ``0,0950``.

    Parameters
    ----------
    value_eur
        The price per unit [EUR].
    """
    return format_decimal(value_eur, format="#,##0.0000", locale=locale_of(language))


def quantity(value: Decimal, language: str, *, decimals: int = 3) -> str:
    """A quantity with up to ``decimals`` decimals (kWh to 1 Wh, days as integers)."""
    pattern = "#,##0" + ("." + "#" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=locale_of(language))


def kwh(value_kwh: Decimal, language: str) -> str:
    """Energy with one decimal: ``1.234,5``.

    Parameters
    ----------
    value_kwh
        Energy [kWh].
    """
    return format_decimal(value_kwh, format="#,##0.0", locale=locale_of(language))


def meter(value_kwh: Decimal, language: str) -> str:
    """A meter reading with three decimals (1 Wh): ``4.312,870`` [kWh]."""
    return format_decimal(value_kwh, format="#,##0.000", locale=locale_of(language))


def percent(fraction: Decimal, language: str) -> str:
    """A fraction as a percentage with one decimal: ``0.9876`` → ``98,8%``."""
    return format_decimal(fraction * 100, format="0.0", locale=locale_of(language)) + "%"


def rate(fraction: Decimal, language: str) -> str:
    """A VAT rate as a percentage with only the decimals it needs: ``0.21`` → ``21%``."""
    return format_decimal(fraction * 100, format="0.##", locale=locale_of(language)) + "%"


def long_date(day: date, language: str) -> str:
    """``31 oktober 2026`` / ``31 October 2026``."""
    return format_date(day, format="d MMMM y", locale=locale_of(language))


def month_name(period: str, language: str) -> str:
    """``2026-10`` → ``oktober 2026`` / ``October 2026``."""
    year, month = (int(part) for part in period.split("-"))
    return format_date(date(year, month, 1), format="LLLL y", locale=locale_of(language))


def short_date(day: date, language: str) -> str:
    """``31-10-2026`` / ``31/10/2026``."""
    return format_date(
        day, format="dd-MM-y" if language == "nl" else "dd/MM/y", locale=locale_of(language)
    )
