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

SD cards die of writes (issue 18), so a reading costs one fsynced transaction and as few
written pages as the promise allows (``bench/sd_writes.py``, docs/field-faults.md):

- the reading's insert and the deletion of the readings acknowledged since the last commit are
  one transaction (an acknowledged reading waits for the next commit, at most
  :data:`DELETE_FOLD_S`, before it leaves the file; until then it is hidden from the
  publisher; after a crash it may be sent once more, which the collector's point key makes
  harmless: docs/ARCHITECTURE decision 2);
- the sequence number of the message that will carry a new reading at once is written on the
  reading's own row (``append(..., messages=1)``, column ``seq``: no page and no transaction
  of its own; ``meta.seq`` is written only when a deletion would take the highest number with
  it); it stays one number per message without holes, which the collector checks
  (collector/ingest/sequence_gaps.py);
- reading ids are reserved on disk :data:`RESERVE_BLOCK` at a time (a restart skips the rest
  of a block: ids only grow; no one outside the gateway sees them);
- pages of :data:`PAGE_SIZE_B` bytes (a reading takes 400-500 bytes), and no AUTOINCREMENT
  (its ``sqlite_sequence`` row was one more page per insert);
- an fsync only where a power cut could lose a reading (``append(..., durable=)``): a reading
  that cannot be sent at once is committed with ``synchronous=FULL``; one that is sent at once
  is committed with ``NORMAL`` and fsynced (:meth:`Spool.sync_due`) if its PUBACK has not come
  within :data:`SYNC_AFTER_S`. An acknowledged reading is at the broker, so losing it from the
  spool is harmless; deletions are never fsynced on their own.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from zonnewijk_wire import MeterReading, Reading, to_wire_dict

log = logging.getLogger(__name__)

#: 30 days at a 10 s interval for two inverters is 518,400 readings; the default keeps 35 days.
DEFAULT_MAX_READINGS = 604_800
#: Page size of a new spool [B]: a commit writes whole pages to the WAL, and a reading is about
#: 400-500 bytes, so 1 KiB pages write a quarter of the 4 KiB default (bench/sd_writes.py).
PAGE_SIZE_B = 1024
#: Reading ids are reserved on disk this many at a time.
RESERVE_BLOCK = 1000
#: An acknowledged reading is deleted with the next commit, or after this long without one [s].
DELETE_FOLD_S = 15.0
#: ... or once this many acknowledged readings wait to be deleted (a replay) [readings].
DELETE_FOLD_ROWS = 1000
#: A reading committed without an fsync (it was sent at once) is fsynced when its PUBACK has
#: not come within this long [s].
SYNC_AFTER_S = 1.0
#: An older spool (4 KiB pages, AUTOINCREMENT) is rebuilt at start when it holds at most this
#: many readings (seconds on a Pi); a bigger backlog is rebuilt on a later start [readings].
UPGRADE_MAX_READINGS = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    payload TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'reading',
    -- the highest sequence number handed out with this row (append(messages=)), else NULL
    seq INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- the last sequence number is the higher of meta.seq and readings.seq; last_id the highest
-- reading id reserved (RESERVE_BLOCK).
INSERT OR IGNORE INTO meta (key, value)
    VALUES ('seq', 0), ('dropped_total', 0), ('schema', 1), ('last_id', 0);
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
    clock
        Monotonic clock for folding deletes (:data:`DELETE_FOLD_S`) [s].
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_readings: int = DEFAULT_MAX_READINGS,
        audit: bool = False,
        read_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_readings < 1:
            raise ValueError(f"max_readings must be at least 1, got {max_readings}")
        self.path = Path(path)
        self.max_readings = max_readings
        self.audit = audit
        self.read_only = read_only
        self._clock = clock
        self._lock_file: IO[bytes] | None = None
        #: acknowledged readings not yet deleted from the file (see DELETE_FOLD_S)
        self._acked: dict[int, None] = {}
        self._acked_since = 0.0
        #: readings committed without an fsync and not yet acknowledged: id -> commit time [s]
        self._unsynced: dict[int, float] = {}
        #: sequence numbers written with a reading's commit, for the messages that carry it
        self._prepaid: list[int] = []
        self._sync_mode = "FULL"
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
            # ids and sequence numbers go on after the reserved ones: a crash may have used
            # any of them
            self._id_reserved = max(self._meta("last_id"), self._autoincrement_seq())
            self._last_id = max(self._id_reserved, self._max_id())
            self._meta_seq = self._meta("seq")
            self._seq = max(self._meta_seq, self._max_row_seq())
            self._dropped = self._meta("dropped_total")  # kept here: asked every loop
        except sqlite3.DatabaseError as exc:
            self.close()
            raise SpoolError(f"{self.path} is not a usable spool database: {exc}") from exc

    def _configure(self) -> None:
        db = self._db
        if not self.read_only:
            # a new file gets small pages (ignored by an existing one: see _upgrade_storage)
            db.execute(f"PRAGMA page_size={PAGE_SIZE_B}")
            # WAL: a commit appends to the write-ahead log, readers (the `spool` command) do
            # not block the writer, and a crash at any point leaves the last committed state.
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SpoolError(f"cannot switch {self.path} to WAL mode (got {mode})")
            # synchronous=FULL (fsync the WAL at each commit) unless append(durable=False):
            # with NORMAL a commit survives a crash of the process but not a power cut until
            # the kernel writes the WAL back (up to ~35 s later), so only readings that are on
            # their way to the broker are committed so, and fsynced if no PUBACK comes within
            # SYNC_AFTER_S (module doc; docs/field-faults.md, "Storage faults").
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
        columns = {row[1] for row in db.execute("PRAGMA table_info(readings)")}
        self._has_seq_column = "seq" in columns
        if not self._has_seq_column and not self.read_only:
            db.execute("ALTER TABLE readings ADD COLUMN seq INTEGER")
            self._has_seq_column = True
        if not self.read_only:
            self._upgrade_storage()

    def _upgrade_storage(self) -> None:
        """Rebuild a spool of an older release (AUTOINCREMENT, 4 KiB pages) when it is small.

        Both cost SD card writes on every reading (module doc). A big backlog is left as it is
        (it works the same, only writes more) and rebuilt on a later start, once drained.
        """
        db = self._db
        row = db.execute("SELECT sql FROM sqlite_master WHERE name = 'readings'").fetchone()
        create = str(row[0]) if row else ""
        autoincrement = re.search(r"\bAUTOINCREMENT\b", create, re.IGNORECASE) is not None
        page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        if not autoincrement and page_size == PAGE_SIZE_B:
            return
        waiting = self._count()
        if waiting > UPGRADE_MAX_READINGS:
            log.info(
                "spool %s has %d readings waiting: its storage is rebuilt (1 KiB pages, no "
                "AUTOINCREMENT: fewer SD card writes) on a start with at most %d",
                self.path,
                waiting,
                UPGRADE_MAX_READINGS,
            )
            return
        if autoincrement:
            new_create = re.sub(r"\s*\bAUTOINCREMENT\b", "", create, flags=re.IGNORECASE)
            new_create = re.sub(
                r"^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?[\"'`\[]?readings[\"'`\]]?",
                "CREATE TABLE readings_rebuilt",
                new_create,
                flags=re.IGNORECASE,
            )
            db.execute("BEGIN IMMEDIATE")
            try:
                last = self._autoincrement_seq()
                db.execute(new_create)
                db.execute("INSERT INTO readings_rebuilt SELECT * FROM readings")
                db.execute("DROP TABLE readings")
                db.execute("ALTER TABLE readings_rebuilt RENAME TO readings")
                db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('last_id', 0)")
                db.execute("UPDATE meta SET value = MAX(value, ?) WHERE key = 'last_id'", (last,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        if page_size != PAGE_SIZE_B:
            # the page size of a WAL database can only change through a rollback journal
            try:
                db.execute("PRAGMA journal_mode=DELETE")
                db.execute(f"PRAGMA page_size={PAGE_SIZE_B}")
                db.execute("VACUUM")
            except sqlite3.OperationalError as exc:  # in use by a viewer, or no room for it
                log.warning("spool %s keeps %d B pages for now: %s", self.path, page_size, exc)
            finally:
                db.execute("PRAGMA journal_mode=WAL")
        log.info("spool %s rebuilt for fewer SD card writes (%d readings kept)", self.path, waiting)

    def _autoincrement_seq(self) -> int:
        """The id an older spool's AUTOINCREMENT handed out last (0 for a newer spool)."""
        try:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'readings'"
            ).fetchone()
        except sqlite3.OperationalError:  # no sqlite_sequence: never had AUTOINCREMENT
            return 0
        return int(row[0]) if row else 0

    def _max_row_seq(self) -> int:
        if not self._has_seq_column:
            return 0
        row = self._db.execute("SELECT MAX(seq) FROM readings").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _keep_seq(self, carried: int = 0) -> None:
        """Inside a transaction that deletes rows: write ``meta.seq`` unless a row written in
        it (``carried``) holds the highest number, which the deletion may take away."""
        highest = self._seq + len(self._prepaid)
        if highest > self._meta_seq and carried < highest:
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (highest,))
            self._meta_seq = highest

    def _max_id(self) -> int:
        row = self._db.execute("SELECT MAX(id) FROM readings").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Make unacknowledged readings durable, delete acknowledged ones, close the file."""
        try:
            if self._unsynced:
                self.sync()
            if self._acked and not self.read_only:
                self.flush_deletes()
        except (sqlite3.Error, OSError) as exc:  # acknowledged ones come again: harmless
            log.warning("closing the spool %s: %s", self.path, exc)
        finally:
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

    def append(
        self, readings: Sequence[Spoolable], *, durable: bool = True, messages: int = 0
    ) -> list[int]:
        """Commit readings (inverters' or meters') and return their spool ids, oldest first.

        ``durable``: fsync the commit (``synchronous=FULL``). With False the readings must be
        on their way to the broker: they are fsynced by :meth:`sync_due` unless their PUBACK
        (:meth:`delete`) comes within :data:`SYNC_AFTER_S`.

        ``messages``: sequence numbers to write in the same transaction, for the messages that
        will carry these readings at once; :meth:`next_seq` hands them out first.

        The acknowledged readings waiting to be deleted are deleted in the same transaction.
        When the spool would exceed ``max_readings`` the oldest readings are dropped in the
        same transaction, counted and logged.
        """
        if not readings:
            return []
        self._set_sync("FULL" if durable else "NORMAL")
        first = self._last_id + 1
        ids = list(range(first, first + len(readings)))
        rows = [
            (
                reading_id,
                r.device_id,
                _ts_ms(r.ts),
                json.dumps(to_wire_dict(r), separators=(",", ":")),
                kind_of(r),
            )
            for reading_id, r in zip(ids, readings, strict=True)
        ]
        prepaid = self._seq + len(self._prepaid) + messages
        # the last row carries the highest number handed out with these readings
        seqs = [None] * (len(rows) - 1) + [prepaid if messages else None]
        db = self._db
        dropped = 0
        reserved = self._id_reserved
        db.execute("BEGIN IMMEDIATE")
        try:
            if self._acked:
                self._keep_seq(prepaid if messages else 0)
                self._delete_acked()
            db.executemany(
                "INSERT INTO readings (id, device_id, ts_ms, payload, kind, seq)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, seq) for row, seq in zip(rows, seqs, strict=True)],
            )
            if ids[-1] > reserved:
                reserved = ids[-1] + RESERVE_BLOCK - 1
                db.execute("UPDATE meta SET value = ? WHERE key = 'last_id'", (reserved,))
            if self.audit:
                db.executemany(
                    "INSERT INTO audit (id, device_id, ts_ms, payload, kind) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            excess = self._depth + len(rows) - self.max_readings
            if excess > 0:
                self._keep_seq(prepaid if messages else 0)
                dropped = self._drop_oldest(excess)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._acked.clear()
        self._last_id = ids[-1]
        self._id_reserved = reserved
        self._prepaid += range(prepaid - messages + 1, prepaid + 1)
        if durable:
            self._unsynced.clear()  # the fsync made every earlier commit durable too
        else:
            now = self._clock()
            self._unsynced.update(dict.fromkeys(ids, now))
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

    def _delete_acked(self) -> None:
        """Delete the acknowledged readings (inside the caller's transaction)."""
        id_list = list(self._acked)
        for start in range(0, len(id_list), 500):
            chunk = id_list[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self._db.execute(f"DELETE FROM readings WHERE id IN ({marks})", chunk)

    def delete(self, ids: Iterable[int]) -> int:
        """Take acknowledged readings out of the spool; returns how many were still there.

        They are hidden at once and deleted from the file with the next commit (or by
        :meth:`flush_due`), so an acknowledgement costs no transaction of its own.
        """
        fresh = [i for i in dict.fromkeys(ids) if i not in self._acked]
        present: list[int] = []
        for start in range(0, len(fresh), 500):
            chunk = fresh[start : start + 500]
            marks = ",".join("?" * len(chunk))
            present += [
                int(r[0])
                for r in self._db.execute(f"SELECT id FROM readings WHERE id IN ({marks})", chunk)
            ]
        if present and not self._acked:
            self._acked_since = self._clock()
        self._acked.update(dict.fromkeys(present))
        for i in present:
            self._unsynced.pop(i, None)  # at the broker now: no fsync needed
        self._depth -= len(present)
        if len(self._acked) >= DELETE_FOLD_ROWS:
            self.flush_deletes()
        return len(present)

    def flush_due(self) -> bool:
        """Delete acknowledged readings that waited :data:`DELETE_FOLD_S` for a commit; True
        when it did (the service calls this every turn of its loop)."""
        if self._acked and self._clock() - self._acked_since >= DELETE_FOLD_S:
            self.flush_deletes()
            return True
        return False

    def flush_deletes(self) -> None:
        """Delete the acknowledged readings now, in a transaction of their own (not fsynced:
        lost by a power cut, they are sent once more, which is harmless)."""
        if not self._acked:
            return
        self._set_sync("NORMAL")
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._keep_seq()
            self._delete_acked()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._acked.clear()

    def _set_sync(self, mode: str) -> None:
        if mode != self._sync_mode:
            self._db.execute(f"PRAGMA synchronous={mode}")
            self._sync_mode = mode

    def sync_due(self) -> bool:
        """Fsync the WAL when a reading committed without it waited :data:`SYNC_AFTER_S` for
        its PUBACK; True when it did (the service calls this every turn of its loop)."""
        if self._unsynced and self._clock() - next(iter(self._unsynced.values())) >= SYNC_AFTER_S:
            self.sync()
            return True
        return False

    def sync(self) -> None:
        """Make every commit so far durable: fsync the WAL (what ``synchronous=FULL`` does at
        a commit)."""
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:  # checkpointed and removed: the database file was synced
            self._unsynced.clear()
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._unsynced.clear()

    @property
    def unsynced(self) -> int:
        """Readings committed without an fsync and not yet acknowledged [readings]."""
        return len(self._unsynced)

    @property
    def acked_waiting(self) -> int:
        """Acknowledged readings not yet deleted from the file [readings]."""
        return len(self._acked)

    def acked_ids(self) -> list[int]:
        """The ids of the acknowledged readings not yet deleted from the file."""
        return list(self._acked)

    def next_seq(self) -> int:
        """The next per-gateway message sequence number, persisted before it is returned (one
        written with a reading by ``append(messages=)`` first)."""
        if self._prepaid:
            self._seq = self._prepaid.pop(0)
            return self._seq
        self._set_sync("FULL")  # it only grows, also across a power cut
        self._db.execute(
            "UPDATE meta SET value = ? WHERE key = 'seq'", (self._seq + 1,)
        ).fetchall()  # fetch all: the statement (and its autocommit) must run to completion
        self._seq += 1
        self._meta_seq = self._seq
        return self._seq

    # --- reading --------------------------------------------------------------------------

    def after(self, after_id: int, limit: int) -> list[SpooledReading]:
        """Up to ``limit`` waiting readings with an id above ``after_id``, oldest first."""
        found: list[SpooledReading] = []
        cursor = after_id
        while len(found) < limit:
            rows = self._db.execute(
                f"SELECT id, device_id, ts_ms, payload, {self._kind_sql} FROM readings"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (cursor, limit),
            ).fetchall()
            found += [SpooledReading(*row) for row in rows if row[0] not in self._acked]
            if len(rows) < limit:
                break
            cursor = rows[-1][0]
        return found[:limit]

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
        """The last sequence number handed out (read-only: the last one written)."""
        return self._seq

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
            depth=self._count() - len(self._acked),
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
        """The highest reading id that may have been handed out (the reserved block's end)."""
        return max(self._id_reserved, self._last_id)

    def continue_after(self, *, last_id: int, last_seq: int) -> None:
        """Hand out reading ids above ``last_id`` and sequence numbers above ``last_seq``.

        A fresh spool that replaces a corrupt one must not reuse the ids of readings that are
        still in flight (their PUBACK deletes by id) nor restart the message sequence.
        """
        if last_id <= self._last_id and last_seq <= self._seq + len(self._prepaid):
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE meta SET value = MAX(value, ?) WHERE key = 'last_id'", (last_id,))
            db.execute("UPDATE meta SET value = MAX(value, ?) WHERE key = 'seq'", (last_seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._id_reserved = max(self._id_reserved, last_id)
        self._last_id = max(self._last_id, last_id)
        self._meta_seq = max(self._meta_seq, last_seq)
        if last_seq > self._seq + len(self._prepaid):
            self._prepaid.clear()
            self._seq = last_seq

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
