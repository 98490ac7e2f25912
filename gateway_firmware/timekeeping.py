"""Stamping readings with a time that can be trusted (issue 18; docs/clock.md).

The gateway asks its :class:`~gateway_firmware.clock.GatewayClock` at every poll whether the
wall clock is synchronised:

- **Not yet synchronised in this boot**: the reading is not published. It is committed to the
  spool's ``held`` table with the monotonic time (``CLOCK_BOOTTIME``) and the boot id of its
  poll, and the unsynchronised wall stamp.
- **At the first sync of a boot** the mapping ``(sync_wall, sync_mono)`` is taken (and recorded
  in the spool's ``clock_syncs``), and each held reading of *this* boot is re-stamped::

      wall = sync_wall - (sync_mono - reading_mono)

  flagged ``time_restamped`` and moved into the spool's readings, to be published like any
  other. A held reading of an *earlier* boot cannot be re-stamped (its monotonic time counted
  from a boot whose sync never came): it keeps its unsynchronised stamp, flagged
  ``time_unknown``; the collector stores such readings apart (``inverter_time_unknown``) and
  settlement never reads them. Their counters are still worth having: a counter difference
  over the gap is not lost, only its time.
- **Once synchronised** (for the rest of the boot: a clock that synced once drifts by parts
  per million, and later steps are guarded) each reading is stamped with the wall clock,
  guarded: the stamp of a device's reading is ``max(wall, previous stamp + 1 ms)``, and moved
  stamps are flagged ``time_guarded``. A step backwards therefore never gives two readings of
  one device the same stamp (which would overwrite each other in InfluxDB) or puts one out of
  order; the price is that readings polled in the stepped-back stretch carry stamps 1 ms apart
  until the wall clock passes the last stamp again.

Stamps are whole milliseconds, as on the wire. The guard remembers the newest stamp per device
for the process; at start it begins from the newest stamps still waiting in the spool.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gateway_firmware.clock import GatewayClock, SyncStatus
from gateway_firmware.spool import HeldReading, HeldRow, Spoolable
from zonnewijk_wire import MeterFlag, Reading, ReadingFlag

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_MS = 1_000_000
#: Held readings moved into the spool per transaction [readings].
RELEASE_BATCH = 1000


# --- pure functions ---------------------------------------------------------------------------


def restamped_wall_ns(sync_wall_ns: int, sync_mono_ns: int, reading_mono_ns: int) -> int:
    """The wall time of a reading polled at ``reading_mono_ns``, from the mapping taken at
    the sync: ``sync_wall - (sync_mono - reading_mono)`` [ns since the epoch]."""
    return sync_wall_ns - (sync_mono_ns - reading_mono_ns)


def guarded_stamp_ms(wall_ms: int, previous_ms: int | None) -> tuple[int, bool]:
    """A device's next stamp: ``max(wall, previous + 1 ms)``, and whether it was moved [ms]."""
    if previous_ms is None or wall_ms > previous_ms:
        return wall_ms, False
    return previous_ms + 1, True


def ms_of(wall_ns: int) -> int:
    """Whole milliseconds (floor) of a wall time [ns -> ms]."""
    return wall_ns // _NS_PER_MS


def datetime_of_ms(ms: int) -> datetime:
    """A UTC datetime at ``ms`` milliseconds since the epoch (exact, no float)."""
    return _EPOCH + timedelta(milliseconds=ms)


# --- the keeper -------------------------------------------------------------------------------


class HeldStore(Protocol):
    """What the keeper needs of the spool (:class:`~gateway_firmware.spool_guard.GuardedSpool`)."""

    @property
    def writable(self) -> bool: ...
    def append(self, readings: Sequence[Spoolable]) -> list[int]: ...
    def hold(self, rows: Sequence[HeldRow]) -> list[int]: ...
    def held(self, limit: int = ...) -> list[HeldReading]: ...
    def held_depth(self) -> int: ...
    def release(self, released: Sequence[tuple[int, int]]) -> bool: ...
    def newest_ts_ms(self) -> dict[str, int]: ...
    def unknown_time_guard(self) -> dict[str, int]: ...
    def set_unknown_time_guard(self, last_ms: dict[str, int]) -> None: ...
    def record_sync(
        self,
        *,
        boot_id: str,
        sync_wall_ns: int,
        sync_mono_ns: int,
        source: str,
        restamped: int,
        time_unknown: int,
    ) -> None: ...


@dataclass(frozen=True)
class ClockMapping:
    """Wall and monotonic time read together at the first sync of a boot."""

    boot_id: str
    sync_wall_ns: int
    sync_mono_ns: int
    source: str


@dataclass
class TimekeepingStats:
    held: int = 0
    restamped: int = 0
    time_unknown: int = 0
    guarded: int = 0


def _with_flag(item: Spoolable, name: str) -> tuple[object, ...]:
    flag = ReadingFlag(name) if isinstance(item, Reading) else MeterFlag(name)
    return item.flags if flag in item.flags else (*item.flags, flag)


def _stamped(item: Spoolable, ms: int, flag: str | None) -> Spoolable:
    update: dict[str, object] = {"ts": datetime_of_ms(ms)}
    if flag is not None:
        update["flags"] = _with_flag(item, flag)
    return item.model_copy(update=update)


class Timekeeper:
    """Stamps each reading, holds it while the clock is unsynchronised, releases held ones.

    Parameters
    ----------
    clock
        The gateway's clock (wall, monotonic, boot id, sync status).
    spool
        Where held readings wait and released ones go.
    """

    def __init__(self, clock: GatewayClock, spool: HeldStore) -> None:
        self.clock = clock
        self.spool = spool
        self.mapping: ClockMapping | None = None
        self.last_status: SyncStatus | None = None
        self.stats = TimekeepingStats()
        self._last_ms: dict[str, int] = spool.newest_ts_ms()
        self._held_waiting = spool.held_depth()

    @property
    def synced(self) -> bool:
        """Whether this boot's clock has synced (asks the clock until it has)."""
        if self.mapping is None:
            self.check()
        return self.mapping is not None

    @property
    def held_waiting(self) -> int:
        """Readings held until the clock syncs [readings]."""
        return self._held_waiting

    def check(self) -> bool:
        """Ask the clock; at its first sync take the mapping and release what is held.

        Returns True when readings were released into the spool (the publisher should look
        at the backlog again)."""
        if self.mapping is not None:
            return self._held_waiting > 0 and self._release() > 0
        status = self.clock.sync()
        changed = self.last_status is None or status.synced != self.last_status.synced
        self.last_status = status
        if not status.synced:
            if changed:
                log.warning(
                    "wall clock not synchronised (%s: %s): holding readings until it is",
                    status.source,
                    status.detail,
                )
            return False
        mono = self.clock.mono_ns()
        wall = self.clock.wall_ns()
        self.mapping = ClockMapping(self.clock.boot_id, wall, mono, status.source)
        log.info(
            "wall clock synchronised (%s: %s) at %s, boot %s",
            status.source,
            status.detail,
            datetime_of_ms(ms_of(wall)).isoformat(),
            self.clock.boot_id,
        )
        return self._release() > 0

    def moment(self) -> tuple[int, int]:
        """(wall, monotonic) now, read together just before a poll [ns]."""
        return self.clock.wall_ns(), self.clock.mono_ns()

    def moment_of(self, ts: datetime, now: tuple[int, int]) -> tuple[int, int]:
        """(wall, monotonic) of a past instant ``ts`` of the wall clock (a P1 interval's end),
        from ``now`` = :meth:`moment`: ``mono = now_mono - (now_wall - ts)`` [ns]. Right unless
        the wall clock stepped between ``ts`` and now."""
        now_wall, now_mono = now
        wall = (ts - _EPOCH) // timedelta(microseconds=1) * 1000
        return wall, now_mono - (now_wall - wall)

    def stamp(self, item: Spoolable, moment: tuple[int, int]) -> Spoolable | None:
        """The reading stamped for publishing, or None when it was held (committed to the
        spool's held table) because the clock is not synchronised.

        ``moment`` is :meth:`moment` taken just before the poll.
        """
        wall_ns, mono_ns = moment
        if not self.synced:
            wall_ms = ms_of(wall_ns)
            held = _stamped(item, wall_ms, None)
            self.spool.hold([HeldRow(held, wall_ms, mono_ns, self.clock.boot_id)])
            self._held_waiting += 1
            self.stats.held += 1
            return None
        ms, moved = guarded_stamp_ms(ms_of(wall_ns), self._last_ms.get(item.device_id))
        self._last_ms[item.device_id] = ms
        if moved:
            self.stats.guarded += 1
            if self.stats.guarded in (1, 10) or self.stats.guarded % 1000 == 0:
                log.warning(
                    "wall clock behind the last stamp of %s: stamped 1 ms after it "
                    "(time_guarded; %d readings so far)",
                    item.device_id,
                    self.stats.guarded,
                )
        return _stamped(item, ms, "time_guarded" if moved else None)

    def _release(self) -> int:
        """Move every held reading into the spool's readings, re-stamped or ``time_unknown``."""
        mapping = self.mapping
        assert mapping is not None
        if not self.spool.writable:
            return 0  # released when the spool can be written again (never twice)
        unknown_last = self.spool.unknown_time_guard()
        restamped = unknown = 0
        while True:
            rows = self.spool.held(RELEASE_BATCH)
            if not rows:
                break
            items: list[Spoolable] = []
            for row in rows:
                item = row.item()
                if row.boot_id == mapping.boot_id:
                    wall = restamped_wall_ns(
                        mapping.sync_wall_ns, mapping.sync_mono_ns, row.mono_ns
                    )
                    ms, moved = guarded_stamp_ms(ms_of(wall), self._last_ms.get(row.device_id))
                    self._last_ms[row.device_id] = ms
                    flagged = _stamped(item, ms, "time_restamped")
                    if moved:
                        flagged = _stamped(flagged, ms, "time_guarded")
                    restamped += 1
                else:
                    ms, _ = guarded_stamp_ms(row.wall_ms, unknown_last.get(row.device_id))
                    unknown_last[row.device_id] = ms
                    flagged = _stamped(item, ms, "time_unknown")
                    unknown += 1
                items.append(flagged)
            ids = self.spool.append(items)  # committed before the held rows are let go
            if not self.spool.release([(r.id, i) for r, i in zip(rows, ids, strict=True)]):
                break  # the spool failed meanwhile: the rest waits (a crash here could
                # commit a batch twice; its stamps are the same, InfluxDB keeps one)
            self._held_waiting = max(self._held_waiting - len(rows), 0)
        if unknown:
            self.spool.set_unknown_time_guard(unknown_last)
        if restamped or unknown:
            self.spool.record_sync(
                boot_id=mapping.boot_id,
                sync_wall_ns=mapping.sync_wall_ns,
                sync_mono_ns=mapping.sync_mono_ns,
                source=mapping.source,
                restamped=restamped,
                time_unknown=unknown,
            )
            log.info(
                "released %d held readings: %d re-stamped from the monotonic clock "
                "(sync at %s, mono %d ns), %d of earlier boots flagged time_unknown",
                restamped + unknown,
                restamped,
                datetime_of_ms(ms_of(mapping.sync_wall_ns)).isoformat(),
                mapping.sync_mono_ns,
                unknown,
            )
        self.stats.restamped += restamped
        self.stats.time_unknown += unknown
        self._held_waiting = self.spool.held_depth()
        return restamped + unknown

    def status_fields(self) -> dict[str, object]:
        """For the gateway's status message: ``clock_synced``, ``clock_source``, ``clock_held``."""
        source = self.mapping.source if self.mapping is not None else None
        if source is None and self.last_status is not None:
            source = self.last_status.source
        return {
            "clock_synced": self.mapping is not None,
            "clock_source": source,
            "clock_held": self._held_waiting,
        }
