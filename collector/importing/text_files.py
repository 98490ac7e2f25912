"""Reading the text formats: opening (plain or gzip, any byte-order mark), the separator,
numbers written the local way, and progress through the file."""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

#: Separators a header line is checked for, in this order of preference on a tie.
SEPARATORS = (",", ";", "\t")


class TextFile:
    """A text file read line by line with the share already read (for the progress bar)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = max(1, path.stat().st_size)
        self._raw: BinaryIO = path.open("rb")
        head = self._raw.read(2)
        self._raw.seek(0)
        binary: IO[bytes] | gzip.GzipFile = (
            gzip.GzipFile(fileobj=self._raw) if head == b"\x1f\x8b" else self._raw
        )
        # utf-8-sig drops an Excel byte-order mark; a byte that is not UTF-8 (an old Windows
        # export) becomes U+FFFD, so the cell holding it is refused with its line, not the file.
        self.text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")

    def lines(self) -> Iterator[str]:
        """The file's lines, with their line ends."""
        yield from self.text

    def progress(self) -> float:
        """Share of the file read so far, 0..1 (compressed bytes for a gzip file)."""
        try:
            return min(1.0, self._raw.tell() / self.size)
        except (OSError, ValueError):
            return 1.0

    def close(self) -> None:
        self.text.close()
        self._raw.close()


def sniff_separator(header: str) -> str:
    """The separator a header line uses: the one of :data:`SEPARATORS` it has most of."""
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def csv_rows(lines: Iterator[str], separator: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of CSV text whose lines start at line 1 (quoted line ends kept)."""
    reader = csv.reader(lines, delimiter=separator)
    start = 1
    for cells in reader:
        yield start, cells
        start = reader.line_num + 1


def parse_number(text: str, *, decimal_comma: bool = False) -> float | None:
    """A number as written in a file; None for an empty cell or a dash (no value).

    ``decimal_comma``: ``1.234,5`` (Dutch, German); otherwise ``1,234.5`` or ``1234.5``.
    Raises ValueError for anything else, and for infinity or NaN.
    """
    value = text.strip().replace("\u00a0", "").replace(" ", "")
    if value in ("", "-", "--"):
        return None
    # decimal comma: dots group thousands; otherwise commas do
    value = value.replace(".", "").replace(",", ".") if decimal_comma else value.replace(",", "")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    return number
