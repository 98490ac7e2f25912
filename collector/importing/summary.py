"""What an import did: per file and in all (stored, duplicates, rejected by reason), and the
import's validation limits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from collector.importing.stored import StoredSpan
from collector.ingest.validate import ValidationLimits

#: Default age limit of imported readings (years of history are the point) [s].
IMPORT_MAX_AGE_S = 20 * 365.25 * 86400.0


def import_limits(max_age_days: float | None = None) -> ValidationLimits:
    """The collector's limits with the import's age window."""
    age = IMPORT_MAX_AGE_S if max_age_days is None else max_age_days * 86400.0
    return ValidationLimits(max_age_s=age)


@dataclass
class FileSummary:
    """What one file gave."""

    label: str
    unit: str
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    #: The first rejections: (line, reason, detail).
    examples: list[tuple[int, str, str]] = field(default_factory=list)
    #: Readings stored of intervals of energy (imported counter).
    intervals: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def note_stored(self, ts: datetime) -> None:
        if self.first is None or ts < self.first:
            self.first = ts
        if self.last is None or ts > self.last:
            self.last = ts


@dataclass
class ImportSummary:
    """What an import did, file by file."""

    dry_run: bool
    files: list[FileSummary] = field(default_factory=list)
    spans: list[StoredSpan] = field(default_factory=list)
    #: Per device, the earliest and latest reading stored [UTC].
    devices: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    #: Issued settlement months the stored readings fall in (:mod:`collector.importing.settled`).
    issued_months: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def rejected(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.rejected)
        return total
