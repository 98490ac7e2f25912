"""SMA Sunny Portal's CSV download (ennexOS, format version 4; ``docs/importing.md``).

What the reader relies on, as in the files Sunny Portal writes (``sep=;`` first, then
``"key";"value"`` lines, an empty line, the header and the values):

- ``"Language"``: ``en-US`` numbers group thousands with commas (``1,243``) and times read
  ``07/26/2024 12.15 AM``; other languages (``de-DE``, ``nl-NL``) write ``1.243,5`` and
  ``26.07.2024 00:15``;
- ``"Time zone"``: the zone of the local times (``Europe/Berlin``);
- ``"Level"`` and ``"System ID"`` / ``"System name"``: the system the values belong to; a
  system is one device of ours: ``--device``, or ``--device-map "<system id or name>=DEVICE"``;
- the header: ``"Time period"`` and value columns named ``<name> [<unit>]``; the production
  is ``PV generation`` (else ``Total generation``): a mean power per period in ``W``, ``kW`` or
  ``MW`` (the unit changes with the view), or an energy per period in ``Wh``, ``kWh`` or
  ``MWh`` (the day, month and year views);
- a value ``-`` is no value (nothing recorded for that period).

A period shorter than a day is labelled with its end (a week's download begins at
``12.15 AM``), a day with its date. Each period becomes an interval of energy (mean power x
length): Sunny Portal gives no lifetime counter, so the values become an imported counter.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime, time, timedelta
from pathlib import Path

from collector.importing.generic_csv import FormatError
from collector.importing.rows import Row, RowInterval, RowProblem
from collector.importing.text_files import TextFile, csv_rows, parse_number
from collector.importing.timestamps import LocalTimes, TimestampError, zone

TIME_COLUMN = "Time period"
PRODUCTION_COLUMNS = ("PV generation", "Total generation")
#: Unit -> (factor to W or Wh, whether it is an energy).
UNITS: dict[str, tuple[float, bool]] = {
    "W": (1.0, False),
    "kW": (1e3, False),
    "MW": (1e6, False),
    "mW": (1e6, False),  # written so for megawatt in some downloads
    "Wh": (1.0, True),
    "kWh": (1e3, True),
    "MWh": (1e6, True),
}
_COLUMN_RE = re.compile(r"^(?P<name>.+?)\s*\[(?P<unit>[A-Za-z]+)\]$")
_EN_FORMATS = ("%m/%d/%Y %I.%M %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y")
_EU_FORMATS = ("%d.%m.%Y %H:%M", "%d-%m-%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y")
_ISO_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


class SunnyPortalCsv:
    """A Sunny Portal CSV download of one system."""

    unit = "line"

    def __init__(
        self,
        path: Path,
        *,
        device_map: Mapping[str, str] | None = None,
        device_id: str | None = None,
        gateway_id: str | None = None,
    ) -> None:
        self.path = path
        self.label = str(path)
        self.device_map = dict(device_map or {})
        self.device_id = device_id
        self.gateway_id = gateway_id
        self._file: TextFile | None = None
        #: The file's key/value lines (Version, Language, Time zone, System ID, ...).
        self.meta: dict[str, str] = {}

    def progress(self) -> float:
        return self._file.progress() if self._file is not None else 0.0

    def rows(self) -> Iterator[Row]:
        self._file = TextFile(self.path)
        try:
            yield from self._rows(self._file)
        finally:
            self._file.close()

    def _device(self) -> str:
        if self.device_id:
            return self.device_id
        for key in ("System ID", "System name", "Device name", "Serial number"):
            value = self.meta.get(key)
            if value and value in self.device_map:
                return self.device_map[value]
        system = self.meta.get("System name") or self.meta.get("System ID") or "?"
        raise FormatError(
            f"{self.path}: which device is Sunny Portal system {system!r}? Give --device or "
            f'--device-map "{system}=DEVICE"'
        )

    def _rows(self, text: TextFile) -> Iterator[Row]:
        lines = list(text.lines())  # a download is small (a year of 15 minutes: 35,040 rows)
        start = 1 if lines and lines[0].strip().lower().startswith("sep=") else 0
        separator = lines[0].strip()[4:5] if start else ";"
        rows = list(csv_rows(iter(lines[start:]), separator or ";"))
        header_at = None
        for position, (_, cells) in enumerate(rows):
            first = cells[0].strip() if cells else ""
            if first == TIME_COLUMN:
                header_at = position
                break
            if len(cells) >= 2 and first:
                self.meta[first] = cells[1].strip()
        if header_at is None:
            raise FormatError(
                f"{self.path}: no {TIME_COLUMN!r} header: not a Sunny Portal download"
            )
        header = [c.strip() for c in rows[header_at][1]]
        column, factor, is_energy = self._production(header)
        tz_name = self.meta.get("Time zone") or "Europe/Amsterdam"
        tz = zone(tz_name)
        assert tz is not None
        language = self.meta.get("Language", "en-US")
        decimal_comma = not language.lower().startswith("en")
        device = self._device()
        times = LocalTimes(tz)
        parsed: list[tuple[int, datetime | None, bool, float | None, Row | None]] = []
        for number, cells in rows[header_at + 1 :]:
            line = number + start
            if not any(c.strip() for c in cells):
                continue
            original = dict(zip(header, cells, strict=False))
            if len(cells) <= column:
                parsed.append((line, None, False, None, RowProblem(
                    line, "malformed_row", "fewer cells than the header", original)))  # fmt: skip
                continue
            try:
                local, is_day = _parse_time(cells[0], language)
                ts = times.to_utc(local, device)
                value = parse_number(cells[column], decimal_comma=decimal_comma)
            except TimestampError as exc:
                parsed.append((line, None, False, None, RowProblem(line, exc.reason, exc.detail,
                                                                   original)))  # fmt: skip
                continue
            except ValueError:
                parsed.append((line, None, False, None, RowProblem(
                    line, "invalid_interval_energy", f"{cells[column]!r} is not a number",
                    original)))  # fmt: skip
                continue
            parsed.append((line, ts, is_day, value, None))
        step = _step([t for _, t, day, _, _ in parsed if t is not None and not day])
        for line, label, is_day, value, problem in parsed:
            if problem is not None:
                yield problem
                continue
            if value is None or label is None:
                continue  # nothing recorded for this period
            ts = label
            if is_day:
                begin = ts
                local_next = (ts.astimezone(tz) + timedelta(days=1)).date()
                end = datetime.combine(local_next, time(0), tzinfo=tz).astimezone(ts.tzinfo)
            elif step is None:
                yield RowProblem(line, "invalid_interval_s", "cannot tell the period length")
                continue
            else:
                begin, end = ts - step, ts
            hours = (end - begin).total_seconds() / 3600.0
            energy = value * factor if is_energy else value * factor * hours
            yield RowInterval(line, device, begin, end, energy, self.gateway_id)

    def _production(self, header: list[str]) -> tuple[int, float, bool]:
        """Index, factor to W/Wh and kind of the production column."""
        found: dict[str, tuple[int, str]] = {}
        for i, h in enumerate(header):
            m = _COLUMN_RE.match(h)
            if m:
                found[m.group("name").strip()] = (i, m.group("unit"))
        for name in PRODUCTION_COLUMNS:
            if name in found:
                i, unit = found[name]
                if unit not in UNITS:
                    raise FormatError(f"{self.path}: unit {unit!r} of {name!r} is not known")
                factor, is_energy = UNITS[unit]
                return i, factor, is_energy
        raise FormatError(
            f"{self.path}: no production column ({' or '.join(PRODUCTION_COLUMNS)} [unit]); "
            "the header has " + ", ".join(repr(h) for h in header)
        )


def _parse_time(text: str, language: str) -> tuple[datetime, bool]:
    """A period label: (local wall-clock time, whether it names a whole day)."""
    value = text.strip()
    formats = (_EN_FORMATS if language.lower().startswith("en") else _EU_FORMATS) + _ISO_FORMATS
    for layout in formats:
        try:
            parsed = datetime.strptime(value, layout)  # noqa: DTZ007 - the file's zone follows
        except ValueError:
            continue
        return parsed, "%H" not in layout and "%I" not in layout
    raise TimestampError("invalid_ts", f"{value!r} is not a Sunny Portal time ({language})")


def _step(times: list[datetime]) -> timedelta | None:
    """The most common distance between consecutive period labels (the period length)."""
    if len(times) < 2:
        return None
    gaps = Counter(b - a for a, b in itertools.pairwise(times) if b > a)
    return gaps.most_common(1)[0][0] if gaps else None
