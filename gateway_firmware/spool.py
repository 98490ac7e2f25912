"""The gateway's durable spool: every reading is committed here before it is published.

A reading is deleted only after the broker acknowledged (PUBACK) the message that carried it,
so a power cut, a crash or a network outage never loses a reading that was polled; after an
outage the backlog is replayed oldest first. The spool is bounded: when it is full the
oldest readings are dropped, counted (``dropped_total``, reported as ``spool_dropped`` in the
gateway's status message) and logged at ERROR level, because dropped readings are missing
from the members' yields.

Inverter readings and grid-meter readings (P1, SunSpec meters) share the spool and its
guarantees: each row carries its ``kind`` (``reading`` or ``meter``), and the publisher sends
each kind on its own topic.

The spool is one SQLite file in WAL mode. One connection is used by one thread (the gateway's
main loop); ``zonnewijk-gateway spool`` opens the file read-only while the service runs.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from zonnewijk_wire import MeterReading, Reading, to_wire_dict

log = logging.getLogger(__name__)

#: 30 days at a 10 s interval for two inverters is 518,400 readings; the default keeps 35 days.
DEFAULT_MAX_READINGS = 604_800

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    payload TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'reading'
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0), ('dropped_total', 0), ('schema', 1);
-- Optional reconciliation record (``audit=True``): the key of every reading ever committed,
-- written in the same transaction as the reading, never deleted by publishing.
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    payload TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'reading'
);
"""

# Readings polled while the wall clock was not synchronised (gateway_firmware/timekeeping.py):
# kept here with the monotonic time and the boot of their poll until the clock syncs, then
# re-stamped and moved into ``readings`` (``released`` is the new reading id; rows are deleted
# once released unless ``audit`` is on). ``clock_syncs`` records each mapping used.
_HELD_SCHEMA = """
CREATE TABLE IF NOT EXISTS held (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    wall_ms INTEGER NOT NULL,
    mono_ns INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    released INTEGER
);
CREATE TABLE IF NOT EXISTS clock_syncs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    boot_id TEXT NOT NULL,
    sync_wall_ns INTEGER NOT NULL,
    sync_mono_ns INTEGER NOT NULL,
    source TEXT NOT NULL,
    restamped INTEGER NOT NULL,
    time_unknown INTEGER NOT NULL
);
-- The newest stamp given to a time_unknown reading per device, so later ones never repeat it.
CREATE TABLE IF NOT EXISTS unknown_time_guard (
    device_id TEXT PRIMARY KEY,
    last_ms INTEGER NOT NULL
);
"""

#: The kinds of row in the spool: an inverter's :class:`Reading`, a grid meter's
#: :class:`MeterReading`.
READING_KIND = "reading"
METER_KIND = "meter"

#: What the spool holds: inverter readings and grid-meter readings.
Spoolable = Reading | MeterReading


def kind_of(item: Spoolable) -> str:
    """The spool kind of a reading (``reading`` or ``meter``)."""
    return METER_KIND if isinstance(item, MeterReading) else READING_KIND


class SpoolError(RuntimeError):
    """The spool file cannot be used (wrong file, corrupt, unwritable, in use)."""


def _exclusive_lock(path: Path) -> IO[bytes]:
    """Hold ``<spool>.lock`` so that only one gateway process writes a spool.

    Two writers would both publish the same readings and keep wrong depth counts. The lock is
    released when the file is closed or the process dies (also by kill -9).
    """
    lock_path = Path(f"{path}.lock")
    handle = lock_path.open("a+b")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().decode(errors="replace").strip() or "unknown"
        handle.close()
        raise SpoolError(
            f"spool {path} is in use by another gateway process (pid {holder}): stop it "
            "first (systemctl stop zonnewijk-gateway), or give this one its own spool.path"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle


@dataclass(frozen=True)
class SpooledReading:
    """A reading as stored in the spool, with the id that identifies it until it is acked."""

    id: int
    device_id: str
    ts_ms: int
    payload: str
    kind: str = READING_KIND

    def reading(self) -> Reading:
        """The stored inverter reading, validated again (ValueError for a meter reading)."""
        if self.kind != READING_KIND:
            raise ValueError(f"spool row {self.id} holds a {self.kind} reading, not an inverter's")
        return Reading.model_validate_json(self.payload)

    def item(self) -> Spoolable:
        """The stored reading of whichever kind, validated again."""
        if self.kind == METER_KIND:
            return MeterReading.model_validate_json(self.payload)
        return self.reading()


@dataclass(frozen=True)
class SpoolStats:
    depth: int
    oldest: datetime | None
    newest: datetime | None
    dropped_total: int
    seq: int
    max_readings: int
    size_bytes: int


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ts_ms(value: datetime) -> int:
    """Milliseconds since the epoch, truncated like the wire format's timestamps [ms]."""
    return (value - _EPOCH) // timedelta(milliseconds=1)


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


class Spool:
    """A bounded, durable FIFO of readings in a SQLite file.

    Parameters
    ----------
    path
        The SQLite file; its directory must exist. ``:memory:`` is not allowed (nothing
        would survive a restart).
    max_readings
        Most readings kept; beyond it the oldest are dropped [readings].
    audit
        Also record the key of every committed reading in the ``audit`` table (for
        reconciliation tests; grows without bound, so off in production).
    read_only
        Open for inspection only (``zonnewijk-gateway spool`` while the service runs).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_readings: int = DEFAULT_MAX_READINGS,
        audit: bool = False,
        read_only: bool = False,
    ) -> None:
        if max_readings < 1:
            raise ValueError(f"max_readings must be at least 1, got {max_readings}")
        self.path = Path(path)
        self.max_readings = max_readings
        self.audit = audit
        self.read_only = read_only
        self._lock_file: IO[bytes] | None = None
        if str(path) == ":memory:":
            raise ValueError("the spool must be a file: an in-memory spool loses readings")
        if read_only:
            if not self.path.exists():
                raise SpoolError(f"spool file {self.path} does not exist")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._db = sqlite3.connect(
                uri, uri=True, isolation_level=None, timeout=10, check_same_thread=False
            )
        else:
            if not self.path.parent.is_dir():
                raise SpoolError(
                    f"spool directory {self.path.parent} does not exist: create it "
                    "(the systemd unit's StateDirectory= does this for /var/lib/zonnewijk-gateway)"
                )
            self._lock_file = _exclusive_lock(self.path)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a commit is explicit.
            # check_same_thread=False: built on one thread, used by the service loop's thread;
            # never by two threads at once.
            self._db = sqlite3.connect(
                self.path, isolation_level=None, timeout=10, check_same_thread=False
            )
        try:
            self._configure()
            self._depth = self._count()
            self._dropped = self._meta("dropped_total")  # kept here: asked every loop
        except sqlite3.DatabaseError as exc:
            self.close()
            raise SpoolError(f"{self.path} is not a usable spool database: {exc}") from exc

    def _configure(self) -> None:
        db = self._db
        if not self.read_only:
            # WAL: a commit appends to the write-ahead log, readers (the `spool` command) do
            # not block the writer, and a crash at any point leaves the last committed state.
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SpoolError(f"cannot switch {self.path} to WAL mode (got {mode})")
            # synchronous=FULL: in WAL mode NORMAL survives a process crash but may lose the
            # last transactions on a power cut (the WAL is only fsynced at checkpoints). The
            # gateway sits on a socket someone unplugs, and a reading that is published after
            # its commit must still be there if the broker's PUBACK never came, so each commit
            # fsyncs the WAL. The cost is one fsync per poll and per acknowledged message,
            # a few milliseconds on an SD card every few seconds.
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.executescript(_HELD_SCHEMA)  # issue 18: readings held for an unsynced clock
        else:
            db.execute("PRAGMA query_only=ON")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"readings", "meta"} <= tables:
            raise SpoolError(f"{self.path} is a SQLite file but not a gateway spool")
        # Spools written before meter readings (issue 17) have no kind column: every row is an
        # inverter reading. The service adds the column; a read-only look reads it as such.
        self._kind_sql = "kind"
        for table in ("readings", "audit"):
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if columns and "kind" not in columns:
                if self.read_only:
                    self._kind_sql = f"'{READING_KIND}'"
                else:
                    db.execute(
                        f"ALTER TABLE {table} ADD COLUMN kind TEXT NOT NULL DEFAULT '{READING_KIND}'"
                    )

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- writing --------------------------------------------------------------------------

    def append(self, readings: Sequence[Spoolable]) -> list[int]:
        """Commit readings (inverters' or meters', durably) and return their spool ids, oldest
        first.

        When the spool would exceed ``max_readings`` the oldest readings are dropped in the
        same transaction, counted and logged.
        """
        if not readings:
            return []
        rows = [
            (
                r.device_id,
                _ts_ms(r.ts),
                json.dumps(to_wire_dict(r), separators=(",", ":")),
                kind_of(r),
            )
            for r in readings
        ]
        db = self._db
        ids: list[int] = []
        dropped = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                cur = db.execute(
                    "INSERT INTO readings (device_id, ts_ms, payload, kind) VALUES (?, ?, ?, ?)",
                    row,
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
            if self.audit:
                db.executemany(
                    "INSERT INTO audit (id, device_id, ts_ms, payload, kind) VALUES (?, ?, ?, ?, ?)",
                    [(i, *row) for i, row in zip(ids, rows, strict=True)],
                )
            excess = self._depth + len(rows) - self.max_readings
            if excess > 0:
                dropped = self._drop_oldest(excess)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._depth += len(rows) - dropped
        self._dropped += dropped
        if dropped:
            log.error(
                "spool full (%d readings): dropped the %d oldest readings, %d dropped in total; "
                "these readings are lost for billing - check the broker connection",
                self.max_readings,
                dropped,
                self.dropped_total(),
            )
        return ids

    def _drop_oldest(self, count: int) -> int:
        cur = self._db.execute(
            "DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?)",
            (count,),
        )
        dropped = cur.rowcount
        self._db.execute(
            "UPDATE meta SET value = value + ? WHERE key = 'dropped_total'", (dropped,)
        )
        return dropped

    def delete(self, ids: Iterable[int]) -> int:
        """Remove acknowledged readings; returns how many were still there."""
        id_list = list(ids)
        if not id_list:
            return 0
        db = self._db
        deleted = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                marks = ",".join("?" * len(chunk))
                deleted += db.execute(f"DELETE FROM readings WHERE id IN ({marks})", chunk).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._depth -= deleted
        return deleted

    def next_seq(self) -> int:
        """The next per-gateway message sequence number, persisted before it is returned."""
        row = self._db.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value"
        ).fetchall()  # fetch all: the statement (and its autocommit) must run to completion
        return int(row[0][0])

    # --- reading --------------------------------------------------------------------------

    def after(self, after_id: int, limit: int) -> list[SpooledReading]:
        """Up to ``limit`` readings with an id above ``after_id``, oldest first."""
        rows = self._db.execute(
            f"SELECT id, device_id, ts_ms, payload, {self._kind_sql} FROM readings"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [SpooledReading(*row) for row in rows]

    def iter_all(self, batch: int = 1000) -> Iterator[SpooledReading]:
        """Every reading in the spool, oldest first."""
        last = 0
        while True:
            rows = self.after(last, batch)
            if not rows:
                return
            yield from rows
            last = rows[-1].id

    def depth(self) -> int:
        """Readings waiting for an acknowledgement [readings]."""
        return self._depth

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])

    def dropped_total(self) -> int:
        """Readings dropped by the full spool, ever (the meta row, mirrored in memory)."""
        return self._dropped

    def seq(self) -> int:
        """The last sequence number handed out."""
        return self._meta("seq")

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def stats(self) -> SpoolStats:
        oldest, newest = self._db.execute(
            "SELECT (SELECT ts_ms FROM readings ORDER BY id LIMIT 1),"
            " (SELECT ts_ms FROM readings ORDER BY id DESC LIMIT 1)"
        ).fetchone()
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return SpoolStats(
            depth=self._count(),
            oldest=_from_ms(oldest),
            newest=_from_ms(newest),
            dropped_total=self.dropped_total(),
            seq=self.seq(),
            max_readings=self.max_readings,
            size_bytes=size,
        )

    def audited(self) -> list[SpooledReading]:
        """Every reading committed while ``audit`` was on, published or not, in order."""
        return [
            SpooledReading(int(i), str(d), int(t), str(p), str(k))
            for i, d, t, p, k in self._db.execute(
                f"SELECT id, device_id, ts_ms, payload, {self._kind_sql} FROM audit ORDER BY id"
            )
        ]

    # --- storage faults (issue 18, gateway_firmware/spool_guard.py) -------------------------

    def integrity_problems(self) -> list[str]:
        """What ``PRAGMA quick_check`` finds wrong (empty when the file is sound)."""
        rows = [str(r[0]) for r in self._db.execute("PRAGMA quick_check").fetchall()]
        return [] if rows == ["ok"] else rows

    def last_id(self) -> int:
        """The highest reading id ever handed out (AUTOINCREMENT's record)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
        return int(row[0]) if row else 0

    def continue_after(self, *, last_id: int, last_seq: int) -> None:
        """Hand out reading ids above ``last_id`` and sequence numbers above ``last_seq``.

        A fresh spool that replaces a corrupt one must not reuse the ids of readings that are
        still in flight (their PUBACK deletes by id) nor restart the message sequence.
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if last_id > self.last_id():
                db.execute("DELETE FROM sqlite_sequence WHERE name = 'readings'")
                db.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('readings', ?)", (last_id,)
                )
            db.execute("UPDATE meta SET value = MAX(value, ?) WHERE key = 'seq'", (last_seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # --- readings held for an unsynchronised clock (issue 18, gateway_firmware/timekeeping.py)

    def _has_held_tables(self) -> bool:
        return (
            self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='held'"
            ).fetchone()
            is not None
        )

    def hold(self, rows: Sequence[HeldRow]) -> list[int]:
        """Commit readings polled while the clock was unsynchronised; returns their held ids."""
        if not rows:
            return []
        db = self._db
        ids: list[int] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                cur = db.execute(
                    "INSERT INTO held (device_id, kind, payload, wall_ms, mono_ns, boot_id)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        row.item.device_id,
                        kind_of(row.item),
                        json.dumps(to_wire_dict(row.item), separators=(",", ":")),
                        row.wall_ms,
                        row.mono_ns,
                        row.boot_id,
                    ),
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return ids

    def held(self, limit: int = 1000) -> list[HeldReading]:
        """Held readings not yet released, oldest first."""
        if self.read_only and not self._has_held_tables():
            return []
        rows = self._db.execute(
            "SELECT id, device_id, kind, payload, wall_ms, mono_ns, boot_id FROM held"
            " WHERE released IS NULL ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [HeldReading(*row) for row in rows]

    def held_depth(self) -> int:
        """Readings held for the clock [readings]."""
        if self.read_only and not self._has_held_tables():
            return 0
        row = self._db.execute("SELECT COUNT(*) FROM held WHERE released IS NULL").fetchone()
        return int(row[0])

    def held_audited(self) -> list[tuple[int, int | None]]:
        """(held id, reading id it was released as) of every held row kept by ``audit``."""
        if self.read_only and not self._has_held_tables():
            return []
        return [
            (int(i), None if r is None else int(r))
            for i, r in self._db.execute("SELECT id, released FROM held ORDER BY id")
        ]

    def release(self, released: Sequence[tuple[int, int]]) -> None:
        """Mark held rows (held id, reading id) as moved into ``readings``: deleted, or kept
        with the reading id when ``audit`` is on."""
        if not released:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if self.audit:
                db.executemany(
                    "UPDATE held SET released = ? WHERE id = ?",
                    [(reading_id, held_id) for held_id, reading_id in released],
                )
            else:
                db.executemany("DELETE FROM held WHERE id = ?", [(h,) for h, _ in released])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def record_sync(
        self,
        *,
        boot_id: str,
        sync_wall_ns: int,
        sync_mono_ns: int,
        source: str,
        restamped: int,
        time_unknown: int,
    ) -> None:
        """Keep the mapping (wall and monotonic time at the sync) used to re-stamp readings."""
        self._db.execute(
            "INSERT INTO clock_syncs (boot_id, sync_wall_ns, sync_mono_ns, source, restamped,"
            " time_unknown) VALUES (?, ?, ?, ?, ?, ?)",
            (boot_id, sync_wall_ns, sync_mono_ns, source, restamped, time_unknown),
        )

    def clock_syncs(self) -> list[ClockSyncRecord]:
        """Every recorded mapping, oldest first."""
        if self.read_only and not self._has_held_tables():
            return []
        return [
            ClockSyncRecord(*row)
            for row in self._db.execute(
                "SELECT boot_id, sync_wall_ns, sync_mono_ns, source, restamped, time_unknown"
                " FROM clock_syncs ORDER BY id"
            )
        ]

    def unknown_time_guard(self) -> dict[str, int]:
        """The newest stamp per device given to a ``time_unknown`` reading [ms]."""
        if self.read_only and not self._has_held_tables():
            return {}
        return {
            str(d): int(t)
            for d, t in self._db.execute("SELECT device_id, last_ms FROM unknown_time_guard")
        }

    def set_unknown_time_guard(self, last_ms: dict[str, int]) -> None:
        self._db.executemany(
            "INSERT INTO unknown_time_guard (device_id, last_ms) VALUES (?, ?)"
            " ON CONFLICT (device_id) DO UPDATE SET last_ms = MAX(last_ms, excluded.last_ms)",
            list(last_ms.items()),
        )

    def newest_ts_ms(self) -> dict[str, int]:
        """The newest stamp per device among the waiting readings [ms since the epoch]."""
        return {
            str(d): int(t)
            for d, t in self._db.execute(
                "SELECT device_id, MAX(ts_ms) FROM readings GROUP BY device_id"
            )
        }


@dataclass(frozen=True)
class HeldRow:
    """A reading to hold: its unsynchronised wall stamp, monotonic time and boot."""

    item: Spoolable
    wall_ms: int
    mono_ns: int
    boot_id: str


@dataclass(frozen=True)
class HeldReading:
    """A held reading as stored."""

    id: int
    device_id: str
    kind: str
    payload: str
    wall_ms: int
    mono_ns: int
    boot_id: str

    def item(self) -> Spoolable:
        if self.kind == METER_KIND:
            return MeterReading.model_validate_json(self.payload)
        return Reading.model_validate_json(self.payload)


@dataclass(frozen=True)
class ClockSyncRecord:
    """One recorded mapping from monotonic to wall time (``clock_syncs``)."""

    boot_id: str
    sync_wall_ns: int
    sync_mono_ns: int
    source: str
    restamped: int
    time_unknown: int
