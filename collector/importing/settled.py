"""Imported energy of months already settled: never into an issued statement.

An issued settlement run is never rewritten (:mod:`collector.settlement.ledger`). Readings
imported for a month that has an issued run are stored like any late reading; the next
``zonnewijk settle`` re-measures the issued months within ``--correct-months`` and settles the
difference as correction lines (``docs/settlement.md``, *Late readings and corrections*). The
import says which issued months it touched and how far back the next run must look.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from collector.settlement.ledger import issued_periods
from collector.settlement.periods import local_day_of


def months_between(first: datetime, last: datetime) -> list[str]:
    """The Europe/Amsterdam months ``YYYY-MM`` from the one of ``first`` to that of ``last``."""
    a, b = local_day_of(first), local_day_of(last)
    out = []
    year, month = a.year, a.month
    while (year, month) <= (b.year, b.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


@dataclass(frozen=True)
class SettledCheck:
    """Issued months an import touched, and the ``--correct-months`` that reaches them."""

    issued: list[str]
    #: ``--correct-months`` the next run (of the month after the newest issued) needs.
    correct_months: int | None

    def advice(self) -> str | None:
        if not self.issued:
            return None
        return (
            f"readings fall in issued months {', '.join(self.issued)}: their statements stay as "
            "issued; the next `zonnewijk settle` settles the difference as correction lines "
            f"(with --correct-months {self.correct_months} or more)"
        )


def check_settled(
    session: Session, devices: Mapping[str, tuple[datetime, datetime]]
) -> SettledCheck:
    """Which issued months the imported readings fall in (per device's first..last)."""
    touched: set[str] = set()
    for first, last in devices.values():
        touched.update(months_between(first, last))
    issued = sorted(touched & set(issued_periods(session)))
    return SettledCheck(issued, _months_back(issued, issued_periods(session)))


def _months_back(touched: Iterable[str], issued: Iterable[str]) -> int | None:
    touched = sorted(touched)
    issued = sorted(issued)
    if not touched or not issued:
        return None
    newest = date.fromisoformat(issued[-1] + "-01")
    oldest = date.fromisoformat(touched[0] + "-01")
    # the next run settles the month after the newest issued one; it reaches back this far
    return (newest.year - oldest.year) * 12 + (newest.month - oldest.month) + 1
