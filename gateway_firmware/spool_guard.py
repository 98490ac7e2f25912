"""The spool behind a guard: the gateway goes on when its SD card is full, read-only or corrupt.

:class:`GuardedSpool` has the interface of :class:`~gateway_firmware.spool.Spool` that the
service and the publisher use (``append``, ``delete``, ``after``, ``next_seq``, ``depth``,
``dropped_total``, ``stats``) and never lets a storage fault escape into the main loop:

- **full** (``ENOSPC``, ``SQLITE_FULL``), **read-only** (the kernel remounted the card after
  I/O errors, ``EROFS``, ``SQLITE_READONLY``) or **I/O error**: readings that cannot be
  committed are held in a bounded in-memory buffer (``memory_readings``, default one day of one
  inverter at 10 s) and published at once as usual; when the buffer overflows, the oldest are
  dropped and counted (in ``spool_dropped`` of the status, logged at ERROR; a dropped reading
  whose PUBACK still arrives was delivered and is counted back). Acknowledgements
  that cannot be deleted are remembered and deleted later. Every ``retry_s`` the guard tries to
  write again; once it can, the buffered readings are committed to the spool and the state is
  ``ok`` again.
- **corrupt** (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``, a failed ``PRAGMA quick_check`` at start):
  the file (with its ``-wal`` and ``-shm``) is moved aside as ``<spool>.corrupt-<UTC time>``,
  the readings that can still be read from it are salvaged into a fresh spool, which continues
  the old reading ids and message sequence, and the event is logged and reported
  (``spool_problem``) until the gateway restarts.

Readings in memory carry ids from :data:`MEMORY_ID_BASE` up, above every spool id, so the
publisher's PUBACK bookkeeping (by id) works for both. Used from one thread only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from gateway_firmware.spool import (
    DEFAULT_MAX_READINGS,
    METER_KIND,
    ClockSyncRecord,
    HeldReading,
    HeldRow,
    Spool,
    Spoolable,
    SpooledReading,
    SpoolError,
    SpoolStats,
    _ts_ms,
    kind_of,
)
from zonnewijk_wire import MeterReading, Reading, to_wire_dict

log = logging.getLogger(__name__)

#: Ids of readings held in memory start here, far above any spool id.
MEMORY_ID_BASE = 1 << 48
#: One day of one inverter at a 10 s interval [readings].
DEFAULT_MEMORY_READINGS = 8640
#: How often a failed spool is tried again [s].
DEFAULT_RETRY_S = 10.0

SpoolState = Literal["ok", "full", "read-only", "io-error", "unavailable"]

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


def _sqlite_code(exc: BaseException | None) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_corrupt(exc: BaseException | None) -> bool:
    """Whether an error (or the SQLite error behind a :class:`SpoolError`) means a corrupt file."""
    if isinstance(exc, SpoolError):
        exc = exc.__cause__
    return _sqlite_code(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def state_for(exc: BaseException, directory: Path) -> SpoolState:
    """Classify a write failure: the file system's own flags first, then the error's code."""
    try:
        fs = os.statvfs(directory)
        if fs.f_flag & os.ST_RDONLY:
            return "read-only"
        if fs.f_bavail == 0:
            return "full"
    except OSError:
        return "unavailable"
    probed = _probe(directory)
    if probed is not None:
        return probed
    if isinstance(exc, SpoolError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, OSError):
        by_errno: dict[int, SpoolState] = {
            errno.ENOSPC: "full",
            errno.EDQUOT: "full",
            errno.EROFS: "read-only",
        }
        return by_errno.get(exc.errno or 0, "io-error")
    code = _sqlite_code(exc)
    if code == _SQLITE_FULL:
        return "full"
    if code == _SQLITE_READONLY:
        return "read-only"
    if code == _SQLITE_CANTOPEN:
        return "unavailable"
    return "io-error"


def _probe(directory: Path) -> SpoolState | None:
    """Create and remove a file in ``directory``: what the file system says, if it refuses.

    SQLite reports every failed write as an I/O error, and a kernel that turned the card
    read-only after an error need not set the read-only flag statvfs shows (ext4's
    ``emergency_ro`` since Linux 6.x): an attempt to create a file gets the real ``EROFS``.
    """
    probe = directory / f".spool-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600))
        os.unlink(probe)
    except OSError as exc:
        by_errno: dict[int, SpoolState] = {
            errno.EROFS: "read-only",
            errno.ENOSPC: "full",
            errno.EDQUOT: "full",
            errno.ENOENT: "unavailable",
        }
        return by_errno.get(exc.errno or 0, "io-error")
    return None


@dataclass(frozen=True)
class SpoolHealth:
    """What the status message and the health endpoint say about the spool."""

    state: SpoolState
    problem: str | None
    depth: int
    memory_readings: int
    memory_dropped: int
    pending_deletes: int
    corrupt_files: tuple[str, ...]
    salvaged: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "problem": self.problem,
            "depth": self.depth,
            "memory_readings": self.memory_readings,
            "memory_dropped": self.memory_dropped,
            "pending_deletes": self.pending_deletes,
            "corrupt_files": list(self.corrupt_files),
            "salvaged": self.salvaged,
        }


def _row(reading_id: int, item: Spoolable) -> SpooledReading:
    payload = json.dumps(to_wire_dict(item), separators=(",", ":"))
    return SpooledReading(reading_id, item.device_id, _ts_ms(item.ts), payload, kind_of(item))


def _salvage(path: Path) -> tuple[list[Spoolable], int, int, int]:
    """Readings still readable in a corrupt spool: (readings, unreadable rows, last id, seq)."""
    found: list[Spoolable] = []
    unreadable = last_id = last_seq = 0
    try:
        db = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error:
        return found, unreadable, last_id, last_seq
    try:
        for sql, target in (
            ("SELECT seq FROM sqlite_sequence WHERE name = 'readings'", "id"),  # older spools
            ("SELECT value FROM meta WHERE key = 'last_id'", "id"),
            ("SELECT MAX(id) FROM readings", "id"),
            ("SELECT value FROM meta WHERE key = 'seq'", "seq"),
            ("SELECT MAX(seq) FROM readings", "seq"),
        ):
            try:
                row = db.execute(sql).fetchone()
            except sqlite3.Error:
                continue
            if row is None or row[0] is None:
                continue
            if target == "id":
                last_id = max(last_id, int(row[0]))
            else:
                last_seq = max(last_seq, int(row[0]))
        try:
            for payload, kind in db.execute("SELECT payload, kind FROM readings ORDER BY id"):
                try:
                    model = MeterReading if kind == METER_KIND else Reading
                    found.append(model.model_validate_json(payload))
                except ValueError:
                    unreadable += 1
        except sqlite3.Error as exc:
            log.warning("salvaging %s stopped at a damaged page: %s", path, exc)
    finally:
        db.close()
    return found, unreadable, last_id, last_seq


class GuardedSpool:
    """A :class:`Spool` that survives a full, read-only or corrupt file system.

    Parameters
    ----------
    path
        The SQLite spool file.
    max_readings
        Most readings kept in the spool [readings].
    audit
        Record every committed reading (tests).
    memory_readings
        Most readings held in memory while the spool cannot be written [readings].
    retry_s
        How often a failed spool is tried again [s].
    clock
        Monotonic clock [s].
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_readings: int = DEFAULT_MAX_READINGS,
        audit: bool = False,
        memory_readings: int = DEFAULT_MEMORY_READINGS,
        retry_s: float = DEFAULT_RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.max_readings = max_readings
        self.audit = audit
        self.memory_max = memory_readings
        self.retry_s = retry_s
        self._clock = clock
        self._spool: Spool | None = None
        self._memory: dict[int, SpooledReading] = {}
        self._next_memory_id = MEMORY_ID_BASE
        self._pending_deletes: set[int] = set()
        #: readings dropped from the full memory buffer, perhaps still in flight
        self._dropped_ids: dict[int, None] = {}
        self._last_id = 0
        self._last_seq = 0
        self._dropped_on_disk = 0
        self.memory_dropped = 0
        self.state: SpoolState = "ok"
        self.problem: str | None = None
        self.corrupt_files: list[Path] = []
        self.salvaged = 0
        self._retry_at = 0.0
        self._memory_held: dict[int, HeldReading] = {}
        self._next_memory_held = MEMORY_ID_BASE
        self._open(starting=True)

    # --- opening, failing, recovering -------------------------------------------------------

    def _open(self, *, starting: bool = False) -> None:
        """Open the spool file; at start a configuration mistake (a missing directory, a
        spool in use by another process) raises, later it is one more storage fault."""
        try:
            spool = Spool(
                self.path, max_readings=self.max_readings, audit=self.audit, clock=self._clock
            )
        except SpoolError as exc:
            if is_corrupt(exc):
                self._replace_corrupt(str(exc.__cause__))
            elif starting and ("in use by another" in str(exc) or not self.path.parent.is_dir()):
                raise  # a configuration mistake, not a storage fault
            else:
                self._fail(exc, "cannot open the spool")
            return
        except (sqlite3.Error, OSError) as exc:
            self._fail(exc, "cannot open the spool")
            return
        try:
            problems = spool.integrity_problems()
        except sqlite3.Error as exc:
            problems = [str(exc)]
        if problems:
            spool.close()
            self._replace_corrupt("; ".join(problems[:3]))
            return
        self._adopt(spool)

    def _adopt(self, spool: Spool) -> None:
        self._spool = spool
        self._last_id = max(self._last_id, spool.last_id())
        self._last_seq = max(self._last_seq, spool.seq())
        self._dropped_on_disk = spool.dropped_total()

    def _replace_corrupt(self, reason: str) -> None:
        """Move the corrupt spool aside, salvage what can be read, start a fresh one."""
        if self._spool is not None:
            self._close_quietly()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = Path(f"{self.path}.corrupt-{stamp}")
        try:
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    os.replace(source, Path(f"{aside}{suffix}"))
        except OSError as exc:
            self._fail(exc, f"the spool is corrupt ({reason}) and cannot be moved aside")
            return
        readings, unreadable, last_id, last_seq = _salvage(aside)
        self.corrupt_files.append(aside)
        self._last_id = max(self._last_id, last_id)
        self._last_seq = max(self._last_seq, last_seq)
        self.problem = (
            f"corrupt spool moved aside to {aside.name} ({reason[:120]}); "
            f"{len(readings)} readings salvaged, {unreadable} unreadable"
        )
        log.error(
            "spool %s is corrupt (%s): moved aside to %s; starting a fresh spool with the %d "
            "readings that could still be read (%d unreadable; waiting readings beyond a damaged "
            "page are lost)",
            self.path,
            reason,
            aside,
            len(readings),
            unreadable,
        )
        try:
            spool = Spool(
                self.path, max_readings=self.max_readings, audit=self.audit, clock=self._clock
            )
            spool.continue_after(last_id=self._last_id, last_seq=self._last_seq)
            if readings:
                spool.append(readings)
        except (SpoolError, sqlite3.Error, OSError) as exc:
            self._fail(exc, "cannot start a fresh spool")
            for item in readings:
                self._hold(item)
            return
        self.salvaged += len(readings)
        self.state = "ok"
        self._adopt(spool)

    def _fail(self, exc: BaseException, action: str) -> None:
        state = state_for(exc, self.path.parent)
        problem = f"{action}: {exc}"
        if state != self.state:
            log.error(
                "spool %s %s (%s); readings are held in memory (at most %d) and published "
                "directly until it can be written again (tried every %.0f s)",
                self.path,
                state,
                problem,
                self.memory_max,
                self.retry_s,
            )
        self.state = state
        self.problem = problem
        self._retry_at = self._clock() + self.retry_s

    def _close_quietly(self) -> None:
        if self._spool is not None:
            # acknowledged readings whose deletion may not reach the file: deleted later
            self._pending_deletes.update(self._spool.acked_ids())
            try:
                self._spool.close()
            except (sqlite3.Error, OSError) as exc:
                log.warning("closing the spool failed: %s", exc)
            self._spool = None

    def _on_error(self, exc: sqlite3.Error | OSError, action: str) -> None:
        if is_corrupt(exc):
            self._replace_corrupt(str(exc))
        else:
            self._fail(exc, action)

    def maintain(self) -> bool:
        """Try a failed spool again when it is due; True when it has just become writable.

        While the spool is fine, delete the acknowledged readings that waited long enough for
        a commit to carry their deletion (:meth:`Spool.flush_due`).
        """
        if self.state == "ok" and self._spool is not None:
            try:
                self._spool.sync_due()
                self._spool.flush_due()
            except (sqlite3.Error, OSError) as exc:
                self._on_error(exc, "cannot sync or clean up the spool")
            return False
        if self.state == "ok" or self._clock() < self._retry_at:
            return False
        if self.state != "full":
            # a card remounted read-only after I/O errors (or unmounted) is back only on fresh
            # file handles: after a repair and a new mount, the old ones still fail
            self._close_quietly()
        if self._spool is None:
            self._open()
            if self._spool is None:
                return False
        spool = self._spool
        try:
            spool.continue_after(last_id=self._last_id, last_seq=self._last_seq)
            if self._pending_deletes:
                spool.delete(sorted(self._pending_deletes))
            moved = [row.item() for row in self._memory.values()]
            if moved:
                # ids in memory may be in flight: their PUBACK deletes nothing any more, and the
                # spool's copy is sent again (a duplicate overwrites itself in InfluxDB)
                ids = spool.append(moved)
                self._last_id = max(self._last_id, *ids)
        except (sqlite3.Error, OSError) as exc:
            self._on_error(exc, "still cannot write the spool")
            return False
        self._pending_deletes.clear()
        self._memory.clear()
        log.info(
            "spool %s can be written again (was %s): %d readings moved from memory into it",
            self.path,
            self.state,
            len(moved),
        )
        self.state = "ok"
        if not self.corrupt_files:
            self.problem = None
        return True

    # --- the Spool interface ----------------------------------------------------------------

    def append(
        self, readings: Sequence[Spoolable], *, durable: bool = True, messages: int = 0
    ) -> list[int]:
        """Commit readings, or hold them in memory while the spool cannot be written.

        ``durable=False`` and ``messages`` for readings sent at once (:meth:`Spool.append`)."""
        if not readings:
            return []
        if self._spool is not None and self.state == "ok":
            try:
                ids = self._spool.append(readings, durable=durable, messages=messages)
                self._last_id = max(self._last_id, *ids)
                return ids
            except (sqlite3.Error, OSError) as exc:
                self._on_error(exc, "cannot commit readings")
                if self._spool is not None and self.state == "ok":  # a fresh spool
                    return self.append(readings, durable=durable, messages=messages)
        return [self._hold(item) for item in readings]

    def _hold(self, item: Spoolable) -> int:
        self._next_memory_id += 1
        self._memory[self._next_memory_id] = _row(self._next_memory_id, item)
        while len(self._memory) > self.memory_max:
            oldest = next(iter(self._memory))
            del self._memory[oldest]
            self.memory_dropped += 1
            # it may be in flight: a PUBACK that still comes means it was delivered after all
            self._dropped_ids[oldest] = None
            while len(self._dropped_ids) > self.memory_max:
                del self._dropped_ids[next(iter(self._dropped_ids))]
            if self.memory_dropped in (1, 10) or self.memory_dropped % 100 == 0:
                log.error(
                    "memory buffer full (%d readings) while the spool is %s: dropped the oldest, "
                    "%d dropped so far; these readings are lost for billing",
                    self.memory_max,
                    self.state,
                    self.memory_dropped,
                )
        return self._next_memory_id

    def delete(self, ids: Iterable[int]) -> int:
        """Forget acknowledged readings (in memory at once, in the spool when it can be written)."""
        on_disk: list[int] = []
        removed = 0
        for i in ids:
            if i >= MEMORY_ID_BASE:
                removed += self._memory.pop(i, None) is not None
                if i in self._dropped_ids:  # dropped from memory, yet delivered
                    del self._dropped_ids[i]
                    self.memory_dropped -= 1
            else:
                on_disk.append(i)
        if not on_disk:
            return removed
        if self._spool is not None and self.state == "ok":
            try:
                removed += self._spool.delete(on_disk)
                return removed
            except (sqlite3.Error, OSError) as exc:
                self._on_error(exc, "cannot delete acknowledged readings")
        self._pending_deletes.update(on_disk)
        return removed

    def after(self, after_id: int, limit: int) -> list[SpooledReading]:
        """Up to ``limit`` waiting readings with an id above ``after_id``, oldest first."""
        found: list[SpooledReading] = []
        cursor = after_id
        while self._spool is not None and len(found) < limit and cursor < MEMORY_ID_BASE:
            try:
                rows = self._spool.after(cursor, limit)
            except sqlite3.Error as exc:
                self._on_error(exc, "cannot read the spool")
                break
            if not rows:
                break
            found.extend(r for r in rows if r.id not in self._pending_deletes)
            cursor = rows[-1].id
        for reading_id, row in self._memory.items():
            if len(found) >= limit:
                break
            if reading_id > after_id:
                found.append(row)
        return found[:limit]

    def next_seq(self) -> int:
        """The next message sequence number (counted in memory while the spool fails)."""
        if self._spool is not None and self.state == "ok":
            try:
                self._last_seq = max(self._last_seq + 1, self._spool.next_seq())
                return self._last_seq
            except (sqlite3.Error, OSError) as exc:
                self._on_error(exc, "cannot persist the message sequence")
        self._last_seq += 1
        return self._last_seq

    def depth(self) -> int:
        """Readings waiting for an acknowledgement, in the spool and in memory [readings]."""
        on_disk = self._spool.depth() - len(self._pending_deletes) if self._spool else 0
        return max(on_disk, 0) + len(self._memory)

    def dropped_total(self) -> int:
        """Readings dropped: by the full spool (``max_readings``) and by the memory buffer."""
        if self._spool is not None:
            with contextlib.suppress(sqlite3.Error):
                self._dropped_on_disk = self._spool.dropped_total()
        return self._dropped_on_disk + self.memory_dropped

    def seq(self) -> int:
        return self._last_seq

    def stats(self) -> SpoolStats:
        if self._spool is not None:
            try:
                return self._spool.stats()
            except sqlite3.Error:
                pass
        return SpoolStats(
            depth=self.depth(),
            oldest=None,
            newest=None,
            dropped_total=self.dropped_total(),
            seq=self._last_seq,
            max_readings=self.max_readings,
            size_bytes=0,
        )

    def health(self) -> SpoolHealth:
        return SpoolHealth(
            state=self.state,
            problem=self.problem,
            depth=self.depth(),
            memory_readings=len(self._memory),
            memory_dropped=self.memory_dropped,
            pending_deletes=len(self._pending_deletes),
            corrupt_files=tuple(p.name for p in self.corrupt_files),
            salvaged=self.salvaged,
        )

    def close(self) -> None:
        if self._memory:
            log.error(
                "stopping with %d readings only in memory (the spool is %s): they are lost "
                "unless they were acknowledged",
                len(self._memory),
                self.state,
            )
        self._close_quietly()

    @property
    def spool(self) -> Spool | None:
        """The open spool file, if any."""
        return self._spool

    # --- readings held for an unsynchronised clock (gateway_firmware/timekeeping.py) ----------

    def hold(self, rows: Sequence[HeldRow]) -> list[int]:
        """Commit held readings, or keep them in memory while the spool cannot be written."""
        if not rows:
            return []
        if self._spool is not None and self.state == "ok":
            try:
                return self._spool.hold(rows)
            except (sqlite3.Error, OSError) as exc:
                self._on_error(exc, "cannot hold readings for the clock")
                if self._spool is not None and self.state == "ok":  # a fresh spool
                    return self.hold(rows)
        ids = []
        for row in rows:
            self._next_memory_held += 1
            self._memory_held[self._next_memory_held] = HeldReading(
                self._next_memory_held,
                row.item.device_id,
                kind_of(row.item),
                json.dumps(to_wire_dict(row.item), separators=(",", ":")),
                row.wall_ms,
                row.mono_ns,
                row.boot_id,
            )
            ids.append(self._next_memory_held)
            while len(self._memory_held) > self.memory_max:
                del self._memory_held[next(iter(self._memory_held))]
                self.memory_dropped += 1
        return ids

    def held(self, limit: int = 1000) -> list[HeldReading]:
        """Held readings not yet released (spool first, then memory), oldest first."""
        found: list[HeldReading] = []
        if self._spool is not None:
            try:
                found = self._spool.held(limit)
            except sqlite3.Error as exc:
                self._on_error(exc, "cannot read held readings")
        found.extend(list(self._memory_held.values())[: max(limit - len(found), 0)])
        return found

    def held_depth(self) -> int:
        on_disk = 0
        if self._spool is not None:
            with contextlib.suppress(sqlite3.Error):
                on_disk = self._spool.held_depth()
        return on_disk + len(self._memory_held)

    @property
    def writable(self) -> bool:
        """Whether the spool file can be written now."""
        return self._spool is not None and self.state == "ok"

    def release(self, released: Sequence[tuple[int, int]]) -> bool:
        """Mark held readings as moved into the spool's readings (see :meth:`Spool.release`);
        False when the spool could not be written."""
        on_disk = []
        for held_id, reading_id in released:
            if held_id >= MEMORY_ID_BASE:
                self._memory_held.pop(held_id, None)
            else:
                on_disk.append((held_id, reading_id))
        if not on_disk:
            return True
        if self._spool is not None and self.state == "ok":
            try:
                self._spool.release(on_disk)
                return True
            except (sqlite3.Error, OSError) as exc:
                self._on_error(exc, "cannot release held readings")
        return False

    def record_sync(self, **mapping: Any) -> None:
        """Record a clock mapping (see :meth:`Spool.record_sync`); logged only when the spool
        cannot be written."""
        if self._spool is not None and self.state == "ok":
            try:
                self._spool.record_sync(**mapping)
                return
            except (sqlite3.Error, OSError) as exc:
                self._on_error(exc, "cannot record the clock mapping")
        log.warning("clock mapping not recorded in the spool (%s): %s", self.state, mapping)

    def clock_syncs(self) -> list[ClockSyncRecord]:
        if self._spool is None:
            return []
        with contextlib.suppress(sqlite3.Error):
            return self._spool.clock_syncs()
        return []

    def unknown_time_guard(self) -> dict[str, int]:
        if self._spool is not None:
            with contextlib.suppress(sqlite3.Error):
                return self._spool.unknown_time_guard()
        return {}

    def set_unknown_time_guard(self, last_ms: dict[str, int]) -> None:
        if self._spool is not None and self.state == "ok":
            try:
                self._spool.set_unknown_time_guard(last_ms)
            except (sqlite3.Error, OSError) as exc:
                self._on_error(exc, "cannot record the unknown-time guard")

    def newest_ts_ms(self) -> dict[str, int]:
        newest: dict[str, int] = {}
        if self._spool is not None:
            with contextlib.suppress(sqlite3.Error):
                newest = self._spool.newest_ts_ms()
        for row in self._memory.values():
            newest[row.device_id] = max(newest.get(row.device_id, row.ts_ms), row.ts_ms)
        return newest
