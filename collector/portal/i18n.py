"""Portal texts in Dutch (default) and English, from ``data/messages.yaml``."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"


@lru_cache(maxsize=1)
def messages() -> dict[str, dict[str, str]]:
    """Every message key with its text per language; refuses a file missing a language."""
    text = resources.files("collector.portal").joinpath("data/messages.yaml").read_text("utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)
    out: dict[str, dict[str, str]] = {}
    for key, value in raw.items():
        if not isinstance(value, dict) or set(value) != set(LANGUAGES):
            raise ValueError(f"messages.yaml: {key!r} needs exactly the languages {LANGUAGES}")
        out[str(key)] = {lang: str(value[lang]) for lang in LANGUAGES}
    return out


def translate(key: str, language: str, **values: Any) -> str:
    """The text of ``key`` in ``language`` with ``{name}`` placeholders filled in."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    entry = messages().get(key)
    if entry is None:
        raise KeyError(f"no portal message {key!r}")
    text = entry[lang]
    return text.format(**values) if values else text


def month_names(language: str) -> list[str]:
    return translate("months", language).split(",")


def format_kwh(value: float | None, language: str, decimals: int = 1) -> str:
    """``1234.5`` as ``1.234,5 kWh`` (Dutch) or ``1,234.5 kWh`` (English)."""
    if value is None:
        return "–"
    text = f"{value:,.{decimals}f}"
    if language == "nl":
        text = text.replace(",", "_").replace(".", ",").replace("_", ".")
    return f"{text} kWh"


def format_number(value: float | Decimal, language: str, decimals: int = 2) -> str:
    """``1234.5`` as ``1.234,50`` (Dutch) or ``1,234.50`` (English); Decimals stay exact."""
    text = f"{value:,.{decimals}f}"
    if language == "nl":
        text = text.replace(",", "_").replace(".", ",").replace("_", ".")
    return text
