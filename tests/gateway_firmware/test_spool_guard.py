"""The spool guard on real faulty file systems: a full tmpfs, a corrupt file (issue 18)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_firmware.spool import Spool
from gateway_firmware.spool_guard import MEMORY_ID_BASE, GuardedSpool
from tests.gateway_firmware.test_spool import reading


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, mounted for this test (needs root and mount permission)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system up to the last byte; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for chunk in (65536, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * chunk):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def test_full_disk_holds_readings_in_memory_and_recovers(tiny_fs: Path) -> None:
    guard = GuardedSpool(tiny_fs / "spool.db", retry_s=0, memory_readings=5)
    guard.append([reading(0)])
    filler = fill(tiny_fs)
    ids: list[int] = []
    for i in range(1, 200):  # enough to spill past any room left in the WAL
        ids += guard.append([reading(i)])
        guard.next_seq()
    assert guard.state == "full", guard.problem
    assert guard.health().memory_readings == 5
    assert guard.memory_dropped > 0  # counted, never silent
    assert guard.dropped_total() >= guard.memory_dropped
    held = [i for i in ids if i >= MEMORY_ID_BASE]
    guard.delete(held[-1:])  # a PUBACK of a reading held in memory
    assert guard.health().memory_readings == 4
    assert not guard.maintain()  # still full
    filler.unlink()
    assert guard.maintain()  # space is back: memory goes into the spool
    assert guard.health().state == "ok" and guard.health().memory_readings == 0
    waiting = [r.reading() for r in guard.after(0, 1000)]
    assert reading(0) in waiting and reading(198) in waiting
    guard.close()


def test_corrupt_spool_is_moved_aside_and_readable_rows_salvaged(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.append([reading(i) for i in range(3)])
        last_seq = max(spool.next_seq() for _ in range(4))
    with path.open("r+b") as f:  # a power cut left garbage over the first page
        f.write(os.urandom(512))
    guard = GuardedSpool(path)
    assert guard.state == "ok"
    assert guard.problem is not None and "corrupt spool moved aside" in guard.problem
    [aside] = guard.corrupt_files
    assert aside.exists() and aside.name.startswith("spool.db.corrupt-")
    ids = guard.append([reading(9)])  # a fresh spool (nothing could be read from the old one)
    assert [r.reading() for r in guard.after(0, 10)] == [reading(9)]
    assert ids[0] >= 1 and guard.next_seq() >= 1
    guard.close()
    # the same, with the damage in the readings' page: the meta table is still read
    path.unlink()
    with Spool(path) as spool:
        spool.append([reading(i) for i in range(3)])
        last_seq = max(spool.next_seq() for _ in range(4))
    with path.open("r+b") as f:
        f.seek(4096)  # page 2, the readings table's root: its b-tree page header
        f.write(b"\xff" * 12)
    guard = GuardedSpool(path)
    assert len(guard.corrupt_files) == 1, guard.problem
    assert guard.next_seq() > last_seq  # the message sequence goes on
    guard.close()


def test_truncated_spool_salvages_what_is_left(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.append([reading(i) for i in range(400)])
    size = path.stat().st_size
    os.truncate(path, size // 2)
    guard = GuardedSpool(path)
    assert guard.corrupt_files, "a truncated spool must be detected"
    assert 0 <= guard.salvaged < 400
    assert guard.problem is not None and f"{guard.salvaged} readings salvaged" in guard.problem
    guard.append([reading(999)])
    assert [r.reading() for r in guard.after(0, 1000)][-1] == reading(999)
    assert guard.depth() == guard.salvaged + 1
    guard.close()
