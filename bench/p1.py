"""The gateway's footprint with a DSMR 5 meter on its P1 port (a telegram every second).

    .venv/bin/python bench/p1.py [--window 60] [--warmup 10]

Runs ``zonnewijk-gateway run`` as its own process twice in the same run, against a private
Mosquitto and one simulated SunSpec inverter polled every 10 s (production):

1. **reference**: the inverter only;
2. **with P1**: the same plus a simulated DSMR 5.0 meter (collector/simulator/p1_meter.py)
   writing one telegram a second into a socat pty pair, aggregated into 5-minute readings.

For each it reads the gateway's CPU time (``/proc/<pid>/stat``) over ``--window`` seconds
after ``--warmup``, and its resident memory (``VmRSS``, peak ``VmHWM``). It prints both, the
P1 share (difference) and the ratio to the reference, and the figures scaled to a Raspberry
Pi 3 class core: CPU times ``PI3_SLOWDOWN`` (an assumption, not measured: a Cortex-A53 at
1.2 GHz runs CPython about 8-10 times slower per core than a current x86-64 server core, so
10 is taken). Memory is not scaled (64-bit Raspberry Pi OS has the same object sizes; 32-bit
is smaller).

Goals (issue 17): RSS < 60 MB, < 2 % of a Pi 3 class core.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from _figures import Goal, report
from _gateway_env import gateway_env
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.pty import PtyPair
from collector.devtools.services import Mosquitto
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.simulator.p1_meter import MeterValues, P1Emulator

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOAL_RSS_MB = 60.0
GOAL_CPU_PCT = 2.0
#: Assumed ratio of a Raspberry Pi 3 core's CPython speed to this machine's (see above).
PI3_SLOWDOWN = 10.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mb(pid: int) -> tuple[float, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def meter_values(started: float) -> MeterValues:
    """A home exporting 1.5 kW, importing nothing: counters move as the power says."""
    elapsed_s = time.monotonic() - started
    return MeterValues(
        ts=datetime.now().astimezone(),
        import_t1_wh=1_234_567.0,
        import_t2_wh=2_345_678.0,
        export_t1_wh=345_678.0 + 1500.0 * elapsed_s / 3600,
        export_t2_wh=456_789.0,
        import_power_w=0.0,
        export_power_w=1500.0,
        gas_m3=3102.448,
    )


def run_gateway(
    workdir: Path, tag: str, broker: Mosquitto, sim_port: int, p1_device: str | None,
    warmup_s: float, window_s: float,
) -> tuple[float, float, float]:  # fmt: skip
    """(share of a core, RSS MB, peak RSS MB) of one gateway process over the window."""
    config = workdir / f"gateway-{tag}.yaml"
    lines = [
        "gateway_id: gw-bench",
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: gw-bench-{tag}}}",
        f"spool: {{path: {workdir / f'spool-{tag}.sqlite3'}}}",
        "log_level: WARNING",
        "devices:",
        f"  - {{device_id: inv-1, host: 127.0.0.1, port: {sim_port}, unit: 1, interval_s: 10}}",
    ]
    if p1_device is not None:
        lines.append(f"p1: {{serial_port: {p1_device}, device_id: p1, interval_s: 300, gas: true}}")
    config.write_text("\n".join(lines) + "\n")
    with (workdir / f"gateway-{tag}.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway_firmware.cli", "run", "--config", str(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=gateway_env(),
        )
    published = count_messages(broker.port, "zonnewijk/v1/gw-bench/readings")
    try:
        time.sleep(warmup_s)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(window_s)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        rss, peak = memory_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)
        published.disconnect()
        published.loop_stop()
    if not published.user_data_get()["messages"]:  # a gateway that publishes nothing is idle
        raise RuntimeError(f"gateway {tag} published no readings: see {workdir}/gateway-{tag}.log")
    return (cpu1 - cpu0) / (t1 - t0), rss, peak


def count_messages(port: int, topic: str) -> mqtt.Client:
    """A client counting the messages on ``topic`` (``user_data_get()["messages"]``)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, userdata={"messages": 0})

    def on_message(c: mqtt.Client, userdata: dict[str, int], message: object) -> None:
        userdata["messages"] += 1

    client.on_message = on_message
    client.on_connect = lambda c, *args: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--window", type=float, default=60.0, help="measured seconds [s]")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before [s]")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="zw-bench-p1-") as tmp,
        Mosquitto.create() as broker,
        SimulatedInverters({1: layout_for("sunspec-int")}) as sim,
    ):
        workdir = Path(tmp)
        sim.set_values(1, ac_power_w=2000.0, ac_energy_wh=1_000_000.0)
        ref_cpu, ref_rss, ref_peak = run_gateway(
            workdir, "ref", broker, sim.port, None, args.warmup, args.window
        )
        with PtyPair(workdir) as pair:
            started = time.monotonic()
            with P1Emulator(pair.device_end, lambda now: meter_values(started)) as meter:
                p1_cpu, p1_rss, p1_peak = run_gateway(
                    workdir, "p1", broker, sim.port, pair.gateway_end, args.warmup, args.window
                )
                telegrams = meter.written
    share_p1 = max(p1_cpu - ref_cpu, 0.0)
    pi3_pct = 100 * p1_cpu * PI3_SLOWDOWN
    print(f"gateway footprint, {args.window:g} s window after {args.warmup:g} s, this machine:")
    print(
        f"  reference (1 inverter at 10 s):      {100 * ref_cpu:5.3f}% of a core, "
        f"RSS {ref_rss:5.1f} MB (peak {ref_peak:5.1f})"
    )
    print(
        f"  with P1 (DSMR 5, {telegrams} telegrams): {100 * p1_cpu:5.3f}% of a core, "
        f"RSS {p1_rss:5.1f} MB (peak {p1_peak:5.1f})"
    )
    print(
        f"  P1's share: {100 * share_p1:5.3f}% of a core "
        f"({1000 * share_p1:5.2f} ms CPU per telegram), +{p1_rss - ref_rss:4.1f} MB; "
        f"ratio to reference: CPU x{p1_cpu / max(ref_cpu, 1e-9):4.2f}, RSS x{p1_rss / ref_rss:4.2f}"
    )
    ok_cpu, ok_rss = pi3_pct < GOAL_CPU_PCT, p1_peak < GOAL_RSS_MB
    print(
        f"  scaled to a Pi 3 class core (x{PI3_SLOWDOWN:g}, assumed): {pi3_pct:4.2f}% "
        f"(goal < {GOAL_CPU_PCT:g}%: {'ok' if ok_cpu else 'MISSED'}); "
        f"peak RSS {p1_peak:4.1f} MB (goal < {GOAL_RSS_MB:g} MB: {'ok' if ok_rss else 'MISSED'})"
    )
    report(
        "p1_pi3_cpu_pct",
        pi3_pct,
        "%",
        Goal("<", GOAL_CPU_PCT, why="issue 17: < 2 % of a Pi 3 class core (x10 assumed)"),
        detail=f"{100 * p1_cpu:.3f} % of a core here, x{PI3_SLOWDOWN:g}",
    )
    report(
        "p1_peak_rss_mb",
        p1_peak,
        "MB",
        Goal("<", GOAL_RSS_MB, why="issue 17: RSS < 60 MB"),
        detail=f"reference (inverter only) {ref_peak:.1f} MB",
    )
    report(
        "p1_cpu_ratio_to_reference",
        p1_cpu / max(ref_cpu, 1e-9),
        "x",
        detail=f"P1 {1000 * share_p1:.2f} ms CPU per telegram, {telegrams} telegrams",
    )
    return 0  # a missed goal is the suite's SHORT, as in every bench


if __name__ == "__main__":
    sys.exit(main())
