"""Bytes a gateway writes to its SD card, per reading and per day, measured on a real gateway.

    .venv/bin/python bench/sd_writes.py [--interval 10] [--window 180] [--warmup 20]
        [--fsync unacknowledged|every-reading]

Runs ``zonnewijk-gateway run`` as its own process: it polls a simulated SunSpec inverter (a
pymodbus server in this process, Modbus TCP) at ``--interval`` (default 10 s, the production
interval) and publishes to a private Mosquitto, which acknowledges every message (PUBACK), so
the gateway goes through its whole cycle per reading: commit to the spool, publish, delete
after the PUBACK. The spool lives on this machine's disk (a block device; on tmpfs the kernel
counts no writes, and the bench refuses to run there).

After a warm-up (start-up writes byte code caches and creates the spool), the bench reads the
process's ``write_bytes`` from ``/proc/<pid>/io`` (bytes the process caused to be sent to the
storage layer, counted when a page of the page cache is dirtied: what an SD card is asked to
write) at the start and the end of a ``--window``, and the readings it polled meanwhile from
the gateway's health endpoint (``readings_polled``). The gateway's log goes to a pipe, not to
a file, so only the spool's writes are counted (journald writes the log in production).

Figures: bytes per reading (``write_bytes`` / readings) and megabytes per day at the interval
(``write_bytes`` / window × 86,400 s, idle writes included). Goal (issue 18): under 50 MB a day
at a 10 s interval.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from _figures import at_most, report
from _gateway_env import gateway_env

from collector.devtools.services import Mosquitto
from collector.simulator.modbus_device import SimulatedInverters, layout_for

REPO = Path(__file__).resolve().parents[1]
SECONDS_PER_DAY = 86_400
GOAL_MB_PER_DAY = 50.0


def write_bytes(pid: int) -> int:
    """Bytes the process caused to be written to storage so far (``/proc/<pid>/io``) [B]."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "write_bytes":
            return int(value)
    raise RuntimeError(f"/proc/{pid}/io has no write_bytes (kernel without task I/O accounting)")


def filesystem_type(path: Path) -> str:
    """The type of the file system that holds ``path`` (longest mount point in /proc/mounts)."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        mount_point, fstype = fields[1], fields[2]
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, fstype
    return kind


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def readings_polled(health_port: int) -> int:
    """The gateway's ``readings_polled`` from its health endpoint (200 or 503 both answer)."""
    url = f"http://127.0.0.1:{health_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:  # 503: not healthy, the body is the same snapshot
        body = exc.read()
    return int(json.loads(body)["readings_polled"])


def per_reading_b(written_b: int, readings: int) -> float:
    """Bytes written per reading [B]."""
    return written_b / readings if readings else float("nan")


def per_day_mb(written_b: int, window_s: float) -> float:
    """Megabytes (10^6 B) written per day at the measured rate [MB]."""
    return written_b / window_s * SECONDS_PER_DAY / 1e6


def measure(
    workdir: Path, broker: Mosquitto, sim: SimulatedInverters, args: argparse.Namespace
) -> tuple[int, int, float]:
    """(bytes written, readings polled, seconds) over the window."""
    health_port = free_port()
    spool_path = workdir / "spool.sqlite3"
    config = workdir / "gateway.yaml"
    config.write_text(
        "gateway_id: gw-sd\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        f"spool: {{path: {spool_path}, fsync: {args.fsync}}}\n"
        f"health_port: {health_port}\n"
        "log_level: WARNING\n"
        "devices:\n"
        f"  - {{device_id: inv-1, host: 127.0.0.1, port: {sim.port}, unit: 1,"
        f" interval_s: {args.interval}}}\n"
    )
    output: list[bytes] = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway_firmware.cli", "run", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=gateway_env(),
    )
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        time.sleep(args.warmup)
        if proc.poll() is not None:
            raise RuntimeError("the gateway exited: " + b"".join(output).decode(errors="replace"))
        w0, p0, t0 = write_bytes(proc.pid), readings_polled(health_port), time.monotonic()
        time.sleep(args.window)
        w1, p1, t1 = write_bytes(proc.pid), readings_polled(health_port), time.monotonic()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
    log = b"".join(output).decode(errors="replace")
    if "Traceback" in log:
        print(log[-3000:])
    return w1 - w0, p1 - p0, t1 - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=10.0, help="poll interval [s]")
    parser.add_argument("--window", type=float, default=180.0, help="measuring window [s]")
    parser.add_argument("--warmup", type=float, default=20.0, help="warm-up before measuring [s]")
    parser.add_argument(
        "--fsync",
        choices=("unacknowledged", "every-reading"),
        default="unacknowledged",
        help="the gateway's spool.fsync setting",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="directory for the spool (default: a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zw-bench-sd-", dir=args.dir) as tmp:
        workdir = Path(tmp)
        fs = filesystem_type(workdir)
        if fs in ("tmpfs", "ramfs"):
            print(f"{workdir} is on {fs}: the kernel counts no writes there; use --dir")
            return 2
        with (
            Mosquitto.create() as broker,
            SimulatedInverters({1: layout_for("sunspec-int")}) as sim,
        ):
            sim.set_values(1, ac_power_w=2000.0, ac_energy_wh=1_000_000.0)
            written, readings, seconds = measure(workdir, broker, sim, args)
    per_reading = per_reading_b(written, readings)
    per_day = per_day_mb(written, seconds)
    print(
        f"spool on {fs}: {written:,} B written in {seconds:.0f} s, {readings} readings at "
        f"{args.interval:g} s -> {per_reading:,.0f} B per reading, {per_day:.1f} MB per day"
    )
    detail = (
        f"{readings} readings in {seconds:.0f} s at {args.interval:g} s, spool.fsync "
        f"{args.fsync}, /proc/<pid>/io write_bytes of the gateway process, spool on {fs}"
    )
    report("bytes_per_reading", per_reading, "B", detail=detail)
    report(
        "mb_per_day",
        per_day,
        "MB",
        at_most(GOAL_MB_PER_DAY, "issue 18: SD cards die of writes"),
        detail=f"{written:,} B in {seconds:.0f} s, scaled to 86,400 s (idle writes included)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
