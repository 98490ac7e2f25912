"""The real gateway under a faked wall clock (Debian's libfaketime): a boot at 1970 and a 2-hour
step back, against real Mosquitto, the real collector and InfluxDB (docs/clock.md).

The gateway runs as a subprocess with ``LD_PRELOAD=libfaketime``; its wall clock follows a
``FAKETIME_TIMESTAMP_FILE`` that the test rewrites (``FAKETIME_NO_CACHE=1``: read at every call),
its monotonic clock is left alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``), as on a Pi, where NTP
steps the wall clock and nothing steps the monotonic one. Whether the clock is synchronised
comes from a flag file (``ZONNEWIJK_GATEWAY_CLOCK_SYNC=file:...``), which the test creates when
it "syncs" (the mechanism of timesyncd's ``/run/systemd/timesync/synchronized``).
``faketime_shim/sitecustomize.py`` works around libfaketime's ``time.sleep`` bug (it says which).

Each test counts: committed (the spool's audit table, the held readings included once released),
stored (InfluxDB), lost (committed, not stored), doubled (stored twice or not committed).
"""

from __future__ import annotations

import glob
import itertools
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.devtools.services import Mosquitto
from collector.ingest.pipeline import Collector, MqttConnection
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.timeseries.influx import InfluxClient
from gateway_firmware.spool import Spool, SpooledReading
from tests.gateway_firmware.gateway_process import start_gateway, wait_until

REPO = Path(__file__).resolve().parents[2]
SHIM = Path(__file__).resolve().parent / "faketime_shim"
LIBFAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not LIBFAKETIME, reason="libfaketime is not installed (Debian package faketime)"
    ),
]


@dataclass
class Outcome:
    committed: list[SpooledReading]
    stored: int
    lost: int
    doubled: int
    rows: list[dict[str, Any]]
    held_at_sync: int
    log: str


class FakedClock:
    """The gateway's faked wall clock (a libfaketime timestamp file) and its sync flag."""

    def __init__(self, directory: Path, spec: str, *, synced: bool) -> None:
        self.file = directory / "faketime"
        self.flag = directory / "synchronized"
        self.set(spec)
        if synced:
            self.flag.touch()

    def set(self, spec: str) -> None:
        """``@1970-01-01 00:00:00`` (start there, then run), ``+0``, ``-7200`` [s]..."""
        partial = self.file.with_suffix(".partial")
        partial.write_text(spec + "\n")
        partial.replace(self.file)  # atomic: the library never reads half a file

    def sync(self) -> None:
        self.flag.touch()

    def env(self) -> dict[str, str]:
        return {
            "LD_PRELOAD": LIBFAKETIME[0],
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "ZONNEWIJK_GATEWAY_CLOCK_SYNC": f"file:{self.flag}",
            "PYTHONPATH": f"{SHIM}{os.pathsep}{REPO}",
        }


def _depths(spool_path: Path) -> tuple[int, int]:
    """(waiting readings, readings held for the clock) of the gateway's spool."""
    with Spool(spool_path, read_only=True) as spool:
        return spool.stats().depth, spool.held_depth()


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto.create() as b:
        yield b


def _run(
    tmp_path: Path,
    broker: Mosquitto,
    influx: InfluxClient,
    clock: FakedClock,
    scenario: Callable[[Callable[[float], None], Path], int],
) -> Outcome:
    """Gateway (faked clock) -> Mosquitto -> collector -> InfluxDB through ``scenario``, then
    drain the spool and count. ``scenario(run_for, spool_path)`` returns the held count at
    the sync (or 0)."""
    gw = f"gw-clock-{uuid.uuid4().hex[:6]}"
    spool_path = tmp_path / "spool.sqlite3"
    sim = SimulatedInverters({1: layout_for("sunspec-int"), 2: layout_for("sunspec-float")})
    sim.start()
    energy = [1_000_000.0, 2_000_000.0]
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"""
gateway_id: {gw}
mqtt: {{host: 127.0.0.1, port: {broker.port}, reconnect_min_s: 1, reconnect_max_s: 2}}
spool: {{path: {spool_path}, audit: true, replay_batch_size: 50}}
status_interval_s: 5
devices:
  - {{device_id: inv-1, host: 127.0.0.1, port: {sim.port}, unit: 1, interval_s: 1,
      timeout_s: 0.5}}
  - {{device_id: inv-2, host: 127.0.0.1, port: {sim.port}, unit: 2, interval_s: 1,
      timeout_s: 0.5}}
"""
    )
    conn = MqttConnection(host="127.0.0.1", port=broker.port, client_id=f"col-{gw}")
    collector = Collector(mqtt_connection=conn, influx=influx)
    collector.start()
    log_path = tmp_path / "gateway.log"
    gateway: subprocess.Popen[bytes] | None = None

    def run_for(seconds: float) -> None:
        """Keep the inverters producing while the gateway polls [s]."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for unit in (1, 2):
                energy[unit - 1] += 0.05
                sim.set_values(unit, ac_energy_wh=energy[unit - 1], ac_power_w=1500.0)
            time.sleep(0.1)
            assert gateway is not None and gateway.poll() is None, log_text()[-3000:]

    def log_text() -> str:
        return log_path.read_text(errors="replace")

    def stored_rows() -> list[dict[str, Any]]:
        return influx.query_records(f'SELECT * FROM "inverter" WHERE "gateway" = \'{gw}\'')

    try:
        with log_path.open("ab") as log:
            gateway = start_gateway(config, log, clock.env())
            wait_until(
                "the gateway did not connect", lambda: "connected to the broker" in log_text(), 30
            )
            held_at_sync = scenario(run_for, spool_path)
            sim.stop()  # the inverters go quiet: nothing new is committed
            wait_until("the spool did not drain", lambda: _depths(spool_path) == (0, 0), 60)
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(20) == 0
        with Spool(spool_path, read_only=True) as spool:
            committed = spool.audited()
            held = spool.held_audited()
        assert all(released is not None for _, released in held), "a held reading was not released"
        assert {r for _, r in held} <= {c.id for c in committed}
        keys = {(c.device_id, c.ts_ms) for c in committed}
        wait_until(
            "the collector did not store everything", lambda: len(stored_rows()) >= len(keys), 30
        )
        assert collector.wait_idle(10)
        rows = stored_rows()
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.kill()
        collector.stop()
        sim.stop()
    stored = [(r["device"], r["time"]) for r in rows]
    outcome = Outcome(
        committed=committed,
        stored=len(set(stored) & keys),
        lost=len(keys - set(stored)),
        doubled=len(stored) - len(set(stored)) + len(set(stored) - keys),
        rows=rows,
        held_at_sync=held_at_sync,
        log=log_text(),
    )
    print(
        f"committed {len(committed)} stored {outcome.stored} lost {outcome.lost} "
        f"doubled {outcome.doubled} (held at the sync {held_at_sync})"
    )
    assert len(keys) == len(committed), "two committed readings of one device share a stamp"
    for device in ("inv-1", "inv-2"):  # in commit order, each device's stamps only grow
        stamps = [c.ts_ms for c in committed if c.device_id == device]
        assert stamps == sorted(stamps) and len(stamps) == len(set(stamps)), device
    assert len(committed) >= 10, "too few readings to prove anything"
    assert outcome.stored == len(committed)
    assert outcome.lost == 0
    assert outcome.doubled == 0
    assert collector.stats.rejected_total() == 0, collector.stats.rejected_messages
    assert "Traceback" not in outcome.log, outcome.log[-3000:]
    return outcome


def _flags(row: dict[str, Any]) -> set[str]:
    """The clock's flags of a stored reading (the simulator also sets sentinel and others)."""
    return set((row.get("flags") or "").split(",")) & {
        "time_restamped",
        "time_guarded",
        "time_unknown",
    }


def test_a_boot_at_1970_is_held_then_restamped_when_the_clock_syncs(
    tmp_path: Path, broker: Mosquitto, influx: InfluxClient
) -> None:
    clock = FakedClock(tmp_path, "@1970-01-01 00:00:00", synced=False)
    started = time.time()
    marks: dict[str, float] = {}

    def scenario(run_for: Callable[[float], None], spool_path: Path) -> int:
        run_for(5.0)
        depth, held = _depths(spool_path)
        assert depth == 0 and held >= 6, (depth, held)  # nothing published, all held
        with Spool(spool_path, read_only=True) as spool:
            assert all(r.wall_ms < 86_400_000 for r in spool.held()), "not stamped at 1970?"
        assert influx.query_records("SELECT count(*) FROM inverter") == []
        clock.set("+0")  # NTP steps the wall clock to the true time ...
        run_for(1.0)
        marks["sync"] = time.time()
        clock.sync()  # ... and then says it is synchronised
        held = _depths(spool_path)[1]
        run_for(3.0)
        return held

    outcome = _run(tmp_path, broker, influx, clock, scenario)
    restamped = [r for r in outcome.rows if "time_restamped" in _flags(r)]
    plain = [r for r in outcome.rows if not _flags(r)]
    assert len(restamped) >= outcome.held_at_sync >= 12
    assert len(restamped) + len(plain) == len(outcome.rows)
    # re-stamped from the monotonic time of each poll: between the start and the sync, on the
    # 1 s grid of each device (the first poll may come late: connecting to the inverter)
    sync_ms = marks["sync"] * 1000
    for device in ("inv-1", "inv-2"):
        times = sorted(r["time"] for r in restamped if r["device"] == device)
        assert started * 1000 - 500 <= times[0] and times[-1] <= sync_ms + 1500, device
        steps = [b - a for a, b in itertools.pairwise(times)]
        assert 500 <= steps[0] <= 1100 and all(950 <= s <= 1050 for s in steps[1:]), steps
    assert all(r["time"] > sync_ms - 1500 for r in plain)
    with Spool(tmp_path / "spool.sqlite3", read_only=True) as spool:
        [mapping] = spool.clock_syncs()
    assert mapping.restamped == len(restamped) and mapping.time_unknown == 0
    assert abs(mapping.sync_wall_ns / 1e9 - marks["sync"]) < 3.0
    assert "wall clock not synchronised" in outcome.log
    assert "1970-01-01" in outcome.log  # the gateway's own log lines, stamped at 1970


def test_a_two_hour_step_back_keeps_stamps_unique_and_in_order(
    tmp_path: Path, broker: Mosquitto, influx: InfluxClient
) -> None:
    clock = FakedClock(tmp_path, "+0", synced=True)
    marks: dict[str, float] = {}

    def scenario(run_for: Callable[[float], None], spool_path: Path) -> int:
        run_for(4.0)
        marks["step"] = time.time()
        clock.set("-7200")  # NTP steps the wall clock back by two hours
        run_for(4.0)
        return 0

    outcome = _run(tmp_path, broker, influx, clock, scenario)
    step_ms = marks["step"] * 1000
    before = [r for r in outcome.rows if r["time"] < step_ms - 1500]
    guarded = [r for r in outcome.rows if "time_guarded" in _flags(r)]
    assert len(before) >= 4 and len(guarded) >= 6
    assert not any("time_guarded" in _flags(r) for r in before)
    for device in ("inv-1", "inv-2"):
        mine = sorted(r["time"] for r in guarded if r["device"] == device)
        last_before = max(
            r["time"] for r in outcome.rows if r["device"] == device and r not in guarded
        )
        # 1 ms apart, right after the last stamp before the step
        assert mine == list(range(last_before + 1, last_before + 1 + len(mine))), device
    # nothing was stamped two hours back, nothing in the future
    now_ms = time.time() * 1000
    assert all(step_ms - 10_000 < r["time"] < now_ms for r in guarded)
    assert datetime.fromtimestamp(min(r["time"] for r in outcome.rows) / 1000, UTC).year >= 2026
