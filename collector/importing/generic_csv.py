"""The generic readings CSV (``docs/importing.md``): one row per reading of one device.

A header row names the columns; the standard names carry their unit:

- ``ts`` (required): ISO 8601 with an offset (``2026-03-01T12:00:00+01:00``, ``...Z``), or a
  local time with the file's zone given (``--timezone Europe/Amsterdam``), or any layout with
  ``--time-format`` (``%d-%m-%Y %H:%M``);
- ``device_id`` (required unless ``--device`` names the one device of the file), optional
  ``gateway_id``;
- at least one of ``ac_power_w`` / ``ac_power_kw``, ``ac_energy_wh`` / ``ac_energy_kwh`` (the
  lifetime counter), ``interval_energy_wh`` / ``interval_energy_kwh`` (energy of the interval
  that ends at ``ts``; ``--interval-label start`` when ``ts`` is its start), whose length is
  the ``interval_s`` column or ``--interval-minutes``;
- optional ``ac_voltage_v``, ``grid_frequency_hz``, ``cabinet_temp_c``, ``state`` (the wire
  format's states), and per MPPT input ``dc1_voltage_v``, ``dc1_current_a``, ``dc1_power_w``,
  ``dc2_...`` up to ``dc32_...``.

Columns named otherwise are mapped with ``--column ac_power_w="Power (W)"`` (standard name =
the file's header); columns not mapped are ignored. Separators ``,`` ``;`` and tab are
detected; ``--decimal-comma`` reads ``1.234,5``. Empty cells and ``-`` are no value.

A file with both a lifetime counter and interval energy is read by its counter: interval
energy is never mixed with a real counter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from collector.importing.rows import Row, RowInterval, RowProblem, RowReading
from collector.importing.text_files import TextFile, csv_rows, parse_number, sniff_separator
from collector.importing.timestamps import LocalTimes, TimestampError, parse_naive
from zonnewijk_wire import format_ts

#: Standard column name -> (wire field, factor to the wire unit).
VALUE_COLUMNS: dict[str, tuple[str, float]] = {
    "ac_power_w": ("ac_power_w", 1.0),
    "ac_power_kw": ("ac_power_w", 1000.0),
    "ac_energy_wh": ("ac_energy_wh", 1.0),
    "ac_energy_kwh": ("ac_energy_wh", 1000.0),
    "ac_voltage_v": ("ac_voltage_v", 1.0),
    "grid_frequency_hz": ("grid_frequency_hz", 1.0),
    "cabinet_temp_c": ("cabinet_temp_c", 1.0),
}
INTERVAL_COLUMNS: dict[str, float] = {"interval_energy_wh": 1.0, "interval_energy_kwh": 1000.0}
OTHER_COLUMNS = ("ts", "device_id", "gateway_id", "state", "interval_s")
_DC_RE = re.compile(r"^dc([1-9]|[12][0-9]|3[0-2])_(voltage_v|current_a|power_w)$")


def standard_column(name: str) -> bool:
    """Whether ``name`` is one of the format's standard column names."""
    return (
        name in VALUE_COLUMNS
        or name in INTERVAL_COLUMNS
        or name in OTHER_COLUMNS
        or _DC_RE.match(name) is not None
    )


class FormatError(ValueError):
    """The file as a whole cannot be read in this format (the header, the options)."""


@dataclass(frozen=True)
class CsvOptions:
    """How to read a generic CSV."""

    #: standard name -> the file's header for it
    columns: Mapping[str, str] = field(default_factory=dict)
    device_id: str | None = None
    gateway_id: str | None = None
    time_format: str | None = None
    decimal_comma: bool = False
    separator: str | None = None
    #: interval length when the file has no ``interval_s`` column [min]
    interval_minutes: float | None = None
    #: whether ``ts`` labels the end (default) or the start of an energy interval
    interval_label: str = "end"


class GenericCsv:
    """A generic readings CSV (see the module documentation)."""

    unit = "line"

    def __init__(self, path: Path, options: CsvOptions, times: LocalTimes) -> None:
        self.path = path
        self.label = str(path)
        self.options = options
        self.times = times
        self._file: TextFile | None = None
        for name in options.columns:
            if not standard_column(name):
                raise FormatError(f"--column {name}=...: {name!r} is not a standard column name")
        if options.interval_label not in ("start", "end"):
            raise FormatError("--interval-label is 'start' or 'end'")

    def progress(self) -> float:
        return self._file.progress() if self._file is not None else 0.0

    def rows(self) -> Iterator[Row]:
        self._file = TextFile(self.path)
        try:
            yield from self._rows(self._file)
        finally:
            self._file.close()

    def _index(self, header: list[str]) -> dict[str, int]:
        """Standard name -> column index, from the header and the mapping."""
        by_header = {h.strip(): i for i, h in enumerate(header)}
        by_lower = {h.strip().lower(): i for i, h in enumerate(header)}
        index: dict[str, int] = {}
        for name, title in self.options.columns.items():
            if title.strip() not in by_header:
                raise FormatError(
                    f"{self.path}: --column {name}={title!r}: no such column; the header has "
                    + ", ".join(repr(h) for h in header)
                )
            index[name] = by_header[title.strip()]
        mapped = set(index.values())
        for lowered, i in by_lower.items():
            if standard_column(lowered) and lowered not in index and i not in mapped:
                index[lowered] = i
        return index

    def _rows(self, text: TextFile) -> Iterator[Row]:
        lines = text.lines()
        first = next(lines, None)
        if first is None:
            raise FormatError(f"{self.path} is empty")
        separator = self.options.separator or sniff_separator(first)

        def all_lines() -> Iterator[str]:
            yield first
            yield from lines

        rows = csv_rows(all_lines(), separator)
        _, header = next(rows)
        index = self._index(header)
        o = self.options
        if "ts" not in index:
            raise FormatError(
                f"{self.path}: no 'ts' column (map yours with --column ts=...); header: "
                + ", ".join(repr(h) for h in header)
            )
        if "device_id" not in index and o.device_id is None:
            raise FormatError(f"{self.path}: no 'device_id' column: give --device or map one")
        values = {n: i for n, i in index.items() if n in VALUE_COLUMNS}
        counter = any(VALUE_COLUMNS[n][0] == "ac_energy_wh" for n in values)
        intervals = {n: i for n, i in index.items() if n in INTERVAL_COLUMNS}
        if counter:
            intervals = {}  # a real counter wins; interval energy is never mixed with it
        if len(intervals) > 1:
            raise FormatError(f"{self.path}: give interval energy in Wh or in kWh, not both")
        if not values and not intervals:
            raise FormatError(
                f"{self.path}: no value columns: need ac_power_w, ac_energy_wh or "
                "interval_energy_wh (or their kW/kWh forms)"
            )
        if intervals and "interval_s" not in index and o.interval_minutes is None:
            raise FormatError(
                f"{self.path}: interval energy needs its interval: an interval_s column or "
                "--interval-minutes"
            )
        dc = {n: i for n, i in index.items() if _DC_RE.match(n)}
        width = len(header)
        for line, cells in rows:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != width:
                yield RowProblem(
                    line,
                    "malformed_row",
                    f"{len(cells)} cells where the header has {width}",
                    separator.join(cells),
                )
                continue
            yield self._row(line, cells, index, values, intervals, dc, header)

    def _row(
        self,
        line: int,
        cells: list[str],
        index: Mapping[str, int],
        values: Mapping[str, int],
        intervals: Mapping[str, int],
        dc: Mapping[str, int],
        header: list[str],
    ) -> Row:
        o = self.options
        original = dict(zip(header, cells, strict=True))
        device = o.device_id or cells[index["device_id"]].strip()
        gateway = cells[index["gateway_id"]].strip() if "gateway_id" in index else None
        gateway = gateway or o.gateway_id
        if not device:
            return RowProblem(line, "invalid_device_id", "no device id", original)
        try:
            ts = self.times.to_utc(parse_naive(cells[index["ts"]], o.time_format), device)
        except TimestampError as exc:
            return RowProblem(line, exc.reason, exc.detail, original)
        wire: dict[str, object] = {"device_id": device, "ts": format_ts(ts)}
        for name, i in values.items():
            field_name, factor = VALUE_COLUMNS[name]
            try:
                number = parse_number(cells[i], decimal_comma=o.decimal_comma)
            except ValueError:
                return RowProblem(
                    line, f"invalid_{field_name}", f"{name}: {cells[i]!r} is not a number", original
                )
            if number is not None:
                wire[field_name] = number * factor
        inputs: dict[int, dict[str, object]] = {}
        for name, i in dc.items():
            m = _DC_RE.match(name)
            assert m is not None
            try:
                number = parse_number(cells[i], decimal_comma=o.decimal_comma)
            except ValueError:
                return RowProblem(
                    line, "invalid_dc", f"{name}: {cells[i]!r} is not a number", original
                )
            if number is not None:
                mppt = int(m.group(1))
                inputs.setdefault(mppt, {"mppt": mppt})[f"dc_{m.group(2)}"] = number
        if inputs:
            wire["dc"] = [inputs[k] for k in sorted(inputs)]
        if "state" in index and cells[index["state"]].strip():
            wire["state"] = cells[index["state"]].strip().lower()
        if intervals:
            return self._interval(
                line, cells, index, intervals, device, gateway, ts, wire, original
            )
        if len(wire) == 2:
            return RowProblem(line, "no_values", "the row has no value", original)
        return RowReading(line, device, ts, wire, gateway)

    def _interval(
        self,
        line: int,
        cells: list[str],
        index: Mapping[str, int],
        intervals: Mapping[str, int],
        device: str,
        gateway: str | None,
        ts: datetime,
        wire: dict[str, object],
        original: object,
    ) -> Row:
        o = self.options
        ((name, i),) = intervals.items()
        try:
            energy = parse_number(cells[i], decimal_comma=o.decimal_comma)
            seconds = (
                parse_number(cells[index["interval_s"]], decimal_comma=o.decimal_comma)
                if "interval_s" in index
                else None
            )
        except ValueError:
            return RowProblem(line, "invalid_interval_energy", "not a number", original)
        if seconds is None and o.interval_minutes is not None:
            seconds = o.interval_minutes * 60.0
        if energy is None:
            return RowProblem(line, "no_values", "the interval has no energy", original)
        if seconds is None or seconds <= 0:
            return RowProblem(line, "invalid_interval_s", "no positive interval length", original)
        length = timedelta(seconds=seconds)
        start, end = (ts, ts + length) if o.interval_label == "start" else (ts - length, ts)
        extra = {k: v for k, v in wire.items() if k not in ("device_id", "ts", "ac_power_w")}
        return RowInterval(
            line, device, start, end, energy * INTERVAL_COLUMNS[name], gateway, extra or None
        )
