"""Importing readings from files into InfluxDB through the collector's own stages.

Rows come from a format (:mod:`collector.importing.rows`) in chunks. Readings are put into
wire v1 messages of their gateway and go through :func:`collector.ingest.process.process_message`
(decoding with the wire format's reasons, the collector's validation, line protocol), are
written by the collector's :class:`~collector.ingest.writer.BatchWriter` (retry while InfluxDB is
away, isolation of what it refuses) and every rejection goes through the collector's
:class:`~collector.ingest.dead_letter.DeadLetters` (counted by reason, the dead letter with
the row's line and its original). The differences from a live gateway's message:

- a reading already stored with the same values is a duplicate: counted, not written again
  (the point's identity, measurement + tags + time, makes a second import store nothing new);
  one stored with other values is refused (``conflicts_with_stored``), as is a second row of
  the same device and time with other values (``conflicting_duplicate``);
- the counter check starts from the device's last stored counter before the file's first
  reading, and the age limit is the import's (``--max-age-days``);
- intervals of energy are checked as readings of their mean power, then summed into an
  imported counter (:mod:`collector.importing.synthetic`) stored under its own series
  (``gateway=<gw>~imported``) and its spans in ``imported_counter``.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import msgspec

from collector.importing.rows import (
    ReadingSource,
    Row,
    RowInterval,
    RowProblem,
    RowReading,
    epoch_ms,
)
from collector.importing.stored import (
    StoredSpan,
    Values,
    existing_points,
    from_ms,
    last_counter,
    span_point,
    stored_spans,
)
from collector.importing.summary import FileSummary, ImportSummary, import_limits
from collector.importing.synthetic import CounterBuilder, CounterPoint, Resume, Span
from collector.importing.wire_rows import (
    counter_point_json,
    counter_point_reading,
    interval_wire,
    number_or_none,
    original_row,
)
from collector.ingest.dead_letter import DeadLetters
from collector.ingest.directory import DeviceDirectory, OpenDirectory
from collector.ingest.lines import reading_lines
from collector.ingest.metrics import CollectorMetrics, CollectorStats
from collector.ingest.process import ProcessedMessage, Rejection, process_message
from collector.ingest.validate import CounterMemory, ReadingValidator, ValidationLimits
from collector.ingest.writer import BatchWriter
from collector.timeseries.influx import InfluxClient
from collector.timeseries.measurements import imported_gateway_tag
from collector.timeseries.schema import RollupBackfiller
from zonnewijk_wire import (
    ID_PATTERN,
    MAX_READINGS_PER_BATCH,
    format_ts,
    readings_topic,
)

log = logging.getLogger(__name__)

#: Rows read before they are checked and written together.
CHUNK_ROWS = 50_000
#: How many rejections a file's summary shows with their line.
EXAMPLES = 20
_COUNTER_ORIGIN = ',counter_origin="imported"'

Progress = Callable[[ReadingSource, int], None]


@dataclass
class _Pending:
    """A message to write and the (device, time) of each reading it stores."""

    message: ProcessedMessage
    stored: list[tuple[str, datetime]]
    interval: bool = False


def _chunks(rows: Iterable[Row], size: int) -> Iterable[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


class Importer:
    """Imports files one after another; :meth:`finish` writes the spans and rolls up."""

    def __init__(
        self,
        influx: InfluxClient | None,
        *,
        dead_letter: Callable[[str, str], None],
        directory: DeviceDirectory | None = None,
        gateway_of: Mapping[str, str] | None = None,
        default_gateway: str | None = None,
        limits: ValidationLimits | None = None,
        dry_run: bool = False,
        chunk_rows: int = CHUNK_ROWS,
        now: datetime | None = None,
        progress: Progress | None = None,
        write_points: int = 10_000,
    ) -> None:
        if influx is None and not dry_run:
            raise ValueError("an import that writes needs InfluxDB")
        self.influx = influx
        self.directory = directory or OpenDirectory()
        self.gateway_of = dict(gateway_of or {})
        self.default_gateway = default_gateway
        self.limits = limits or import_limits()
        self.dry_run = dry_run
        self.chunk_rows = chunk_rows
        self.now = now or datetime.now(UTC)
        self.progress = progress
        self.stats = CollectorStats()
        self._lock = threading.Lock()
        self.dead_letters = DeadLetters(dead_letter, stats=self.stats, lock=self._lock)
        # Real counters, imported counters and intervals each have their own counter memory:
        # an imported counter is never judged against a real one.
        self.real = ReadingValidator(self.directory, self.limits, CounterMemory())
        self.interval_check = ReadingValidator(self.directory, self.limits, CounterMemory())
        self._seeded: set[tuple[str, str]] = set()
        self._builders: dict[str, CounterBuilder] = defaultdict(CounterBuilder)
        self._resumed: dict[tuple[str, str, int], StoredSpan] = {}
        self._source_of_span: dict[tuple[str, str], str] = {}
        self.summary = ImportSummary(dry_run=dry_run)
        self.writer: BatchWriter | None = None
        #: One writer thread: a chunk is written while the next one is read and checked.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-write")
        self._pending: (
            tuple[Future[bool] | None, ReadingSource, FileSummary, list[_Pending]] | None
        ) = None
        if influx is not None:
            self.writer = BatchWriter(
                influx,
                batch_max_points=write_points,
                stats=self.stats,
                metrics=CollectorMetrics(self.stats, self._lock),
                lock=self._lock,
                stopping=threading.Event(),
            )

    # -- the run ---------------------------------------------------------------------------

    def import_source(self, source: ReadingSource) -> FileSummary:
        """Import every row of one file."""
        summary = FileSummary(source.label, source.unit)
        self.summary.files.append(summary)
        try:
            for chunk in _chunks(source.rows(), self.chunk_rows):
                summary.rows += len(chunk)
                self._chunk(source, chunk, summary)
                if self.progress is not None:
                    self.progress(source, summary.rows)
        finally:
            self._drain()
        return summary

    def finish(self) -> ImportSummary:
        """Write the imported counters' spans and roll up the imported days."""
        self._drain()
        self._pool.shutdown()
        spans: list[StoredSpan] = []
        for gateway, builder in sorted(self._builders.items()):
            spans.extend(self._stored_span(gateway, span) for span in builder.finish())
        self.summary.spans = spans
        if self.influx is not None and not self.dry_run:
            if spans:
                self.influx.write_lines([span_point(s).to_line() for s in spans])
            devices = self.summary.devices.values()
            if devices:
                backfiller = RollupBackfiller(self.influx, recent_s=0.0, workers=2)
                backfiller.note(min(a for a, _ in devices), max(b for _, b in devices), self.now)
                if not backfiller.run_if_due(force=True):
                    self.summary.notes.append(
                        "rollups not updated (run `zonnewijk db init`, then `zonnewijk db "
                        "backfill`)"
                    )
        return self.summary

    # -- a chunk ---------------------------------------------------------------------------

    def _chunk(self, source: ReadingSource, rows: Sequence[Row], summary: FileSummary) -> None:
        # the previous chunk's write ran while this chunk was read; its points must be stored
        # before this chunk looks for duplicates and counters
        self._drain()
        readings: dict[str, list[RowReading]] = defaultdict(list)
        intervals: dict[str, list[RowInterval]] = defaultdict(list)
        for row in rows:
            if isinstance(row, RowProblem):
                self._reject(source, summary, row.line, row.reason, row.detail, row.original)
                continue
            gateway = row.gateway_id or self.default_gateway or self.gateway_of.get(row.device_id)
            if gateway is None:
                self._reject(
                    source,
                    summary,
                    row.line,
                    "no_gateway",
                    f"which gateway reads {row.device_id!r}? Give --gateway, a gateway_id "
                    "column, or --fleet/--registry-url that says",
                    original_row(row),
                )
                continue
            if not _valid_id(gateway):
                self._reject(
                    source,
                    summary,
                    row.line,
                    "invalid_gateway_id",
                    f"{gateway!r} is not a gateway id ({ID_PATTERN})",
                    original_row(row),
                )
                continue
            if isinstance(row, RowReading):
                readings[gateway].append(row)
            else:
                intervals[gateway].append(row)
        processed: list[_Pending] = []
        for gateway, group in readings.items():
            processed.extend(self._readings(source, summary, gateway, group))
        # real counters first: an interval where a real counter was just stored is refused
        self._write(source, summary, processed)
        if not intervals:
            return
        self._drain()
        processed = []
        for gateway, ivs in intervals.items():
            processed.extend(self._intervals(source, summary, gateway, ivs))
        self._write(source, summary, processed)

    def _seed(self, gateway: str, device: str, first_ms: int) -> None:
        if (gateway, device) in self._seeded:
            return
        self._seeded.add((gateway, device))
        if self.influx is None:
            return
        found = last_counter(self.influx, gateway, device, first_ms, inclusive=False)
        if found is not None:
            self.real.counters.update(gateway, device, from_ms(found[0]), found[1])

    def _stored(self, gateway_tag: str, device: str, times_ms: Sequence[int]) -> dict[int, Values]:
        if self.influx is None or not times_ms:
            return {}
        return existing_points(self.influx, gateway_tag, device, min(times_ms), max(times_ms))

    def _unique(
        self,
        source: ReadingSource,
        summary: FileSummary,
        gateway_tag: str,
        device: str,
        items: Sequence[tuple[int, int, Values, object]],
    ) -> list[int]:
        """Positions of the items (line, ts_ms, values, original) to store: duplicates of
        stored or earlier rows are counted, conflicting ones refused."""
        stored = self._stored(gateway_tag, device, [ts for _, ts, _, _ in items])
        seen: dict[int, Values] = {}
        keep: list[int] = []
        for position, (line, ts_ms, values, original) in enumerate(items):
            earlier = seen.get(ts_ms)
            if earlier is not None:
                if earlier == values:
                    summary.duplicates += 1
                else:
                    self._reject(
                        source,
                        summary,
                        line,
                        "conflicting_duplicate",
                        f"{device} at {format_ts(from_ms(ts_ms))} appears twice with other "
                        f"values (energy, power) {earlier} and {values}",
                        original,
                    )
                continue
            seen[ts_ms] = values
            old = stored.get(ts_ms)
            if old is not None:
                if _same(old, values):
                    summary.duplicates += 1
                else:
                    self._reject(
                        source,
                        summary,
                        line,
                        "conflicts_with_stored",
                        f"{device} at {format_ts(from_ms(ts_ms))} is stored with (energy, "
                        f"power) {old}, the file says {values}: stored history is not changed "
                        "by an import (delete the stored points first if the file is right)",
                        original,
                    )
                continue
            keep.append(position)
        return keep

    def _readings(
        self,
        source: ReadingSource,
        summary: FileSummary,
        gateway: str,
        rows: list[RowReading],
    ) -> list[_Pending]:
        rows.sort(key=lambda r: (r.device_id, r.ts))
        by_device: dict[str, list[RowReading]] = defaultdict(list)
        for row in rows:
            by_device[row.device_id].append(row)
        kept: list[RowReading] = []
        for device, group in by_device.items():
            self._seed(gateway, device, epoch_ms(group[0].ts))
            items = [
                (
                    r.line,
                    epoch_ms(r.ts),
                    (
                        number_or_none(r.wire.get("ac_energy_wh")),
                        number_or_none(r.wire.get("ac_power_w")),
                    ),
                    r.wire,
                )
                for r in group
            ]
            kept.extend(group[i] for i in self._unique(source, summary, gateway, device, items))
        out: list[_Pending] = []
        for batch in _batches(kept):
            message = self._process(source, summary, gateway, [r.wire for r in batch],
                                    [r.line for r in batch], self.real)  # fmt: skip
            out.append(_Pending(message, [(r.device_id, r.ts) for r in message.good]))
        return out

    def _process(
        self,
        source: ReadingSource,
        summary: FileSummary,
        gateway: str,
        wires: list[dict[str, object]],
        lines: list[int],
        validator: ReadingValidator,
    ) -> ProcessedMessage:
        """One wire message through the collector's processing; rejections named by line."""
        payload = msgspec.json.encode(
            {
                "v": 1,
                "gateway_id": gateway,
                "seq": 0,
                "sent_at": format_ts(self.now),
                "readings": wires,
            }
        )
        message = process_message(readings_topic(gateway), payload, validator, now=self.now)
        for rejection in message.rejections:
            if rejection.reading_index is None:  # the whole message: each row is refused
                for line, wire in zip(lines, wires, strict=True):
                    self._reject(source, summary, line, rejection.reason, rejection.detail, wire)
            else:
                self._reject(
                    source,
                    summary,
                    lines[rejection.reading_index],
                    rejection.reason,
                    rejection.detail,
                    rejection.original,
                )
        message.rejections = []
        return message

    def _intervals(
        self,
        source: ReadingSource,
        summary: FileSummary,
        gateway: str,
        intervals: list[RowInterval],
    ) -> list[_Pending]:
        intervals.sort(key=lambda r: (r.device_id, r.start, r.end))
        # 1. each interval checked as a reading of its mean power at its end
        accepted: list[RowInterval] = []
        for batch in _batches(intervals):
            wires = [interval_wire(iv) for iv in batch]
            message = self._process(
                source, summary, gateway, wires, [iv.line for iv in batch], self.interval_check
            )
            good_ends = Counter((r.device_id, r.ts) for r in message.good)
            for iv in batch:
                key = (iv.device_id, iv.end)
                if good_ends[key] > 0:
                    good_ends[key] -= 1
                    accepted.append(iv)
        # 2. never where the device has a real counter: that one is the measurement
        accepted = self._without_real_counter(source, summary, gateway, accepted)
        # 3. summed into the device's imported counter
        builder = self._builders[gateway]
        tag = imported_gateway_tag(gateway)
        points: dict[str, list[CounterPoint]] = defaultdict(list)
        for iv in accepted:
            if not builder.known(iv.device_id):
                builder.resume(iv.device_id, self._resume(gateway, iv.device_id, iv.start))
                self._source_of_span[(gateway, iv.device_id)] = source.label
            made = builder.add(iv, iv.mean_power_w)
            if isinstance(made, str):
                self._reject(
                    source, summary, iv.line, "overlapping_interval", made, original_row(iv)
                )
                continue
            points[iv.device_id].extend(made)
        out: list[_Pending] = []
        for device, device_points in points.items():
            items = [
                (p.line, epoch_ms(p.ts), (p.counter_wh, p.mean_power_w), counter_point_json(p))
                for p in device_points
            ]
            keep = [device_points[i] for i in self._unique(source, summary, tag, device, items)]
            lines: list[str] = []
            stored: list[tuple[str, datetime]] = []
            for point in keep:
                for line in reading_lines(tag, counter_point_reading(point)):
                    if line.startswith("inverter,"):
                        head, _, ts = line.rpartition(" ")
                        line = f"{head}{_COUNTER_ORIGIN} {ts}"
                    lines.append(line)
                if point.mean_power_w is not None:
                    stored.append((device, point.ts))
            message = ProcessedMessage(lines, len(stored), [], gateway)
            out.append(_Pending(message, stored, interval=True))
        return out

    def _without_real_counter(
        self,
        source: ReadingSource,
        summary: FileSummary,
        gateway: str,
        intervals: list[RowInterval],
    ) -> list[RowInterval]:
        """The intervals in which the device has no real counter reading stored."""
        if self.influx is None or not intervals:
            return intervals
        by_device: dict[str, list[RowInterval]] = defaultdict(list)
        for iv in intervals:
            by_device[iv.device_id].append(iv)
        out: list[RowInterval] = []
        for device, group in by_device.items():
            real = sorted(
                ts
                for ts, (energy, _) in existing_points(
                    self.influx, gateway, device, epoch_ms(group[0].start), epoch_ms(group[-1].end)
                ).items()
                if energy is not None
            )
            for iv in group:
                i = bisect.bisect_left(real, epoch_ms(iv.start))
                if i < len(real) and real[i] <= epoch_ms(iv.end):
                    self._reject(
                        source,
                        summary,
                        iv.line,
                        "real_counter_exists",
                        f"{device} has a lifetime counter reading at "
                        f"{format_ts(from_ms(real[i]))}, inside this interval: interval energy is "
                        "never mixed with a real counter (the real one is kept)",
                        original_row(iv),
                    )
                else:
                    out.append(iv)
        return out

    def _resume(self, gateway: str, device: str, start: datetime) -> Resume | None:
        """Where the device's imported counter stands at ``start``, from InfluxDB."""
        if self.influx is None:
            return None
        start_ms = epoch_ms(start)
        last = last_counter(
            self.influx, imported_gateway_tag(gateway), device, start_ms, inclusive=True
        )
        if last is None:
            return None
        at_ms, counter = last
        for span in stored_spans(self.influx, gateway, device):
            if span.start_ms <= at_ms <= span.end_ms and start_ms <= span.end_ms:
                self._resumed[(gateway, device, span.start_ms)] = span
                return Resume(
                    from_ms(at_ms), counter, from_ms(span.start_ms), span.first_wh, span.intervals
                )
        return Resume(from_ms(at_ms), counter)

    def _stored_span(self, gateway: str, span: Span) -> StoredSpan:
        start_ms, end_ms = epoch_ms(span.start), epoch_ms(span.end)
        source = self._source_of_span.get((gateway, span.device_id), "import")
        old = self._resumed.get((gateway, span.device_id, start_ms)) if span.resumed else None
        if old is not None and old.end_ms >= end_ms:
            return dataclasses.replace(old, intervals=max(old.intervals, span.intervals))
        return StoredSpan(
            gateway,
            span.device_id,
            start_ms,
            end_ms,
            span.first_wh,
            span.last_wh,
            max(span.intervals, old.intervals if old else 0),
            source if old is None else old.source,
        )

    # -- writing and accounting ------------------------------------------------------------

    def _write(
        self, source: ReadingSource, summary: FileSummary, processed: list[_Pending]
    ) -> None:
        """Write in the background while the next chunk is read; :meth:`_drain` accounts."""
        messages = [p.message for p in processed if p.message.lines]
        job: Future[bool] | None = None
        if messages and self.writer is not None and not self.dry_run:
            lines = [line for m in messages for line in m.lines]
            job = self._pool.submit(self.writer.write, lines, messages)
        self._pending = (job, source, summary, processed)

    def _drain(self) -> None:
        """Wait for the write in flight and count what it stored or InfluxDB refused."""
        if self._pending is None:
            return
        job, source, summary, processed = self._pending
        self._pending = None
        if job is not None:
            job.result()
        for pending in processed:
            message = pending.message
            for rejection in message.rejections:  # what InfluxDB refused
                self._reject(source, summary, -1, rejection.reason, rejection.detail,
                             rejection.original)  # fmt: skip
            if message.readings == 0:
                continue
            summary.stored += len(pending.stored)
            if pending.interval:
                summary.intervals += len(pending.stored)
            for device, ts in pending.stored:
                summary.note_stored(ts)
                self._note_device(device, ts)

    def _note_device(self, device: str, ts: datetime) -> None:
        span = self.summary.devices.get(device)
        if span is None:
            self.summary.devices[device] = (ts, ts)
        elif ts < span[0] or ts > span[1]:
            self.summary.devices[device] = (min(span[0], ts), max(span[1], ts))

    def _reject(
        self,
        source: ReadingSource,
        summary: FileSummary,
        line: int,
        reason: str,
        detail: str,
        original: object,
    ) -> None:
        where = f"{source.unit} {line}" if line >= 0 else "write"
        summary.rejected[reason] += 1
        if len(summary.examples) < EXAMPLES:
            summary.examples.append((line, reason, detail))
        self.dead_letters.reject(
            Rejection(
                topic=f"import {source.label}",
                reason=reason,
                detail=f"{where}: {detail}",
                original=original,
                reading_index=line,
            )
        )


def _same(stored: Values, new: Values) -> bool:
    """Stored values equal the file's (a value the file lacks is not compared)."""
    return all(b is None or a == b for a, b in zip(stored, new, strict=True))


def _valid_id(value: str) -> bool:
    import re

    return re.fullmatch(ID_PATTERN.rstrip("$").lstrip("^"), value) is not None


def _batches(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), MAX_READINGS_PER_BATCH):
        yield items[start : start + MAX_READINGS_PER_BATCH]
