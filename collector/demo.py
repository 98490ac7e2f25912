"""``zonnewijk demo``: the whole data path on this machine, with live progress.

1. Start a private Mosquitto and InfluxDB (or use the ones given by flags / ``ZONNEWIJK_*``).
2. Start the collector (MQTT → InfluxDB, acknowledging only what is stored).
3. Backfill history: the fleet simulator publishes the last ``--backfill-days`` of every site
   through MQTT, exactly as gateways replaying their spool would, so dashboards and statements
   have data from the first minute.
4. Run live: ``--live-sites`` simulated inverters speak real Modbus TCP, their registers driven
   by the same physical model (continuing the backfill's counters), and one
   ``zonnewijk-gateway run`` process per inverter polls, spools and publishes.
5. On Ctrl-C or after ``--duration`` seconds: stop the gateways, let the collector drain, read
   back from InfluxDB and print per inverter the readings stored, latest power and counter.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import numpy as np
import yaml

from collector.devservices import Influxd, Mosquitto
from collector.influx import InfluxClient
from collector.ingest import Collector, MqttConnection
from collector.simulator.engine import STATES, Chunk, Simulation
from collector.simulator.fleet import Fleet, Site, generate_fleet
from collector.simulator.modbus_device import DcValues, SimulatedInverters, layout_for

log = logging.getLogger(__name__)

#: The simulator's inverter family → the simulated device's register layout and the
#: gateway's profile for it.
LAYOUTS: dict[str, tuple[str, str]] = {
    "sunspec-int": ("sunspec-int", "sunspec"),
    "sunspec-float": ("sunspec-float", "sunspec"),
    "huawei": ("huawei-sun2000", "huawei-sun2000"),
    "sungrow": ("sungrow-sg", "sungrow-sg"),
    "growatt": ("growatt", "growatt"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole data path locally and report what was stored",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--sites", type=int, default=122, help="sites in the simulated fleet (default 122)"
    )
    p.add_argument(
        "--live-sites",
        type=int,
        default=None,
        help="sites polled live over Modbus by gateway processes (default: all, at most 6)",
    )
    p.add_argument(
        "--backfill-days",
        type=float,
        default=60,
        help="days of history to publish first (default 60)",
    )
    p.add_argument(
        "--duration", type=float, default=None, help="seconds to run live (default: until Ctrl-C)"
    )
    p.add_argument("--interval", type=int, default=5, help="gateway poll interval [s] (default 5)")
    p.add_argument("--seed", type=int, default=1, help="fleet and weather seed")
    p.add_argument("--mqtt-host", default=None, help="use this broker instead of a private one")
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--influx-url", default=None, help="use this InfluxDB instead of a private one")
    p.add_argument("--influx-db", default="zonnewijk")
    p.set_defaults(func=run)


@dataclass
class _Live:
    sites: list[Site]
    devices: list[SimulatedInverters]
    gateways: list[subprocess.Popen[bytes]]


def run(args: argparse.Namespace) -> int:
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    if args.sites < 1:
        print("zonnewijk demo: --sites must be at least 1", file=sys.stderr)
        return 2
    live_count = min(args.sites, 6) if args.live_sites is None else min(args.live_sites, args.sites)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zonnewijk-demo-")))
        mqtt_host, mqtt_port = _broker(args, stack)
        influx = InfluxClient(_influx_url(args, stack), args.influx_db)
        collector = Collector(
            mqtt_connection=MqttConnection(
                host=mqtt_host, port=mqtt_port, client_id="zonnewijk-demo-collector"
            ),
            influx=influx,
        )
        collector.start()
        stack.callback(collector.stop)
        print(f"broker {mqtt_host}:{mqtt_port}, InfluxDB {influx.url} database {influx.database}")

        fleet = generate_fleet(args.sites, seed=args.seed)
        now = datetime.now(UTC).replace(microsecond=0)
        grid_now = now - timedelta(seconds=now.timestamp() % args.interval)
        history_sim = None
        if args.backfill_days > 0:
            history_sim = _backfill(fleet, grid_now, args, mqtt_host, mqtt_port, collector, stop)
        if stop.is_set():
            return _report(influx, collector)

        live = _start_live(fleet, live_count, grid_now, args, mqtt_host, mqtt_port, workdir, stack)
        sim = Simulation(fleet, grid_now, grid_now + timedelta(days=2), interval_s=args.interval)
        if history_sim is not None:
            sim.counter_wh[:] = history_sim.counter_wh
        driver = threading.Thread(
            target=_drive, args=(sim, live, stop), name="demo-live-driver", daemon=True
        )
        driver.start()
        _progress(collector, live, args.duration, stop)
        stop.set()
        driver.join(5)
        _stop_gateways(live.gateways)
        collector.wait_idle(timeout_s=30, quiet_s=1.0)
        return _report(influx, collector)
    return 0


def _broker(args: argparse.Namespace, stack: contextlib.ExitStack) -> tuple[str, int]:
    if args.mqtt_host:
        return str(args.mqtt_host), int(args.mqtt_port)
    broker = stack.enter_context(Mosquitto.create())
    return "127.0.0.1", broker.port


def _influx_url(args: argparse.Namespace, stack: contextlib.ExitStack) -> str:
    if args.influx_url:
        return str(args.influx_url)
    return stack.enter_context(Influxd.create()).url


def _backfill(
    fleet: Fleet,
    end: datetime,
    args: argparse.Namespace,
    mqtt_host: str,
    mqtt_port: int,
    collector: Collector,
    stop: threading.Event,
) -> Simulation:
    from collector.simulator.publish import publish_history

    start = (end - timedelta(days=args.backfill_days)).replace(hour=0, minute=0, second=0)
    print(
        f"backfilling {fleet.sites.__len__()} sites from {start:%Y-%m-%d} to now (5-minute readings) ..."
    )
    return publish_history(
        fleet,
        start,
        end,
        interval_s=300,
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        progress=_print_progress(collector),
        stop=stop,
    )


def _print_progress(collector: Collector) -> Iterator[None] | object:
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        print(
            f"\r  published {done:,}/{total:,} readings ({done / max(total, 1):.0%}), "
            f"stored {collector.stats.readings_stored:,}, {elapsed:.0f} s",
            end="",
            flush=True,
        )
        if done >= total:
            print()

    return show


def _start_live(
    fleet: Fleet,
    count: int,
    start: datetime,
    args: argparse.Namespace,
    mqtt_host: str,
    mqtt_port: int,
    workdir: Path,
    stack: contextlib.ExitStack,
) -> _Live:
    sites = list(fleet.sites[:count])
    devices: list[SimulatedInverters] = []
    gateways: list[subprocess.Popen[bytes]] = []
    for site in sites:
        layout_name, profile = LAYOUTS[site.family]
        device = SimulatedInverters({1: layout_for(layout_name)}).start()
        stack.callback(device.stop)
        devices.append(device)
        config = {
            "gateway_id": site.gateway_id,
            "mqtt": {"host": mqtt_host, "port": mqtt_port, "protocol": "5"},
            "spool": {"path": str(workdir / f"{site.gateway_id}.spool.sqlite3")},
            "status_interval_s": 10,
            "log_level": "WARNING",
            "devices": [
                {
                    "device_id": site.device_id,
                    "profile": profile,
                    "host": "127.0.0.1",
                    "port": device.port,
                    "unit": 1,
                    "interval_s": args.interval,
                    "rated_power_w": site.ac_rating_w,
                }
            ],
        }
        path = workdir / f"{site.gateway_id}.yaml"
        path.write_text(yaml.safe_dump(config))
        log_file = (workdir / f"{site.gateway_id}.log").open("ab")
        gateways.append(
            subprocess.Popen(
                [sys.executable, "-m", "gateway_firmware.cli", "run", "--config", str(path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        )
        log_file.close()
    stack.callback(_stop_gateways, gateways)
    print(
        f"live: {len(sites)} simulated inverters on Modbus TCP, one gateway process each "
        f"(polling every {args.interval} s); Ctrl-C stops"
    )
    return _Live(sites, devices, gateways)


def _drive(sim: Simulation, live: _Live, stop: threading.Event) -> None:
    """Set each live device's registers from the model at the current time."""
    indexes = [site.index for site in live.sites]
    for chunk in sim.chunks():
        for row, epoch in enumerate(chunk.epoch_s):
            while time.time() < epoch:
                if stop.wait(min(0.2, max(epoch - time.time(), 0.0))):
                    return
            if time.time() - epoch > sim.interval_s:
                continue  # catch up to now without pushing stale values
            for device, s in zip(live.devices, indexes, strict=True):
                device.set_values(1, **_values_at(chunk, row, s))


def _values_at(chunk: Chunk, t: int, s: int) -> dict[str, object]:
    def num(array: np.ndarray) -> float | None:  # type: ignore[type-arg]
        value = float(array[t, s])
        return value if np.isfinite(value) else None

    dc = [
        DcValues(
            dc_voltage_v=float(chunk.dc_voltage_v[t, s, m]),
            dc_current_a=float(chunk.dc_current_a[t, s, m]),
            dc_power_w=float(chunk.dc_power_w[t, s, m]),
        )
        for m in range(chunk.dc_voltage_v.shape[2])
        if np.isfinite(chunk.dc_voltage_v[t, s, m])
    ]
    return {
        "ac_power_w": num(chunk.ac_power_w) or 0.0,
        "ac_energy_wh": num(chunk.ac_energy_wh),
        "ac_voltage_v": num(chunk.ac_voltage_v),
        "grid_frequency_hz": num(chunk.grid_frequency_hz),
        "cabinet_temp_c": num(chunk.cabinet_temp_c),
        "dc": dc,
        "state": STATES[int(chunk.state[t, s])],
    }


def _progress(
    collector: Collector, live: _Live, duration: float | None, stop: threading.Event
) -> None:
    started = time.monotonic()
    while not stop.wait(2.0):
        elapsed = time.monotonic() - started
        running = sum(1 for g in live.gateways if g.poll() is None)
        print(
            f"  {elapsed:5.0f} s  gateways running {running}/{len(live.gateways)}  "
            f"messages {collector.stats.messages:,}  readings stored {collector.stats.readings_stored:,}  "
            f"rejected {collector.stats.rejected_total()}",
            flush=True,
        )
        if duration is not None and elapsed >= duration:
            return


def _stop_gateways(gateways: Sequence[subprocess.Popen[bytes]]) -> None:
    for g in gateways:
        if g.poll() is None:
            g.send_signal(signal.SIGTERM)
    for g in gateways:
        try:
            g.wait(10)
        except subprocess.TimeoutExpired:
            g.kill()


def _report(influx: InfluxClient, collector: Collector) -> int:
    rows = influx.query_records(
        "SELECT count(ac_energy_wh) AS readings, last(ac_power_w) AS power_w, "
        "last(ac_energy_wh) AS energy_wh FROM inverter GROUP BY device"
    )
    rows.sort(key=lambda r: str(r["device"]))
    print(f"\n{'inverter':<16} {'readings':>9} {'latest power':>13} {'lifetime energy':>16}")
    for r in rows:
        power = "-" if r["power_w"] is None else f"{r['power_w']:,.0f} W"
        energy = "-" if r["energy_wh"] is None else f"{r['energy_wh'] / 1000:,.1f} kWh"
        print(f"{r['device']:<16} {r['readings']:>9,} {power:>13} {energy:>16}")
    total = sum(int(r["readings"]) for r in rows)
    if collector.stats.rejected_total():
        print(
            f"rejected: {dict(collector.stats.rejected_messages + collector.stats.rejected_readings)}"
        )
    print(f"stored {total} readings from {len(rows)} inverters")
    return 0 if total > 0 else 1
