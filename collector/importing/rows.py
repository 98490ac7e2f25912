"""What every file format yields: readings, intervals of energy, or a row's problem.

A format reads its file and yields, row by row, one of

- :class:`RowReading`: one reading in the wire format's shape (a dict a
  :class:`zonnewijk_wire.Reading` validates), with a lifetime counter or without;
- :class:`RowInterval`: the energy a device produced in an interval, from an export without a
  lifetime counter (turned into an imported counter by :mod:`collector.importing.synthetic`);
- :class:`RowProblem`: a row that cannot be read, with the same kind of reason the collector
  gives (``invalid_ts``, ``invalid_ac_power_w``, ...).

``line`` is where the row is in its file, as a person finds it there (a text file's line
number; a spool file's row id), so a rejection can name it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch, floored as the collector's line protocol does [ms]."""
    return (ts - _EPOCH) // _MS


@dataclass(frozen=True)
class RowReading:
    """One reading: ``wire`` is the JSON object of a wire v1 reading (``ts`` as text)."""

    line: int
    device_id: str
    ts: datetime
    wire: dict[str, object]
    gateway_id: str | None = None


@dataclass(frozen=True)
class RowInterval:
    """Energy produced in ``[start, end)`` without a lifetime counter [Wh].

    ``extra`` holds other wire fields measured in the interval (DC inputs, temperature).
    """

    line: int
    device_id: str
    start: datetime
    end: datetime
    energy_wh: float
    gateway_id: str | None = None
    extra: dict[str, object] | None = None

    @property
    def mean_power_w(self) -> float:
        """The interval's mean power [W]."""
        hours = (self.end - self.start).total_seconds() / 3600.0
        return self.energy_wh / hours


@dataclass(frozen=True)
class RowProblem:
    """A row that cannot be imported, and why."""

    line: int
    reason: str
    detail: str
    original: object = None


Row = RowReading | RowInterval | RowProblem


class ReadingSource(Protocol):
    """A file opened in one of the formats."""

    #: What the file is, for messages and the dead letters' topic (its path).
    label: str
    #: How a row's position is named in messages ("line", "spool row").
    unit: str

    def rows(self) -> Iterator[Row]:
        """Every row of the file, in file order."""
        ...

    def progress(self) -> float:
        """How much of the file has been read, 0..1."""
        ...
