"""Huawei FusionSolar's inverter report, exported as CSV (``docs/importing.md``).

FusionSolar (Report Management, inverter report at the 5-minute statistics dimension) exports
one row per inverter and 5 minutes. What this reader relies on, as published in the tools
that read these exports (the columns below; the title rows above the header of the
spreadsheet form, skipped here until the header):

- ``Start Time``: the start of the 5 minutes, ``YYYY-MM-DD HH:MM:SS`` in the plant's local
  time without an offset (``--timezone``, default Europe/Amsterdam);
- ``ManageObject``: the inverter as ``<datalogger or plant>/<inverter name>``; the name is the
  device id unless ``--device-map NAME=DEVICE`` maps the name or the whole value;
- ``Total yield(kWh)``: the inverter's lifetime energy counter (the counter the gateway reads
  over Modbus): imported as a real counter, so settlement uses it as it is;
- ``Active power(kW)``: AC power;
- ``PV<n> input voltage(V)`` and ``PV<n> input current(A)``: each MPPT input, and
  ``Total input power(kW)`` (DC power, all inputs);
- if present: ``Internal temperature`` (°C) and ``Grid frequency`` (Hz), by the start of
  their header.

Cells ``-`` or empty are no value. Other columns are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path

from collector.importing.generic_csv import FormatError
from collector.importing.rows import Row, RowProblem, RowReading
from collector.importing.text_files import TextFile, csv_rows, parse_number, sniff_separator
from collector.importing.timestamps import LocalTimes, TimestampError, parse_naive
from zonnewijk_wire import ID_PATTERN, format_ts

TIME_COLUMN = "Start Time"
OBJECT_COLUMN = "ManageObject"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Exact header -> (wire field, factor to the wire unit).
AC_COLUMNS: dict[str, tuple[str, float]] = {
    "Total yield(kWh)": ("ac_energy_wh", 1000.0),
    "Active power(kW)": ("ac_power_w", 1000.0),
}
#: Header prefix -> wire field (unit as the wire's: °C, Hz).
PREFIX_COLUMNS: dict[str, str] = {
    "internal temperature": "cabinet_temp_c",
    "grid frequency": "grid_frequency_hz",
}
_PV_RE = re.compile(r"^PV(\d{1,2}) input (voltage|current)\((V|A)\)$", re.IGNORECASE)
_ID_RE = re.compile(ID_PATTERN)
#: Lines searched for the header row (the spreadsheet form has title rows above it).
HEADER_SEARCH_LINES = 20


class FusionSolarReport:
    """An inverter report of FusionSolar, as CSV."""

    unit = "line"

    def __init__(
        self,
        path: Path,
        times: LocalTimes,
        *,
        device_map: Mapping[str, str] | None = None,
        gateway_id: str | None = None,
    ) -> None:
        self.path = path
        self.label = str(path)
        self.times = times
        self.device_map = dict(device_map or {})
        self.gateway_id = gateway_id
        self._file: TextFile | None = None

    def progress(self) -> float:
        return self._file.progress() if self._file is not None else 0.0

    def rows(self) -> Iterator[Row]:
        self._file = TextFile(self.path)
        try:
            yield from self._rows(self._file)
        finally:
            self._file.close()

    def device_of(self, managed_object: str) -> str | None:
        """The device id of a ``ManageObject`` value (mapped, or the inverter's name)."""
        value = managed_object.strip()
        name = value.rsplit("/", 1)[-1].strip()
        for key in (value, name):
            if key in self.device_map:
                return self.device_map[key]
        return name if _ID_RE.match(name) else None

    def _rows(self, text: TextFile) -> Iterator[Row]:
        lines = text.lines()
        buffered: list[str] = []
        header_at = None
        for _ in range(HEADER_SEARCH_LINES):
            text_line = next(lines, None)
            if text_line is None:
                break
            buffered.append(text_line)
            if TIME_COLUMN in text_line and OBJECT_COLUMN in text_line:
                header_at = len(buffered)
                break
        if header_at is None:
            raise FormatError(
                f"{self.path}: no header with {TIME_COLUMN!r} and {OBJECT_COLUMN!r} in the first "
                f"{HEADER_SEARCH_LINES} lines: not a FusionSolar inverter report"
            )
        separator = sniff_separator(buffered[-1])

        def rest() -> Iterator[str]:
            yield buffered[-1]
            yield from lines

        rows = csv_rows(rest(), separator)
        _, header = next(rows)
        header = [h.strip() for h in header]
        col = {h: i for i, h in enumerate(header)}
        if "Total yield(kWh)" not in col and "Active power(kW)" not in col:
            raise FormatError(f"{self.path}: neither 'Total yield(kWh)' nor 'Active power(kW)'")
        ac = {field: (col[h], factor) for h, (field, factor) in AC_COLUMNS.items() if h in col}
        for i, h in enumerate(header):
            for prefix, field in PREFIX_COLUMNS.items():
                if h.lower().startswith(prefix) and field not in ac:
                    ac[field] = (i, 1.0)
        pv: dict[int, dict[str, int]] = {}
        for i, h in enumerate(header):
            m = _PV_RE.match(h)
            if m:
                kind = "dc_voltage_v" if m.group(2).lower() == "voltage" else "dc_current_a"
                pv.setdefault(int(m.group(1)), {})[kind] = i
        dc_total = col.get("Total input power(kW)")
        offset = header_at - 1  # line numbers in the whole file
        for number, cells in rows:
            line = number + offset
            if not any(c.strip() for c in cells):
                continue
            original = dict(zip(header, cells, strict=False))
            if len(cells) < len(header):
                yield RowProblem(line, "malformed_row", "fewer cells than the header", original)
                continue
            device = self.device_of(cells[col[OBJECT_COLUMN]])
            if device is None:
                yield RowProblem(
                    line,
                    "unknown_device",
                    f"inverter {cells[col[OBJECT_COLUMN]]!r} has no device id: map it with "
                    "--device-map NAME=DEVICE",
                    original,
                )
                continue
            try:
                ts = self.times.to_utc(parse_naive(cells[col[TIME_COLUMN]], TIME_FORMAT), device)
            except TimestampError as exc:
                yield RowProblem(line, exc.reason, exc.detail, original)
                continue
            yield self._reading(line, device, ts, cells, ac, pv, dc_total, original)

    def _reading(
        self,
        line: int,
        device: str,
        ts: datetime,
        cells: list[str],
        ac: Mapping[str, tuple[int, float]],
        pv: Mapping[int, Mapping[str, int]],
        dc_total: int | None,
        original: object,
    ) -> Row:
        wire: dict[str, object] = {"device_id": device, "ts": format_ts(ts)}
        try:
            for field, (i, factor) in ac.items():
                number = parse_number(cells[i])
                if number is not None:
                    wire[field] = number * factor
            inputs = []
            for mppt in sorted(pv):
                values: dict[str, object] = {"mppt": mppt}
                for kind, i in pv[mppt].items():
                    number = parse_number(cells[i])
                    if number is not None:
                        values[kind] = number
                voltage, current = values.get("dc_voltage_v"), values.get("dc_current_a")
                if isinstance(voltage, float) and isinstance(current, float):
                    values["dc_power_w"] = voltage * current
                if len(values) > 1:
                    inputs.append(values)
            if inputs:
                wire["dc"] = inputs
            elif dc_total is not None and (total := parse_number(cells[dc_total])) is not None:
                wire["dc"] = [{"mppt": 1, "dc_power_w": total * 1000.0}]
        except ValueError as exc:
            return RowProblem(line, "invalid_number", str(exc), original)
        if len(wire) == 2:
            return RowProblem(line, "no_values", "the row has no value", original)
        return RowReading(line, device, ts, wire, self.gateway_id)
