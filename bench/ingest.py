"""Ingest throughput: raw InfluxDB writes against the whole path, one and two collectors.

Run: ``.venv/bin/python bench/ingest.py`` (starts a private Mosquitto and InfluxDB).

1. raw: the very line protocol the collector would write for these readings, pre-built, posted
   in 5,000-line batches by one client: the ceiling on this machine [points/s];
2. end-to-end, one collector: readings messages published as fast as one client can (a
   backlog replayed by the fleet) and stored by one ``zonnewijk collect`` process: decoded,
   validated, written, acknowledged [readings/s, from the first publish until the collectors'
   /health counts every reading stored (InfluxDB accepted the writes); InfluxDB's own count
   must then equal the readings sent; publisher, broker, collector and InfluxDB share this
   machine's CPUs];
3. the same with two collectors in one shared-subscription group.

Each reading is one ``inverter`` point unless ``--mppt N`` adds N ``dc`` points per reading
(then compare the printed points/s with raw: the last line divides readings by points).
Writes are not compressed unless ``--gzip`` (raw and collector alike), as for an InfluxDB on
the same host.
The last line is ``ingest: <R> readings/s end-to-end, raw influx <P> points/s, ratio <R/P>``
with R from the single collector.

Figures (``bench/_figures.py``): the single collector's readings/s as a share of raw points/s,
both measured in this run (goal: at least 0.5, issue 5: the collector is not the bottleneck),
and the same for two collectors (no goal: shown for what a second collector adds).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from _figures import at_least, report
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.services import Influxd, Mosquitto, free_port
from collector.timeseries.influx import GZIP_MIN_BYTES, InfluxClient
from collector.timeseries.measurements import reading_points
from zonnewijk_wire import DcInput, Reading, ReadingsBatch, encode_batch, readings_topic


def make_batches(readings: int, per_message: int, gateways: int, mppt: int) -> list[ReadingsBatch]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    per_gateway = readings // gateways
    batches: list[ReadingsBatch] = []
    for g in range(gateways):
        gateway = f"gw-{g:04d}"
        items = [
            Reading(
                device_id=f"inv-{g:04d}",
                ts=start + timedelta(seconds=10 * i),
                ac_power_w=1000.0 + i % 3000,
                ac_energy_wh=1e6 + 2.5 * i,
                ac_voltage_v=230.0 + (i % 7) / 10,
                grid_frequency_hz=50.0,
                cabinet_temp_c=35.5,
                dc=tuple(
                    DcInput(mppt=m + 1, dc_voltage_v=350.0, dc_current_a=1.5, dc_power_w=525.0)
                    for m in range(mppt)
                ),
                vendor_state=4,
            )
            for i in range(per_gateway)
        ]
        for seq, first in enumerate(range(0, len(items), per_message)):
            batches.append(
                ReadingsBatch(
                    gateway_id=gateway,
                    seq=seq,
                    sent_at=datetime.now(UTC),
                    readings=tuple(items[first : first + per_message]),
                )
            )
    return batches


def raw_rate(influx_url: str, batches: list[ReadingsBatch], gzip: bool) -> tuple[float, int]:
    lines = [
        p.to_line() for b in batches for r in b.readings for p in reading_points(b.gateway_id, r)
    ]
    client = InfluxClient(influx_url, "bench_raw", gzip_min_bytes=GZIP_MIN_BYTES if gzip else None)
    client.create_database()
    started = time.perf_counter()
    for first in range(0, len(lines), 5000):
        client.write_lines(lines[first : first + 5000])
    elapsed = time.perf_counter() - started
    return len(lines) / elapsed, len(lines)


def stored_by(metrics_ports: list[int]) -> int:
    """Readings the collectors report stored (InfluxDB accepted them), from their /health
    (cheaper for them to answer than /metrics)."""
    total = 0
    for port in metrics_ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                total += int(json.load(r)["readings_stored"])
        except OSError:
            continue
    return total


def count(client: InfluxClient) -> int:
    try:
        rows = client.query_records('SELECT count("ac_power_w") FROM "inverter"')
    except Exception:
        return 0
    return int(rows[0]["count"]) if rows else 0


def collector_argv(
    port: int, influx_url: str, db: str, client_id: str, group: str, metrics_port: int
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "collector.cli",
        "collect",
        "--mqtt-port",
        str(port),
        "--influx-url",
        influx_url,
        "--influx-db",
        db,
        "--client-id",
        client_id,
        "--share-group",
        group,
        "--no-backfill",
        "--max-age-days",
        "30",
        "--metrics-port",
        str(metrics_port),
    ]


def start(argv: list[str], log: Path, settings: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZONNEWIJK_")} | settings
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far [s] (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(60)


def end_to_end(
    broker: Mosquitto,
    influx_url: str,
    batches: list[ReadingsBatch],
    collectors: int,
    tmp: Path,
    settings: dict[str, str],
) -> float:
    db = f"bench_e2e_{collectors}"
    group = "bench" if collectors > 1 else ""
    log = tmp / f"collectors-{collectors}.log"
    metrics_ports = [free_port() for _ in range(collectors)]
    argvs = [
        collector_argv(broker.port, influx_url, db, f"bench-{collectors}-{n}", group, port)
        for n, port in enumerate(metrics_ports)
    ]
    procs = [start(a, log, settings) for a in argvs]
    time.sleep(3.0)  # connected and subscribed
    payloads = [(readings_topic(b.gateway_id), encode_batch(b)) for b in batches]
    expected = sum(len(b.readings) for b in batches)
    client = InfluxClient(influx_url, db)
    cpu_at_start = sum(cpu_seconds(p.pid) for p in procs)  # start-up is not ingest
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{collectors}")
    pub.max_inflight_messages_set(200)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    publish_started = time.perf_counter()
    infos = [pub.publish(topic, payload, qos=1) for topic, payload in payloads]
    try:
        # Done when the collectors report every reading stored (InfluxDB answered 204 to the
        # writes); polling InfluxDB itself would load the server being measured.
        deadline = time.monotonic() + 120
        published_s = None
        while time.monotonic() < deadline:
            if published_s is None and infos[-1].is_published():
                published_s = time.perf_counter() - publish_started
            if stored_by(metrics_ports) >= expected:
                break
            time.sleep(0.02)
        else:
            raise SystemExit(
                f"only {count(client)} of {expected} stored:\n{log.read_text()[-3000:]}"
            )
        elapsed = time.perf_counter() - publish_started
        if count(client) != expected:  # and they are there, each once
            raise SystemExit(f"collectors reported {expected} stored, InfluxDB has {count(client)}")
        for info in infos:
            info.wait_for_publish(60)
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_at_start
        print(
            f"  {collectors} collector(s): {elapsed:.2f} s wall (all published after "
            f"{published_s or elapsed:.2f} s), collector CPU {cpu:.2f} s "
            f"({cpu / expected * 1e6:.1f} us per reading)"
        )
    finally:
        pub.disconnect()
        pub.loop_stop()
        stop(procs)
    return expected / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--per-message", type=int, default=500, help="readings per MQTT message")
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--mppt", type=int, default=0, help="dc points per reading")
    parser.add_argument(
        "--gzip",
        action="store_true",
        help="compress writes (raw and collector alike); off by default, as for an InfluxDB on "
        "the same host (ZONNEWIJK_INFLUX_GZIP=false)",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="the collector's thread switch interval [s] (ZONNEWIJK_COLLECTOR_SWITCH_INTERVAL_S; "
        "default: the collector's own, 0.001; Python's default is 0.005)",
    )
    args = parser.parse_args()
    settings = {"ZONNEWIJK_INFLUX_GZIP": "true" if args.gzip else "false"}
    if args.switch_interval is not None:
        settings["ZONNEWIJK_COLLECTOR_SWITCH_INTERVAL_S"] = str(args.switch_interval)
    batches = make_batches(args.readings, args.per_message, args.gateways, args.mppt)
    readings = sum(len(b.readings) for b in batches)
    print(
        f"{readings} readings in {len(batches)} messages of {args.per_message}, "
        f"{1 + args.mppt} point(s) per reading; {os.cpu_count()} CPUs; "
        f"collector settings {settings}"
    )
    with (
        Mosquitto.create() as broker,
        Influxd.create() as influxd,
        tempfile.TemporaryDirectory() as tmp,
    ):
        raw, points = raw_rate(influxd.url, batches, args.gzip)
        print(f"raw influx: {points} points in 5000-line batches: {raw:,.0f} points/s")
        one = end_to_end(broker, influxd.url, batches, 1, Path(tmp), settings)
        per = 1 + args.mppt
        print(
            f"end-to-end, one collector: {one:,.0f} readings/s = {one * per:,.0f} points/s "
            f"({one * per / raw:.2f} of raw)"
        )
        two: float | None = None
        try:
            two = end_to_end(broker, influxd.url, batches, 2, Path(tmp), settings)
        except SystemExit as exc:  # reported, not hidden: the single-collector figure stands
            print(f"end-to-end, two collectors: FAILED: {exc}")
        else:
            print(
                f"end-to-end, two collectors (shared subscription): {two:,.0f} readings/s "
                f"= {two * per:,.0f} points/s"
            )
    print(
        f"ingest: {one:.0f} readings/s end-to-end, raw influx {raw:.0f} points/s, ratio {one / raw:.2f}"
    )
    report(
        "one_collector_vs_raw_influx",
        one * per / raw,
        "x",
        at_least(0.5, "issue 5: the collector is not the bottleneck"),
        detail=f"{one:,.0f} readings/s end-to-end against {raw:,.0f} raw points/s",
    )
    if two is not None:
        report(
            "two_collectors_vs_raw_influx",
            two * per / raw,
            "x",
            detail=f"{two:,.0f} readings/s with two collectors in a share group",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
