"""Import speed: a year of 15-minute readings for 20 devices through ``zonnewijk import readings``.

Run: ``.venv/bin/python bench/importing.py [--devices 20] [--days 365]`` (starts a private
InfluxDB).

The issue's done-when (issue 20): "a CSV of a year of 15-minute readings for 20 devices
imports in under a minute on this machine with a progress bar; importing it again stores
nothing new; a malformed row is reported with its line number and reason, and the good rows
are stored". The bench writes such a file (generic CSV, 20 x 35,040 rows, power in W and the
lifetime counter in kWh, one DC input, ~50 MB) with one malformed row in it, then

1. imports it with the command as a user runs it (a subprocess, progress bar on), from the
   start of the process until it exits: parsing, the collector's validation, the duplicate
   look-up, the writes and the rollup backfill of the imported days [s];
2. imports it again: must store nothing and count every reading as a duplicate [s];
3. reference: the same points' line protocol, pre-built, posted to another database of the
   same InfluxDB in 10,000-line batches by one client (the write ceiling on this machine) [s].

Figures (``bench/_figures.py``): the first import's wall time (goal: under 60 s, the issue),
its rate as a share of the raw InfluxDB write rate measured in this run (no goal: shows what
the import costs beyond the writes), the readings stored by the second import (goal 0) and
whether the malformed row was reported with its line and the other rows stored (goal 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _figures import Goal, at_most, report

from collector.devtools.services import Influxd
from collector.ingest.lines import reading_lines
from collector.timeseries.influx import InfluxClient
from zonnewijk_wire import DcInput, InverterState, Reading

STEP_S = 900
#: Where the broken row goes (a line number of the file, header = line 1).
MALFORMED_LINE = 12_345


def _power_w(k: int, step_s: int, device: int) -> float:
    """A day-shaped power (sine between 6 and 20 UTC, a seasonal factor), whole watts."""
    seconds = k * step_s
    hour = (seconds % 86400) / 3600.0
    day = seconds // 86400
    season = 0.55 + 0.45 * math.sin(2 * math.pi * (day - 80) / 365.0)
    if not 6.0 <= hour <= 20.0:
        return 0.0
    return float(
        round(3000 * season * math.sin(math.pi * (hour - 6.0) / 14.0) * (0.9 + device / 200))
    )


def write_year(path: Path, devices: int, days: int, start: datetime) -> tuple[int, list[Reading]]:
    """The CSV and the readings it holds (without the malformed row); returns (rows, readings)."""
    steps = days * 86400 // STEP_S
    readings: list[Reading] = []
    line = 1
    with path.open("w", encoding="utf-8") as out:
        out.write("ts,device_id,gateway_id,ac_power_w,ac_energy_kwh,dc1_voltage_v,dc1_power_w\n")
        for d in range(devices):
            device, gateway = f"INV-{d:04d}", f"GW-{d // 2:04d}"
            counter_wh = 1_000_000.0 + 10_000 * d
            for k in range(steps):
                ts = start + timedelta(seconds=k * STEP_S)
                power = _power_w(k, STEP_S, d)
                counter_wh += round(power * STEP_S / 3600.0)
                line += 1
                if line == MALFORMED_LINE:
                    out.write(f"{ts.isoformat()},{device},{gateway},lots,,,\n")
                    continue
                dc_v = 350.0 if power > 0 else 0.0
                dc_p = round(power * 1.03)
                out.write(
                    f"{ts.isoformat().replace('+00:00', 'Z')},{device},{gateway},{power:.0f},"
                    f"{counter_wh / 1000:.3f},{dc_v:.1f},{dc_p:.0f}\n"
                )
                readings.append(
                    Reading.model_construct(
                        device_id=device,
                        ts=ts,
                        ac_power_w=power,
                        ac_energy_wh=counter_wh,
                        ac_voltage_v=None,
                        grid_frequency_hz=None,
                        cabinet_temp_c=None,
                        dc=(
                            DcInput.model_construct(
                                mppt=1, dc_voltage_v=dc_v, dc_power_w=float(dc_p)
                            ),
                        ),
                        state=InverterState.UNKNOWN,
                    )
                )
    return line - 1, readings


def import_once(path: Path, influx: Influxd, db: str, work: Path, tag: str) -> tuple[float, dict]:
    argv = [
        sys.executable,
        "-m",
        "collector.cli",
        "import",
        "readings",
        str(path),
        "--format",
        "json",
        "--influx-url",
        influx.url,
        "--influx-db",
        db,
        "--dead-letters",
        str(work / f"dead-{tag}.jsonl"),
    ]
    env = dict(os.environ, ZONNEWIJK_DATA_DIR=str(work / "data"))
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    bar = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "(no progress bar)"
    print(f"  progress bar's last line: {bar[-120:]}")
    return elapsed, json.loads(done.stdout)


def raw_write_s(influx_url: str, readings: list[Reading]) -> tuple[float, int]:
    """Post the readings' line protocol (built beforehand) in 10,000-line batches."""
    lines: list[str] = []
    for r in readings:
        gateway = f"GW-{int(r.device_id[4:]) // 2:04d}"
        lines.extend(reading_lines(gateway, r))
    client = InfluxClient(influx_url, "bench_raw")
    client.create_database()
    start = time.perf_counter()
    for first in range(0, len(lines), 10_000):
        client.write_lines(lines[first : first + 10_000])
    return time.perf_counter() - start, len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    start = (datetime.now(UTC) - timedelta(days=args.days + 30)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp, Influxd.create() as influxd:
        work = Path(tmp)
        path = work / "year.csv"
        rows, readings = write_year(path, args.devices, args.days, start)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {rows:,} rows ({args.devices} devices x {args.days} days), {size_mb:.1f} MB")
        init = [sys.executable, "-m", "collector.cli", "db", "init", "--influx-url", influxd.url]
        subprocess.run([*init, "--influx-db", "bench_import"], check=True, capture_output=True)
        first_s, first = import_once(path, influxd, "bench_import", work, "first")
        stored = int(first["stored"])
        print(f"first import: {first_s:.1f} s, {stored:,} stored, rejected {first['rejected']}")
        second_s, second = import_once(path, influxd, "bench_import", work, "second")
        print(
            f"second import: {second_s:.1f} s, {second['stored']:,} stored, "
            f"{second['duplicates']:,} duplicates"
        )
        raw_s, points = raw_write_s(influxd.url, readings)
        print(f"raw influx: {points:,} points in {raw_s:.1f} s ({points / raw_s:,.0f} points/s)")
    examples = [e for f in first["files"] for e in f["examples"]]
    malformed_ok = (
        stored == rows - 1
        and first["rejected"] == {"invalid_ac_power_w": 1}
        and any(e["line"] == MALFORMED_LINE for e in examples)
    )
    print(f"malformed row: {examples[:1]}")
    import_rate = stored / first_s
    raw_rate = points / raw_s
    per_reading = points / len(readings)
    report(
        "import_year_20_devices_s",
        first_s,
        "s",
        Goal("<", 60.0, why="issue 20 done-when: a year of 15-min readings, 20 devices, < 1 min"),
        detail=f"{stored:,} readings ({points:,} points) from a {size_mb:.0f} MB CSV; "
        f"{import_rate:,.0f} readings/s",
    )
    report(
        "import_vs_raw_influx",
        import_rate * per_reading / raw_rate,
        "",
        detail=f"{import_rate * per_reading:,.0f} points/s imported against {raw_rate:,.0f} raw "
        "points/s posted in this run",
    )
    report(
        "reimport_stored",
        float(second["stored"]),
        "readings",
        at_most(0, "issue 20: importing it again stores nothing new"),
        detail=f"{second['duplicates']:,} duplicates in {second_s:.1f} s",
    )
    report(
        "malformed_row_reported_and_rest_stored",
        1.0 if malformed_ok else 0.0,
        "",
        Goal(">=", 1.0, why="issue 20: the malformed row's line and reason, the good rows stored"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
