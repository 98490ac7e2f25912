"""The spool: durable, ordered, bounded, and survives kill -9."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway_firmware.spool import (
    DELETE_FOLD_ROWS,
    DELETE_FOLD_S,
    PAGE_SIZE_B,
    SYNC_AFTER_S,
    Spool,
    SpoolError,
)
from zonnewijk_wire import DcInput, InverterState, MeterReading, MeterSource, Reading

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def reading(i: int, device: str = "inv-1") -> Reading:
    return Reading(
        device_id=device,
        ts=T0 + timedelta(seconds=10 * i),
        ac_power_w=1000.0 + i,
        ac_energy_wh=5_000_000.0 + i,
        state=InverterState.PRODUCING,
        vendor_state=4,
        dc=(DcInput(mppt=1, dc_voltage_v=400.0, dc_current_a=2.5, dc_power_w=1000.0),),
    )


def test_append_then_read_back_oldest_first(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        ids = spool.append([reading(i) for i in range(5)])
        assert ids == sorted(ids) and len(set(ids)) == 5
        rows = spool.after(0, 100)
        assert [r.id for r in rows] == ids
        assert [r.reading() for r in rows] == [reading(i) for i in range(5)]
        assert [r.reading().ts for r in spool.after(ids[1], 2)] == [reading(2).ts, reading(3).ts]
        assert spool.depth() == 5


def test_delete_removes_only_acknowledged(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        ids = spool.append([reading(i) for i in range(6)])
        assert spool.delete([ids[0], ids[2], ids[4]]) == 3
        assert spool.delete([ids[0]]) == 0  # a duplicate PUBACK deletes nothing more
        assert [r.id for r in spool.iter_all(batch=2)] == [ids[1], ids[3], ids[5]]
        assert spool.depth() == 3


def test_contents_and_seq_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path) as spool:
        spool.append([reading(i) for i in range(3)])
        seqs = [spool.next_seq() for _ in range(3)]
    assert seqs == [1, 2, 3]
    with Spool(path) as spool:
        assert spool.depth() == 3
        assert spool.next_seq() == 4  # no holes: the collector counts them as lost messages
        # ids keep growing after deletes (reserved in blocks): replay order stays arrival order
        old = [r.id for r in spool.iter_all()]
        spool.delete(old)
        new = spool.append([reading(9)])
        assert new[0] > max(old)
        spool.delete(new)
    with Spool(path) as spool:  # even when the spool was empty at the restart
        assert spool.depth() == 0
        assert spool.append([reading(10)])[0] > new[0]


def test_bounded_spool_drops_oldest_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path / "s.db", max_readings=100) as spool:
        spool.append([reading(i) for i in range(80)])
        with caplog.at_level(logging.ERROR, logger="gateway_firmware.spool"):
            spool.append([reading(i) for i in range(80, 150)])
        assert spool.depth() == 100
        assert spool.dropped_total() == 50
        kept = [r.reading().ts for r in spool.iter_all()]
        assert kept == [reading(i).ts for i in range(50, 150)]
        assert "dropped the 50 oldest" in caplog.text
    with Spool(tmp_path / "s.db", max_readings=100) as spool:
        assert spool.stats().dropped_total == 50  # persisted for the status message


def test_stats_and_read_only_view_while_writer_is_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path) as writer:
        writer.append([reading(i) for i in range(4)])
        with Spool(path, read_only=True) as viewer:
            stats = viewer.stats()
            assert stats.depth == 4
            assert stats.oldest == reading(0).ts
            assert stats.newest == reading(3).ts
            with pytest.raises(sqlite3.OperationalError):
                viewer.append([reading(5)])
        assert writer.depth() == 4


def test_wal_and_full_sync_are_set(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_refuses_unusable_files(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="does not exist"):
        Spool(tmp_path / "missing" / "s.db")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(SpoolError, match="not a gateway spool"):
        Spool(other, read_only=True)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SpoolError, match="not a usable spool"):
        Spool(garbage)
    with pytest.raises(SpoolError, match="does not exist"):
        Spool(tmp_path / "nope.db", read_only=True)
    with pytest.raises(ValueError, match="in-memory"):
        Spool(":memory:")


def test_audit_keeps_every_committed_key(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", audit=True) as spool:
        ids = spool.append([reading(0), reading(1, device="inv-2")])
        spool.delete(ids)
        assert spool.depth() == 0
        ms = int(reading(0).ts.timestamp() * 1000)
        audited = spool.audited()
        assert [(a.device_id, a.ts_ms) for a in audited] == [("inv-1", ms), ("inv-2", ms + 10_000)]
        assert [a.reading() for a in audited] == [reading(0), reading(1, device="inv-2")]


_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from gateway_firmware.spool import Spool
    from zonnewijk_wire import Reading

    spool = Spool(sys.argv[1])
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    i = 0
    while True:
        batch = [
            Reading(device_id="inv-1", ts=t0 + timedelta(seconds=i + k), ac_energy_wh=float(i + k))
            for k in range(3)
        ]
        ids = spool.append(batch)
        # printed only after append() returned, i.e. after COMMIT
        print(" ".join(map(str, ids)), flush=True)
        if i % 9 == 0:
            spool.delete(ids[:1])
            print("deleted", ids[0], flush=True)
        i += 3
    """
)


def test_committed_readings_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Spool(path).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.stdout is not None
    committed: set[int] = set()
    deleted: set[int] = set()
    #: acknowledged, but no commit printed since: their deletion may not have been committed
    unsure: set[int] = set()
    for _ in range(400):
        line = proc.stdout.readline()
        if line.startswith("deleted"):
            unsure.add(int(line.split()[1]))
        else:
            committed.update(int(x) for x in line.split())
            deleted |= unsure  # this commit carried their deletion (folded into the insert)
            unsure = set()
    os.kill(proc.pid, signal.SIGKILL)  # mid-write, no cleanup
    proc.wait(10)
    proc.stdout.close()
    with Spool(path) as spool:
        assert spool._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        present = {r.id for r in spool.iter_all()}
        assert committed - deleted - unsure <= present
        assert not (deleted & present)
        # anything beyond what was printed was committed between print and kill
        assert all(i > max(committed) for i in present - committed)
        for row in spool.iter_all():
            assert row.reading().ac_energy_wh is not None


def test_only_one_writer_per_spool(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path) as first:
        with pytest.raises(
            SpoolError, match=f"in use by another gateway process \\(pid {os.getpid()}"
        ):
            Spool(path)
        with Spool(path, read_only=True) as viewer:  # inspecting is fine
            assert viewer.stats().depth == 0
        first.append([reading(0)])
    with Spool(path) as again:  # released on close
        assert again.depth() == 1


def meter_reading(i: int) -> MeterReading:
    return MeterReading(
        device_id="p1",
        ts=T0 + timedelta(minutes=5 * i),
        source=MeterSource.P1,
        interval_s=300,
        samples=300,
        import_energy_wh=4_000_000.0 + 10 * i,
        export_energy_wh=1_000_000.0 + 20 * i,
        import_power_w=120.0,
        export_power_w=240.0,
        meter_id_hash="9c1e5b7a0f3d2e44",
        protocol="DSMR 5.0",
    )


def test_meter_readings_share_the_spool_in_order(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", audit=True) as spool:
        ids = spool.append([reading(0), meter_reading(0), reading(1)])
        rows = spool.after(0, 10)
        assert [r.kind for r in rows] == ["reading", "meter", "reading"]
        assert [r.item() for r in rows] == [reading(0), meter_reading(0), reading(1)]
        with pytest.raises(ValueError, match="meter reading, not an inverter's"):
            rows[1].reading()
        assert [r.kind for r in spool.audited()] == ["reading", "meter", "reading"]
        assert spool.delete(ids[1:2]) == 1 and spool.depth() == 2


def test_a_spool_from_before_meter_readings_is_upgraded(tmp_path: Path) -> None:
    # the schema of the first release: no kind column
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL,
            ts_ms INTEGER NOT NULL, payload TEXT NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta (key, value) VALUES ('seq', 7), ('dropped_total', 0), ('schema', 1);
        CREATE TABLE audit (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL,
            ts_ms INTEGER NOT NULL, payload TEXT NOT NULL);
        """
    )
    payload = reading(3).model_dump_json()
    db.execute(
        "INSERT INTO readings (device_id, ts_ms, payload) VALUES (?, ?, ?)", ("inv-1", 1, payload)
    )
    db.commit()
    db.close()
    with Spool(path, read_only=True) as viewer:  # a look before the service ran: still readable
        assert [r.item() for r in viewer.iter_all()] == [reading(3)]
    with Spool(path) as spool:
        spool.append([meter_reading(1)])
        assert [r.item() for r in spool.iter_all()] == [reading(3), meter_reading(1)]
        assert spool.seq() == 7


def test_an_acknowledgement_costs_no_transaction_of_its_own(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "s.db"
    with Spool(path, clock=lambda: now[0]) as spool:
        ids = spool.append([reading(0), reading(1)])
        changes = spool._db.total_changes
        assert spool.delete(ids[:1]) == 1
        assert spool._db.total_changes == changes  # nothing written yet
        assert spool.depth() == 1 and [r.id for r in spool.after(0, 10)] == ids[1:]
        assert spool.stats().depth == 1
        with Spool(path, read_only=True) as viewer:
            assert viewer.stats().depth == 2  # still in the file
        spool.append([reading(2)])  # the next commit carries the deletion
        with Spool(path, read_only=True) as viewer:
            assert [r.id for r in viewer.iter_all()] == [ids[1], ids[1] + 1]
        spool.delete(ids[1:])
        assert not spool.flush_due()  # no commit for a while: deleted after DELETE_FOLD_S
        now[0] += DELETE_FOLD_S
        assert spool.flush_due()
        with Spool(path, read_only=True) as viewer:
            assert viewer.stats().depth == 1
        spool.delete([ids[1] + 1])
    with Spool(path) as spool:  # close() deleted what was acknowledged
        assert spool.depth() == 0


def test_a_long_replay_deletes_in_batches(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        ids = spool.append([reading(i) for i in range(DELETE_FOLD_ROWS + 10)])
        spool.delete(ids[: DELETE_FOLD_ROWS - 1])
        assert spool.acked_waiting == DELETE_FOLD_ROWS - 1
        spool.delete(ids[DELETE_FOLD_ROWS - 1 : DELETE_FOLD_ROWS])
        assert spool.acked_waiting == 0  # flushed at DELETE_FOLD_ROWS
        assert spool._count() == 10
        assert [r.id for r in spool.after(0, 5)] == ids[DELETE_FOLD_ROWS : DELETE_FOLD_ROWS + 5]


def test_new_spools_use_small_pages_and_no_autoincrement(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        assert spool._db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE_B
        create = spool._db.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'readings'"
        ).fetchone()[0]
        assert "AUTOINCREMENT" not in create.upper()


def test_an_older_spool_is_rebuilt_keeping_ids_and_readings(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        PRAGMA page_size=4096;
        CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL,
            ts_ms INTEGER NOT NULL, payload TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'reading');
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta (key, value) VALUES ('seq', 40), ('dropped_total', 0), ('schema', 1);
        """
    )
    for i in range(5):
        db.execute(
            "INSERT INTO readings (device_id, ts_ms, payload) VALUES (?, ?, ?)",
            ("inv-1", i, reading(i).model_dump_json()),
        )
    db.execute("DELETE FROM readings WHERE id > 3")  # ids 4 and 5 were handed out
    db.commit()
    db.close()
    with Spool(path) as spool:
        assert spool._db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE_B
        assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r.item() for r in spool.iter_all()] == [reading(i) for i in range(3)]
        assert spool.append([reading(9)])[0] > 5
        assert spool.next_seq() > 40
    with Spool(path) as spool:
        assert spool.integrity_problems() == []
        assert spool.depth() == 4


def test_a_reading_sent_at_once_is_fsynced_only_when_its_puback_is_late(tmp_path: Path) -> None:
    now = [0.0]
    with Spool(tmp_path / "s.db", clock=lambda: now[0]) as spool:
        sync_mode = "PRAGMA synchronous"
        [quick] = spool.append([reading(0)], durable=False)
        assert spool._db.execute(sync_mode).fetchone()[0] == 1  # NORMAL: no fsync
        assert spool.unsynced == 1
        spool.delete([quick])  # its PUBACK came: at the broker, nothing to fsync
        assert spool.unsynced == 0
        [late] = spool.append([reading(1)], durable=False)
        now[0] += SYNC_AFTER_S / 2
        assert not spool.sync_due()
        now[0] += SYNC_AFTER_S / 2
        assert spool.sync_due()  # no PUBACK within SYNC_AFTER_S: the WAL is fsynced
        assert spool.unsynced == 0
        spool.append([reading(2)], durable=False)
        spool.append([reading(3)])  # not sent at once: fsynced, and so is everything before
        assert spool._db.execute(sync_mode).fetchone()[0] == 2  # FULL
        assert spool.unsynced == 0
        spool.append([reading(4)], durable=False)
    with Spool(tmp_path / "s.db") as spool:  # close() synced what was still unacknowledged
        assert [r.reading() for r in spool.iter_all()] == [reading(i) for i in range(1, 5)]
        assert late == spool.after(0, 1)[0].id


def test_a_live_messages_sequence_number_is_written_with_its_reading(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path) as spool:
        assert spool.next_seq() == 1
        spool.append([reading(0)], durable=False, messages=1)
        changes = spool._db.total_changes
        assert spool.next_seq() == 2  # written by the append: no transaction of its own
        assert spool._db.total_changes == changes
        assert spool.next_seq() == 3  # none prepaid: persisted on its own
        spool.append([reading(1)], messages=2)
        assert [spool.next_seq(), spool.next_seq(), spool.next_seq()] == [4, 5, 6]
    with Spool(path) as spool:
        assert spool.next_seq() == 7  # across a restart: no hole, no repeat
        spool.append([reading(2)], messages=1)
    with Spool(path) as spool:  # a prepaid number never used (a crash before the publish)
        assert spool.next_seq() == 9  # is skipped, as a message that never left


def test_the_sequence_survives_the_deletion_of_the_row_that_carried_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path) as spool:
        [first] = spool.append([reading(0)], durable=False, messages=1)
        assert spool.next_seq() == 1
        spool.delete([first])
        [second] = spool.append([reading(1)])  # deletes the row with seq 1, carries none
        spool.delete([second])
        spool.flush_deletes()
        assert spool._count() == 0
    with Spool(path) as spool:
        assert spool.next_seq() == 2
