"""What an import shows: a progress bar on stderr and the summary (text or JSON)."""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from collector.importing.rows import ReadingSource
from collector.importing.stored import from_ms
from collector.importing.summary import ImportSummary


class ProgressBar:
    """``[#####.....]  48%  336,000 rows  61,000 rows/s  file.csv`` on a terminal, redrawn at
    most every ``every_s``; one line per update elsewhere (logs), at most every 5 s."""

    def __init__(self, stream: TextIO, *, enabled: bool = True, every_s: float = 0.2) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.every_s = every_s if self.tty else 5.0
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def __call__(self, source: ReadingSource, rows: int, *, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self._last < self.every_s:
            return
        self._last = now
        share = 1.0 if final else source.progress()
        filled = int(share * 30)
        rate = rows / max(now - self._start, 1e-6)
        text = (
            f"[{'#' * filled}{'.' * (30 - filled)}] {share * 100:4.0f}%  {rows:,} rows  "
            f"{rate:,.0f} rows/s  {source.label}"
        )
        if self.tty:
            self.stream.write("\r" + text[:160].ljust(80))
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._drawn = True

    def restart(self) -> None:
        self._start = time.monotonic()
        self._last = 0.0


def summary_json(summary: ImportSummary) -> dict[str, Any]:
    """The summary as JSON (``--format json``)."""
    return {
        "dry_run": summary.dry_run,
        "stored": summary.stored,
        "duplicates": summary.duplicates,
        "rejected": dict(sorted(summary.rejected.items())),
        "files": [
            {
                "file": f.label,
                "rows": f.rows,
                "stored": f.stored,
                "imported_counter_readings": f.intervals,
                "duplicates": f.duplicates,
                "rejected": dict(sorted(f.rejected.items())),
                "first": f.first.isoformat() if f.first else None,
                "last": f.last.isoformat() if f.last else None,
                "examples": [
                    {f.unit.replace(" ", "_"): line, "reason": reason, "detail": detail}
                    for line, reason, detail in f.examples
                ],
            }
            for f in summary.files
        ],
        "imported_counters": [
            {
                "gateway": s.gateway_id,
                "device": s.device_id,
                "start": from_ms(s.start_ms).isoformat(),
                "end": from_ms(s.end_ms).isoformat(),
                "kwh": round((s.last_wh - s.first_wh) / 1000.0, 3),
                "intervals": s.intervals,
            }
            for s in summary.spans
        ],
        "issued_months": summary.issued_months,
        "notes": summary.notes,
    }


def print_summary(summary: ImportSummary, out: TextIO) -> None:
    """The summary as text."""
    head = "dry run, nothing written: " if summary.dry_run else ""
    would = "would be stored" if summary.dry_run else "stored"
    for f in summary.files:
        print(f"{f.label}: {f.rows:,} rows", file=out)
        print(f"  {would}: {f.stored:,} readings" + (
            f" ({f.intervals:,} of them an imported counter from interval energy)"
            if f.intervals else ""), file=out)  # fmt: skip
        print(f"  duplicates (already stored or repeated): {f.duplicates:,}", file=out)
        total = sum(f.rejected.values())
        print(f"  rejected: {total:,}", file=out)
        for reason, n in sorted(f.rejected.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"    {reason}: {n:,}", file=out)
        for line, reason, detail in f.examples:
            where = f"{f.unit} {line}" if line >= 0 else "write"
            print(f"    {where}: {reason}: {detail}", file=out)
        if total > len(f.examples):
            print(f"    ... {total - len(f.examples):,} more in the dead-letter file", file=out)
    for s in summary.spans:
        print(
            f"imported counter {s.device_id} (gateway {s.gateway_id}): "
            f"{from_ms(s.start_ms).isoformat()} .. {from_ms(s.end_ms).isoformat()}, "
            f"{(s.last_wh - s.first_wh) / 1000.0:,.3f} kWh in {s.intervals:,} intervals",
            file=out,
        )
    for note in summary.notes:
        print(f"note: {note}", file=out)
    rejected = sum(summary.rejected.values())
    print(
        f"{head}{summary.stored:,} readings {would}, {summary.duplicates:,} duplicates, "
        f"{rejected:,} rejected",
        file=out,
    )


def dumps(summary: ImportSummary) -> str:
    return json.dumps(summary_json(summary), indent=2)
