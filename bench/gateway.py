"""Gateway footprint and backlog replay, measured on real parts.

    .venv/bin/python bench/gateway.py [--window 20] [--interval 1] [--backlog 60480]

1. **Footprint**: runs ``zonnewijk-gateway run`` as its own process against simulated SunSpec
   inverters (a pymodbus server in this process) and a private Mosquitto, with one and with
   four inverters. Polls at ``--interval`` (default 1 s, ten times faster than production) for
   ``--window`` seconds after a warm-up, reads the gateway's CPU time (``/proc/<pid>/stat``)
   and resident memory (``VmRSS``/``VmHWM``). A separate run that polls once and then idles
   gives the fixed cost per second (MQTT keepalive, status refresh, the loop). The load at a
   10 s interval is then ``idle + cpu_per_poll × devices / 10 s``.
2. **Replay**: fills a spool with ``--backlog`` readings (60,480 = 7 days at 10 s) and starts
   the gateway against a live collector (MQTT -> InfluxDB); reports the time until the spool
   is empty and until InfluxDB holds every backlog reading, and the gateway's peak memory.

Goals (issue 4): under 60 MB resident, under 2% of a core at a 10-second interval, the whole
backlog stored within 60 s. Recorded as figures (``bench/_figures.py``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _figures import at_most, report
from _gateway_env import gateway_env

from collector.devtools.services import Influxd, Mosquitto, free_port
from collector.ingest.pipeline import Collector, MqttConnection
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.timeseries.influx import InfluxClient
from gateway_firmware import health
from gateway_firmware.spool import Spool
from zonnewijk_wire import InverterState, Reading

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PRODUCTION_INTERVAL_S = 10.0
GOAL_RSS_MB = 60.0
GOAL_CPU_PCT = 2.0
GOAL_REPLAY_S = 60.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process [s]."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of a process [MB]."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def write_config(
    path: Path,
    *,
    broker_port: int,
    sim_port: int,
    devices: int,
    interval_s: float,
    spool_path: Path,
    replay_rate: float | None = None,
    health_port: int | None = None,
) -> None:
    rate = f", replay_readings_per_s: {replay_rate}" if replay_rate else ""
    lines = [
        "gateway_id: gw-bench",
        f"mqtt: {{host: 127.0.0.1, port: {broker_port}}}",
        f"spool: {{path: {spool_path}{rate}}}",
        "log_level: WARNING",
        *([f"health_port: {health_port}"] if health_port else []),
        "devices:",
    ]
    for unit in range(1, devices + 1):
        lines.append(
            f"  - {{device_id: inv-{unit}, host: 127.0.0.1, port: {sim_port}, unit: {unit},"
            f" interval_s: {interval_s}}}"
        )
    path.write_text("\n".join(lines) + "\n")


def spool_depth(health_port: int) -> int | None:
    """Readings the gateway says wait for a PUBACK, None before its health endpoint answers."""
    try:
        return health.spool_depth(health.read_health(health_port))
    except (OSError, ValueError):
        return None


def start_gateway(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway_firmware.cli", "run", "--config", str(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=gateway_env(),
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def footprint(
    workdir: Path, broker: Mosquitto, sim: SimulatedInverters, devices: int, interval_s: float,
    warmup_s: float, window_s: float,
) -> tuple[float, float, float, int]:  # fmt: skip
    """(cpu seconds per second, RSS MB, peak RSS MB, polls) over the window."""
    tag = f"{devices}-{interval_s:g}"
    spool_path = workdir / f"spool-{tag}.sqlite3"
    config = workdir / f"gateway-{tag}.yaml"
    write_config(
        config,
        broker_port=broker.port,
        sim_port=sim.port,
        devices=devices,
        interval_s=interval_s,
        spool_path=spool_path,
    )
    proc = start_gateway(config, workdir / f"gateway-{tag}.log")
    try:
        time.sleep(warmup_s)
        with Spool(spool_path, read_only=True) as spool:
            seq0 = spool.stats().seq
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(window_s)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        rss, peak = memory_mb(proc.pid)
        with Spool(spool_path, read_only=True) as spool:
            # each live poll goes out as one message with its own sequence number
            polls = spool.stats().seq - seq0
    finally:
        stop(proc)
    return (cpu1 - cpu0) / (t1 - t0), rss, peak, polls


def fill_backlog(spool_path: Path, count: int) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10 * count + 60)
    with Spool(spool_path) as spool:
        batch: list[Reading] = []
        for i in range(count):
            batch.append(
                Reading(
                    device_id="inv-backlog",
                    ts=start + timedelta(seconds=10 * i),
                    ac_power_w=float(i % 3000),
                    ac_energy_wh=10_000_000.0 + i,
                    ac_voltage_v=230.0,
                    grid_frequency_hz=50.0,
                    state=InverterState.PRODUCING,
                    vendor_state=4,
                )
            )
            if len(batch) == 2000:
                spool.append(batch)
                batch = []
        if batch:
            spool.append(batch)


def replay(
    workdir: Path,
    broker: Mosquitto,
    influxd: Influxd,
    sim: SimulatedInverters,
    count: int,
    replay_rate: float | None,
) -> tuple[float, float, float, int]:
    """(seconds until the spool is empty, until InfluxDB has every reading, peak RSS MB, stored)."""
    spool_path = workdir / "spool-replay.sqlite3"
    t_fill = time.monotonic()
    fill_backlog(spool_path, count)
    print(f"  filled a spool with {count} readings in {time.monotonic() - t_fill:.1f} s")
    influx = InfluxClient(influxd.url, f"bench_{uuid.uuid4().hex[:8]}")
    conn = MqttConnection(host="127.0.0.1", port=broker.port, client_id="bench-collector")
    config = workdir / "gateway-replay.yaml"
    write_config(
        config,
        broker_port=broker.port,
        sim_port=sim.port,
        devices=1,
        interval_s=PRODUCTION_INTERVAL_S,
        spool_path=spool_path,
        replay_rate=replay_rate,
        health_port=(health_port := free_port()),
    )
    query = 'SELECT count("ac_energy_wh") FROM "inverter" WHERE "device" = \'inv-backlog\''
    with Collector(mqtt_connection=conn, influx=influx):
        started = time.monotonic()
        proc = start_gateway(config, workdir / "gateway-replay.log")
        drained_s = stored_s = float("nan")
        stored = 0
        peak = 0.0
        try:
            deadline = started + 300
            while time.monotonic() < deadline:
                peak = max(peak, memory_mb(proc.pid)[1])
                # The gateway's own count (see gateway_firmware.health.spool_depth).
                if drained_s != drained_s and spool_depth(health_port) == 0:  # nan: not yet
                    drained_s = time.monotonic() - started
                rows = influx.query_records(query)
                stored = int(rows[0]["count"]) if rows else 0
                if stored >= count and stored_s != stored_s:
                    stored_s = time.monotonic() - started
                if stored_s == stored_s and drained_s == drained_s:  # both measured
                    break
                time.sleep(0.25)
        finally:
            stop(proc)
    influx.query(f'DROP DATABASE "{influx.database}"', database="", epoch=None)
    return drained_s, stored_s, peak, stored


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def footprints(
    workdir: Path, broker: Mosquitto, sim: SimulatedInverters, args: argparse.Namespace
) -> None:
    print(f"footprint (poll every {args.interval:g} s, {args.window:g} s window):")
    idle_cpu, idle_rss, _, _ = footprint(workdir, broker, sim, 1, 3600, args.warmup, args.window)
    print(f"  idle (no polls):   {100 * idle_cpu:5.2f}% of a core, RSS {idle_rss:5.1f} MB")
    worst_rss = idle_rss
    worst_pct = 0.0
    for devices in (1, 4):
        cpu, rss, peak, polls = footprint(
            workdir, broker, sim, devices, args.interval, args.warmup, args.window
        )
        per_poll_ms = 1000 * max(cpu - idle_cpu, 0.0) * args.window / max(polls, 1)
        at_10s_pct = 100 * (idle_cpu + per_poll_ms / 1000 * devices / PRODUCTION_INTERVAL_S)
        worst_rss = max(worst_rss, peak)
        worst_pct = max(worst_pct, at_10s_pct)
        print(
            f"  {devices} inverter(s): {polls} polls, {per_poll_ms:5.1f} ms CPU per poll, "
            f"{100 * cpu:5.2f}% of a core at {args.interval:g} s -> "
            f"{at_10s_pct:4.2f}% at 10 s; RSS {rss:5.1f} MB (peak {peak:5.1f} MB)"
        )
    print(
        f"  goal: < {GOAL_RSS_MB:g} MB resident: {verdict(worst_rss < GOAL_RSS_MB)} "
        f"({worst_rss:.1f} MB); < {GOAL_CPU_PCT:g}% of a core at 10 s: "
        f"{verdict(worst_pct < GOAL_CPU_PCT)} ({worst_pct:.2f}%)"
    )
    report("peak_rss_mb", worst_rss, "MB", at_most(GOAL_RSS_MB, "issue 4"))
    report(
        "cpu_pct_of_a_core_at_10s",
        worst_pct,
        "%",
        at_most(GOAL_CPU_PCT, "issue 4"),
        detail=f"1 and 4 inverters, idle {100 * idle_cpu:.2f}% of a core",
    )


def replays(
    workdir: Path, broker: Mosquitto, sim: SimulatedInverters, args: argparse.Namespace
) -> None:
    rate_text = f"{args.replay_rate:g} readings/s" if args.replay_rate else "default rate"
    print(f"replay of a {args.backlog}-reading backlog into a live collector ({rate_text}):")
    with Influxd.create() as influxd:
        drained_s, stored_s, peak, stored = replay(
            workdir, broker, influxd, sim, args.backlog, args.replay_rate
        )
    rate = stored / stored_s if stored_s == stored_s else float("nan")
    print(
        f"  spool empty after {drained_s:.1f} s; {stored} readings in InfluxDB after "
        f"{stored_s:.1f} s ({rate:,.0f} readings/s); gateway peak RSS {peak:.1f} MB"
    )
    print(f"  goal: backlog stored within {GOAL_REPLAY_S:g} s: {verdict(stored_s < GOAL_REPLAY_S)}")
    report(
        "backlog_stored_s",
        stored_s,
        "s",
        at_most(GOAL_REPLAY_S, "issue 4"),
        detail=f"{stored} of {args.backlog} readings, {rate:,.0f} readings/s ({rate_text}); "
        f"spool empty after {drained_s:.1f} s; peak RSS {peak:.1f} MB",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=20.0, help="measuring window [s]")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up before measuring [s]")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval [s]")
    parser.add_argument("--backlog", type=int, default=60_480, help="backlog readings")
    parser.add_argument(
        "--replay-rate",
        type=float,
        default=None,
        help="spool.replay_readings_per_s for the replay (default: the configuration default)",
    )
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument("--skip-footprint", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="zw-bench-gw-") as tmp:
        workdir = Path(tmp)
        units = {unit: layout_for("sunspec-int") for unit in range(1, 5)}
        with Mosquitto.create() as broker, SimulatedInverters(units) as sim:
            for unit in units:
                sim.set_values(unit, ac_power_w=2000.0 + unit, ac_energy_wh=1_000_000.0 * unit)
            if not args.skip_footprint:
                footprints(workdir, broker, sim, args)
            if not args.skip_replay:
                replays(workdir, broker, sim, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
