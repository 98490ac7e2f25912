"""Calendar periods in Europe/Amsterdam time, as UTC instants.

Days, months and contract years are local calendar periods; their boundaries are local
midnights converted to UTC, so a day is 23 hours long on the last Sunday of March and 25 hours
on the last Sunday of October. A period is the half-open interval ``[start, end)``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A period cannot be built from what was given; the message says why."""


def local_midnight_utc(day: date) -> datetime:
    """The UTC instant at which ``day`` begins in Europe/Amsterdam."""
    return datetime.combine(day, time(0), tzinfo=AMSTERDAM).astimezone(UTC)


def local_day_of(instant: datetime) -> date:
    """The Europe/Amsterdam calendar day an aware instant falls on."""
    if instant.tzinfo is None:
        raise PeriodError(f"{instant.isoformat()} has no time zone; give UTC instants")
    return instant.astimezone(AMSTERDAM).date()


@dataclass(frozen=True, order=True)
class Period:
    """Local calendar days ``[start_day, end_day)`` and their UTC boundaries."""

    start_day: date
    end_day: date

    def __post_init__(self) -> None:
        if self.end_day <= self.start_day:
            raise PeriodError(f"period {self.start_day} to {self.end_day} is empty")

    @property
    def start_utc(self) -> datetime:
        return local_midnight_utc(self.start_day)

    @property
    def end_utc(self) -> datetime:
        return local_midnight_utc(self.end_day)

    @property
    def days(self) -> int:
        return (self.end_day - self.start_day).days

    @property
    def hours(self) -> float:
        """Length in hours (a March month has 743, an October month 745)."""
        return (self.end_utc - self.start_utc).total_seconds() / 3600.0

    @property
    def label(self) -> str:
        if self.start_day.day == 1 and self.end_day == _next_month(self.start_day):
            return f"{self.start_day.year:04d}-{self.start_day.month:02d}"
        return f"{self.start_day.isoformat()}/{self.end_day.isoformat()}"

    def intersect(self, start_day: date, end_day: date | None) -> Period | None:
        """The part of this period within ``[start_day, end_day)`` (open end: ``None``)."""
        lo = max(self.start_day, start_day)
        hi = self.end_day if end_day is None else min(self.end_day, end_day)
        return Period(lo, hi) if hi > lo else None

    def contains_day(self, day: date) -> bool:
        return self.start_day <= day < self.end_day


def _next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def day_period(day: date) -> Period:
    """One local calendar day."""
    return Period(day, day + timedelta(days=1))


def month_period(year: int, month: int) -> Period:
    """One local calendar month."""
    if not 1 <= month <= 12:
        raise PeriodError(f"month must be 1..12, got {month}")
    first = date(year, month, 1)
    return Period(first, _next_month(first))


def parse_month(text: str) -> Period:
    """A ``YYYY-MM`` text as a month period; :class:`PeriodError` says what is wrong."""
    match = _MONTH_RE.match(text.strip())
    if not match:
        raise PeriodError(f"period {text!r} is not of the form YYYY-MM (e.g. 2026-03)")
    return month_period(int(match.group(1)), int(match.group(2)))


def days_in_month(day: date) -> int:
    """Number of days of the calendar month ``day`` lies in."""
    return (_next_month(day.replace(day=1)) - day.replace(day=1)).days


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def contract_year(contract_start: date, day: date) -> Period:
    """The contract year (anniversary to anniversary of ``contract_start``) containing ``day``."""
    if day < contract_start:
        raise PeriodError(f"{day} is before the contract starts ({contract_start})")
    years = day.year - contract_start.year
    if add_years(contract_start, years) > day:
        years -= 1
    return Period(add_years(contract_start, years), add_years(contract_start, years + 1))


def split_at_days(period: Period, cuts: list[date]) -> list[Period]:
    """Split a period at the given days (those inside it); the pieces cover it exactly."""
    inner = sorted({c for c in cuts if period.start_day < c < period.end_day})
    edges = [period.start_day, *inner, period.end_day]
    return [Period(a, b) for a, b in itertools.pairwise(edges)]
