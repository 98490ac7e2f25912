"""A gateway's spool file (its SQLite database), read by its documented schema.

The spool (``docs/wire-format.md``, *The gateway's spool*; written by the gateway's
``spool`` module, which the server does not import) is one SQLite file with the tables

- ``readings(id INTEGER PRIMARY KEY, device_id TEXT, ts_ms INTEGER, payload TEXT)``: every
  reading polled and not yet acknowledged by the broker, ``payload`` the reading's wire v1
  JSON object;
- ``meta(key TEXT PRIMARY KEY, value INTEGER)``: ``schema`` (1), ``seq``, ``dropped_total``;
- ``audit(id, device_id, ts_ms, payload)``: only on gateways run with auditing (tests).

A recovered SD card is replayed from ``readings``, oldest first; each reading gets the
``replayed`` flag. The file is opened read-only and never changed (``immutable`` when the
card's directory is not writable). The spool does not name its gateway: give
``--gateway`` or a fleet that says which gateway reads each device.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from collector.importing.generic_csv import FormatError
from collector.importing.rows import Row, RowProblem, RowReading

#: The spool schema this reader knows.
SPOOL_SCHEMA = 1
_REPLAYED = "replayed"
_BATCH = 5000


def is_spool(path: Path) -> bool:
    """Whether a file starts like a SQLite database."""
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


class SpoolFile:
    """The ``readings`` of a spool file."""

    unit = "spool row"

    def __init__(self, path: Path, *, gateway_id: str | None = None) -> None:
        self.path = path
        self.label = str(path)
        self.gateway_id = gateway_id
        self._done = 0
        self._total = 1

    def progress(self) -> float:
        return min(1.0, self._done / self._total)

    def _connect(self) -> sqlite3.Connection:
        uri = f"file:{self.path.resolve()}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A WAL file next to it that read-only mode cannot open (a card mounted
            # read-only): read the file as it is.
            db = sqlite3.connect(uri + "&immutable=1", uri=True)
        return db

    def rows(self) -> Iterator[Row]:
        try:
            db = self._connect()
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"{self.path} is not a readable SQLite file: {exc}") from None
        try:
            if not {"readings", "meta"} <= tables:
                raise FormatError(f"{self.path} is a SQLite file but not a gateway spool")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            schema = int(row[0]) if row else None
            if schema != SPOOL_SCHEMA:
                raise FormatError(
                    f"{self.path}: spool schema {schema}, this reader knows {SPOOL_SCHEMA}"
                )
            self._total = max(1, int(db.execute("SELECT count(*) FROM readings").fetchone()[0]))
            last = 0
            while True:
                batch = db.execute(
                    "SELECT id, device_id, ts_ms, payload FROM readings WHERE id > ? "
                    "ORDER BY id LIMIT ?",
                    (last, _BATCH),
                ).fetchall()
                if not batch:
                    return
                for spool_id, device_id, ts_ms, payload in batch:
                    self._done += 1
                    yield self._row(int(spool_id), str(device_id), int(ts_ms), payload)
                last = int(batch[-1][0])
        finally:
            db.close()

    def _row(self, spool_id: int, device_id: str, ts_ms: int, payload: object) -> Row:
        try:
            wire = json.loads(payload) if isinstance(payload, str | bytes) else None
        except ValueError as exc:
            return RowProblem(spool_id, "invalid_json", f"payload: {exc}", payload)
        if not isinstance(wire, dict):
            return RowProblem(spool_id, "invalid_reading", "payload is not a JSON object", payload)
        flags = wire.get("flags")
        if isinstance(flags, list) and _REPLAYED not in flags:
            wire["flags"] = [*flags, _REPLAYED]
        elif flags is None:
            wire["flags"] = [_REPLAYED]
        ts = datetime.fromtimestamp(ts_ms / 1000.0, UTC)
        return RowReading(
            spool_id, str(wire.get("device_id", device_id)), ts, wire, self.gateway_id
        )
