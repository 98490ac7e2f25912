"""Stamping, holding and re-stamping readings with a fake clock injected into the timekeeper,
on a real spool file (docs/clock.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway_firmware.clock import FakeClock
from gateway_firmware.spool import Spool
from gateway_firmware.spool_guard import GuardedSpool
from gateway_firmware.timekeeping import (
    Timekeeper,
    datetime_of_ms,
    guarded_stamp_ms,
    ms_of,
    restamped_wall_ns,
)
from zonnewijk_wire import MeterFlag, MeterReading, Reading, ReadingFlag

S = 1_000_000_000  # ns per second
#: 2026-12-08T00:00:00Z in ns since the epoch
TRUE_WALL_NS = int(datetime(2026, 12, 8, tzinfo=UTC).timestamp()) * S


def reading(device: str = "inv-1", energy_wh: float = 1000.0) -> Reading:
    # the reader's own stamp is replaced by the timekeeper's
    return Reading(device_id=device, ts=datetime(1970, 1, 1, tzinfo=UTC), ac_energy_wh=energy_wh)


def poll(keeper: Timekeeper, clock: FakeClock, spool: GuardedSpool, n: int = 1) -> list[int]:
    """``n`` polls 10 s apart; returns the spool ids of the readings stamped at once."""
    ids = []
    for i in range(n):
        stamped = keeper.stamp(reading(energy_wh=1000.0 + i), keeper.moment())
        if stamped is not None:
            ids.extend(spool.append([stamped]))
        clock.advance(10)
    return ids


def spooled(spool: GuardedSpool) -> list[Reading]:
    assert spool.spool is not None
    return [row.reading() for row in spool.spool.iter_all()]


@pytest.fixture
def spool(tmp_path: Path) -> GuardedSpool:
    guarded = GuardedSpool(tmp_path / "spool.sqlite3", audit=True)
    yield guarded
    guarded.close()


def test_pure_functions() -> None:
    assert restamped_wall_ns(sync_wall_ns=100 * S, sync_mono_ns=50 * S, reading_mono_ns=20 * S) == (
        70 * S
    )
    assert guarded_stamp_ms(1000, None) == (1000, False)
    assert guarded_stamp_ms(1000, 999) == (1000, False)
    assert guarded_stamp_ms(1000, 1000) == (1001, True)
    assert guarded_stamp_ms(5, 7_200_000) == (7_200_001, True)
    assert ms_of(1_999_999) == 1
    assert ms_of(-1) == -1  # floor, like the spool and the collector
    assert datetime_of_ms(1_765_152_000_123) == datetime(2025, 12, 8, 0, 0, 0, 123000, tzinfo=UTC)


def test_unsynchronised_readings_are_held_and_restamped_at_the_sync(spool: GuardedSpool) -> None:
    # a boot at 1970: the wall clock starts at the epoch, 5 s after the kernel started
    clock = FakeClock(wall_ns=0, mono_ns=5 * S, synced=False)
    keeper = Timekeeper(clock, spool)
    assert poll(keeper, clock, spool, n=6) == []  # nothing published, nothing in readings
    assert spool.depth() == 0 and spool.held_depth() == 6
    assert keeper.status_fields() == {
        "clock_synced": False,
        "clock_source": "fake",
        "clock_held": 6,
    }
    # NTP steps the clock to the true time and says so; readings were polled 60..10 s before
    clock.wall = TRUE_WALL_NS
    clock.synced = True
    assert keeper.check() is True
    readings = spooled(spool)
    assert [r.ts for r in readings] == [
        datetime_of_ms(ms_of(TRUE_WALL_NS) - 60_000 + 10_000 * i) for i in range(6)
    ]
    assert all(r.flags == (ReadingFlag.TIME_RESTAMPED,) for r in readings)
    assert [r.ac_energy_wh for r in readings] == [1000.0 + i for i in range(6)]
    assert spool.held_depth() == 0
    [mapping] = spool.clock_syncs()
    assert (mapping.sync_wall_ns, mapping.sync_mono_ns) == (TRUE_WALL_NS, 65 * S)
    assert (mapping.restamped, mapping.time_unknown) == (6, 0)
    # audit: every held row was released as a reading that is in the spool's audit
    assert spool.spool is not None
    audited_ids = {row.id for row in spool.spool.audited()}
    released = spool.spool.held_audited()
    assert len(released) == 6 and all(r is not None and r in audited_ids for _, r in released)
    # from now on readings are stamped with the wall clock, unflagged
    poll(keeper, clock, spool, n=1)
    last = spooled(spool)[-1]
    assert last.ts == datetime_of_ms(ms_of(TRUE_WALL_NS)) and last.flags == ()


def test_readings_of_a_boot_that_never_synced_are_time_unknown(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    clock = FakeClock(wall_ns=1_000 * S, mono_ns=5 * S, boot_id="boot-1")
    with_spool = GuardedSpool(path)
    poll(Timekeeper(clock, with_spool), clock, with_spool, n=3)  # boot 1: never synced
    with_spool.close()
    # power cut; boot 2 starts at the same saved time (fake-hwclock), a new process
    clock.reboot("boot-2", wall_ns=1_000 * S)
    spool = GuardedSpool(path)
    keeper = Timekeeper(clock, spool)
    assert keeper.held_waiting == 3
    poll(keeper, clock, spool, n=2)
    clock.wall, clock.synced = TRUE_WALL_NS, True
    keeper.check()
    readings = spooled(spool)
    spool.close()
    unknown = [r for r in readings if ReadingFlag.TIME_UNKNOWN in r.flags]
    restamped = [r for r in readings if ReadingFlag.TIME_RESTAMPED in r.flags]
    # boot 1 keeps its unsynchronised stamps (1000 s, 1010 s, 1020 s after the epoch)
    assert [r.ts for r in unknown] == [
        datetime_of_ms(ms) for ms in (1_000_000, 1_010_000, 1_020_000)
    ]
    # boot 2's readings are re-stamped from their monotonic time
    assert [r.ts for r in restamped] == [
        datetime_of_ms(ms_of(TRUE_WALL_NS) - 20_000),
        datetime_of_ms(ms_of(TRUE_WALL_NS) - 10_000),
    ]
    assert len(readings) == 5


def test_unknown_stamps_never_repeat_across_releases(tmp_path: Path) -> None:
    """Two boots that never synced, released at two later syncs, both starting at 1970: the
    second lot's stamps come after the first's."""
    path = tmp_path / "spool.sqlite3"
    stamps: list[datetime] = []
    for boot in range(2):
        clock = FakeClock(wall_ns=0, boot_id=f"never-{boot}")
        spool = GuardedSpool(path)
        poll(Timekeeper(clock, spool), clock, spool, n=3)
        spool.close()
        clock.reboot(f"synced-{boot}", wall_ns=TRUE_WALL_NS)
        clock.synced = True
        spool = GuardedSpool(path)
        Timekeeper(clock, spool).check()
        assert spool.spool is not None
        new = [r.ts for r in spooled(spool)]
        spool.spool.delete([row.id for row in spool.spool.iter_all()])  # published and acked
        spool.close()
        stamps.extend(new)
    assert len(stamps) == 6 and len(set(stamps)) == 6 and stamps == sorted(stamps)


def test_a_two_hour_step_back_gives_unique_ordered_stamps(spool: GuardedSpool) -> None:
    clock = FakeClock(wall_ns=TRUE_WALL_NS, synced=True)
    keeper = Timekeeper(clock, spool)
    poll(keeper, clock, spool, n=5)
    clock.step_wall(-7200)
    poll(keeper, clock, spool, n=5)
    readings = spooled(spool)
    stamps = [r.ts for r in readings]
    assert len(stamps) == 10 and len(set(stamps)) == 10 and stamps == sorted(stamps)
    assert [ReadingFlag.TIME_GUARDED in r.flags for r in readings] == [False] * 5 + [True] * 5
    before = datetime_of_ms(ms_of(TRUE_WALL_NS) + 40_000)  # the last stamp before the step
    assert stamps[5:] == [datetime_of_ms(ms_of(TRUE_WALL_NS) + 40_000 + i) for i in range(1, 6)]
    assert stamps[4] == before
    # two hours later the wall clock passes the last stamp again: plain stamps
    clock.advance(7200)
    poll(keeper, clock, spool, n=1)
    assert spooled(spool)[-1].flags == ()
    assert keeper.stats.guarded == 5


def test_the_guard_starts_from_the_spool_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    clock = FakeClock(wall_ns=TRUE_WALL_NS, synced=True)
    spool = GuardedSpool(path)
    poll(Timekeeper(clock, spool), clock, spool, n=3)
    spool.close()
    clock.step_wall(-3600)  # stepped back while the gateway restarted
    spool = GuardedSpool(path)
    poll(Timekeeper(clock, spool), clock, spool, n=2)
    stamps = [r.ts for r in spooled(spool)]
    spool.close()
    assert len(set(stamps)) == 5 and stamps == sorted(stamps)


def test_spool_command_view_of_an_old_spool_without_held_tables(tmp_path: Path) -> None:
    """A read-only look at a spool written before issue 18's tables says nothing is held."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT, ts_ms INTEGER,"
        " payload TEXT, kind TEXT NOT NULL DEFAULT 'reading');"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER);"
    )
    db.close()
    with Spool(path, read_only=True) as old:
        assert old.held_depth() == 0 and old.held() == [] and old.clock_syncs() == []


def test_a_meter_interval_is_held_and_restamped_at_its_end(spool: GuardedSpool) -> None:
    """P1 readings carry the end of their interval: held with the monotonic time of that end."""
    clock = FakeClock(wall_ns=600 * S, mono_ns=610 * S)  # 1970, 10 s after a 5-minute end
    keeper = Timekeeper(clock, spool)
    end = datetime_of_ms(600_000 - 10_000)
    assert keeper.moment_of(end, keeper.moment()) == (590 * S, 600 * S)
    meter = MeterReading(device_id="p1", ts=end, source="p1", import_energy_wh=5.0)
    assert keeper.stamp(meter, keeper.moment_of(end, keeper.moment())) is None
    clock.advance(20)
    clock.wall, clock.synced = TRUE_WALL_NS, True
    keeper.check()
    assert spool.spool is not None
    [row] = list(spool.spool.iter_all())
    released = row.item()
    assert isinstance(released, MeterReading)
    # the interval ended 30 s (monotonic) before the sync
    assert released.ts == datetime_of_ms(ms_of(TRUE_WALL_NS) - 30_000)
    assert released.flags == (MeterFlag.TIME_RESTAMPED,)


def test_a_restart_in_the_same_boot_still_restamps(tmp_path: Path) -> None:
    """The gateway restarts before the sync (same boot id): its held readings are re-stamped
    with the mapping the new process takes, since the monotonic clock went on."""
    path = tmp_path / "spool.sqlite3"
    clock = FakeClock(wall_ns=0, mono_ns=5 * S)
    first = GuardedSpool(path)
    poll(Timekeeper(clock, first), clock, first, n=2)
    first.close()
    clock.advance(30)  # the restart
    spool = GuardedSpool(path)
    keeper = Timekeeper(clock, spool)
    clock.wall, clock.synced = TRUE_WALL_NS, True
    keeper.check()
    stamps = [r.ts for r in spooled(spool)]
    spool.close()
    assert stamps == [datetime_of_ms(ms_of(TRUE_WALL_NS) - ms) for ms in (50_000, 40_000)]
