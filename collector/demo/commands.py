"""``zonnewijk demo``: the whole data path on this machine, with live progress.

1. Start a private Mosquitto and InfluxDB (or use the ones given by flags / ``ZONNEWIJK_*``).
2. Start the collector (MQTT → InfluxDB, acknowledging only what is stored).
3. Backfill history: the fleet simulator publishes the last ``--backfill-days`` of every site
   through MQTT, exactly as gateways replaying their spool would, so dashboards and statements
   have data from the first minute.
4. Run live: ``--live-sites`` simulated inverters speak real Modbus TCP, their registers driven
   by the same physical model (continuing the backfill's counters), and one
   ``zonnewijk-gateway run`` process per inverter polls, spools and publishes. ``--p1-homes``
   of them (default: all, the opted-in homes) also have a smart meter: a simulated DSMR 5
   meter (household load less the roof's power) sends a telegram a second over a socat pty
   to the gateway's P1 port, which publishes one reading a minute on ``.../meter``.
   SunSpec inverters commissioned from 2024 present the DER models (701, 702, 714) instead of
   101-103, and ``--sunspec-meters`` live sites with a SunSpec inverter (default 2) also have a
   SunSpec grid meter (model 203) on unit 2 of the same Modbus server, which their gateway
   reads with the ``sunspec-meter`` profile and publishes on ``.../meter``.
5. On Ctrl-C or after ``--duration`` seconds: stop the gateways, let the collector drain, read
   back from InfluxDB and print per inverter the readings stored, latest power and counter.

The member portal runs beside it from the start (``--no-portal`` to skip), with a demo member
and a demo operator whose logins are printed.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import yaml

from collector.devtools.services import Influxd, Mosquitto
from collector.ingest.pipeline import Collector, MqttConnection
from collector.portal.demo import demo_portal
from collector.simulator.device_values import GridMeterValues
from collector.simulator.engine import Simulation
from collector.simulator.fleet import Fleet, Site, generate_fleet
from collector.simulator.live import LiveDevice, LiveFleet
from collector.simulator.modbus_device import gateway_profile_for
from collector.simulator.output import Progress, stream_lines
from collector.simulator.publish import device_infos, publish_lines
from collector.timeseries.influx import InfluxClient

log = logging.getLogger(__name__)

#: Interval of the backfilled history [s].
HISTORY_INTERVAL_S = 300


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
    p.add_argument(
        "--p1-homes",
        type=int,
        default=None,
        help="live homes with a simulated smart meter on the P1 port (default: all live ones)",
    )
    p.add_argument(
        "--sunspec-meters",
        type=int,
        default=2,
        help="live sites with a SunSpec inverter that also have a SunSpec grid meter on unit 2 "
        "(default 2)",
    )
    p.add_argument("--seed", type=int, default=1, help="fleet and weather seed")
    p.add_argument("--mqtt-host", default=None, help="use this broker instead of a private one")
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--influx-url", default=None, help="use this InfluxDB instead of a private one")
    p.add_argument("--influx-db", default="zonnewijk")
    p.add_argument("--no-portal", action="store_true", help="do not start the member portal")
    p.add_argument(
        "--portal-port", type=int, default=None, help="portal port (default: a free one)"
    )
    p.set_defaults(func=run)


@dataclass
class _Live:
    fleet: LiveFleet
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
        portal = None
        if not args.no_portal:
            portal = stack.enter_context(
                demo_portal(
                    fleet,
                    influx_url=influx.url,
                    influx_db=influx.database,
                    workdir=workdir / "portal",
                    port=args.portal_port,
                )
            )
            print(portal.banner())
        now = datetime.now(UTC).replace(microsecond=0)
        grid_now = now - timedelta(seconds=now.timestamp() % args.interval)
        history_sim = None
        if args.backfill_days > 0:
            history_sim = _backfill(fleet, grid_now, args, mqtt_host, mqtt_port, collector, stop)
        if stop.is_set():
            return _report(influx, collector)

        live_sites = fleet.sites[:live_count]
        live_fleet = LiveFleet(
            Fleet(seed=fleet.seed, sites=live_sites),
            start=grid_now,
            step_s=args.interval,
            grid_meters=_grid_meters(live_sites, fleet.seed, args.sunspec_meters),
        )
        if history_sim is not None:
            # The live inverters carry on from the counters the history ended with.
            live_fleet.sim.counter_wh[:] = history_sim.counter_wh[:live_count]
        live = _start_live(live_fleet, args, mqtt_host, mqtt_port, workdir, stack)
        driver = threading.Thread(
            target=live_fleet.run, kwargs={"stop": stop}, name="demo-live-driver", daemon=True
        )
        driver.start()
        _progress(collector, live, args.duration, stop)
        stop.set()
        driver.join(5)
        _stop_gateways(live.gateways)
        collector.wait_idle(timeout_s=30, quiet_s=1.0)
        code = _report(influx, collector)
        if portal is not None and args.duration is None:
            print(f"\n{portal.banner()}\n(the portal stops with the demo)")
        return code
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
    # History stops at the last 5-minute mark before the live part starts, never after it:
    # a history reading later than the first live one would make the counter step backwards.
    end -= timedelta(seconds=end.timestamp() % HISTORY_INTERVAL_S)
    start = (end - timedelta(days=args.backfill_days)).replace(hour=0, minute=0, second=0)
    print(
        f"backfilling {len(fleet)} sites from {start:%Y-%m-%d} until now, 5-minute readings, through MQTT"
    )
    sim = Simulation(fleet, start, end, HISTORY_INTERVAL_S)
    totals = publish_lines(
        stream_lines(sim),
        [s.gateway_id for s in fleet.sites],
        mqtt_host,
        mqtt_port,
        device_infos=device_infos(fleet),
        progress=_print_progress(collector),
        total_readings=sim.n_steps * len(fleet),
    )
    _wait_stored(collector, totals.readings, stop)
    print(
        f"  backfill: {totals.readings:,} readings published in {totals.messages:,} messages "
        f"({totals.seconds:.0f} s); collector stored {collector.stats.readings_stored:,}"
    )
    return sim


def _wait_stored(collector: Collector, published: int, stop: threading.Event) -> None:
    """Show the collector catching up until it has handled every published reading."""
    started = time.monotonic()
    while not stop.is_set():
        handled = collector.stats.readings_stored + sum(collector.stats.rejected_readings.values())
        print(
            f"\r  collector stored {handled:,}/{published:,} readings "
            f"({handled / max(published, 1):.0%}), {time.monotonic() - started:.0f} s   ",
            end="",
            flush=True,
        )
        # Done when every reading is handled, or nothing more arrives (some were refused).
        if handled >= published or collector.wait_idle(timeout_s=2.0, quiet_s=3.0):
            break
    print()


def _print_progress(collector: Collector) -> Progress:
    started = time.monotonic()
    shown = [0.0]

    def show(fraction: float, readings: int, message: str) -> None:
        now = time.monotonic()
        if shown[0] < 0 or (now - shown[0] < 1.0 and fraction < 1.0):
            return  # finished already, or shown less than a second ago
        shown[0] = -1.0 if fraction >= 1.0 else now
        print(
            f"\r  published {readings:,} readings ({fraction:.0%}), "
            f"stored {collector.stats.readings_stored:,}, {now - started:.0f} s   ",
            end="\n" if fraction >= 1.0 else "",
            flush=True,
        )

    return show


def _start_live(
    live_fleet: LiveFleet,
    args: argparse.Namespace,
    mqtt_host: str,
    mqtt_port: int,
    workdir: Path,
    stack: contextlib.ExitStack,
) -> _Live:
    devices = live_fleet.start_servers()
    stack.callback(live_fleet.stop)
    ratings = {site.device_id: site.ac_rating_w for site in live_fleet.fleet.sites}
    homes = len(devices) if args.p1_homes is None else max(0, min(args.p1_homes, len(devices)))
    p1_ports = [_start_meter(live_fleet, i, workdir, stack) for i in range(homes)]
    gateways = [
        _start_gateway(
            device,
            ratings[device.device_id],
            args.interval,
            mqtt_host,
            mqtt_port,
            workdir,
            p1_port=p1_ports[i] if i < homes else None,
        )
        for i, device in enumerate(devices)
    ]
    stack.callback(_stop_gateways, gateways)
    der = [d.device_id for d in devices if d.layout == "sunspec-der"]
    meters = [d.meter_device_id for d in devices if d.meter_unit is not None]
    print(
        f"live: {len(devices)} simulated inverters on Modbus TCP, one gateway process each "
        f"(polling every {args.interval} s), {homes} with a DSMR 5 smart meter on the P1 port "
        "(one telegram a second, a reading a minute); Ctrl-C stops\n"
        f"  DER (SunSpec 701) inverters: {', '.join(der) or 'none'}; "
        f"SunSpec grid meters (203): {', '.join(meters) or 'none'}"
    )
    return _Live(live_fleet, gateways)


#: Interval of the demo's P1 readings (production: 300 s, the consent's granularity) [s].
DEMO_P1_INTERVAL_S = 60


def _grid_meters(
    sites: Sequence[Site], seed: int, count: int
) -> dict[int, Callable[[datetime, float], GridMeterValues]]:
    """Grid meters for the first ``count`` sites with a SunSpec inverter (SMA, SolarEdge and
    Fronius installations carry one), driven by each home's household model."""
    from collector.simulator.grid_meter import HomeGridMeter
    from collector.simulator.household import household_for

    chosen = [s for s in sites if gateway_profile_for(s.device_layout) == "sunspec"][
        : max(count, 0)
    ]
    return {
        s.index: HomeGridMeter(household_for(seed * 1000 + s.index), seed=s.index) for s in chosen
    }


def _start_meter(
    live_fleet: LiveFleet, index: int, workdir: Path, stack: contextlib.ExitStack
) -> str:
    """A simulated smart meter for live site ``index`` on a pty; returns the gateway's end."""
    from collector.devtools.pty import PtyPair
    from collector.simulator.household import household_for
    from collector.simulator.p1_meter import HomeMeter, P1Emulator

    site = live_fleet.fleet.sites[index]
    directory = workdir / f"p1-{site.site_id}"
    directory.mkdir()
    pair = stack.enter_context(PtyPair(directory))
    server = live_fleet.servers[index]
    meter = HomeMeter(
        household_for(live_fleet.fleet.seed * 1000 + index),
        lambda: float(server.values(1).ac_power_w or 0.0),
        seed=index,
        gas=index % 2 == 0,
    )
    stack.enter_context(P1Emulator(pair.device_end, meter))
    return pair.gateway_end


def _start_gateway(
    device: LiveDevice,
    rated_power_w: float,
    interval_s: int,
    mqtt_host: str,
    mqtt_port: int,
    workdir: Path,
    *,
    p1_port: str | None = None,
) -> subprocess.Popen[bytes]:
    devices: list[dict[str, object]] = [
        {
            "device_id": device.device_id,
            "profile": device.gateway_profile,
            "host": device.host,
            "port": device.port,
            "unit": device.unit_id,
            "interval_s": interval_s,
            "rated_power_w": rated_power_w,
        }
    ]
    if device.meter_unit is not None:  # the SunSpec grid meter on the same server
        devices.append(
            {
                "device_id": device.meter_device_id,
                "profile": "sunspec-meter",
                "host": device.host,
                "port": device.port,
                "unit": device.meter_unit,
                "interval_s": interval_s,
            }
        )
    config: dict[str, object] = {
        "gateway_id": device.gateway_id,
        "mqtt": {"host": mqtt_host, "port": mqtt_port, "protocol": "5"},
        "spool": {"path": str(workdir / f"{device.gateway_id}.spool.sqlite3")},
        "status_interval_s": 10,
        "log_level": "WARNING",
        "devices": devices,
    }
    if p1_port is not None:
        config["p1"] = {
            "serial_port": p1_port,
            "device_id": f"{device.site_id}-p1",
            "interval_s": DEMO_P1_INTERVAL_S,
            "gas": True,
        }
    path = workdir / f"{device.gateway_id}.yaml"
    path.write_text(yaml.safe_dump(config))
    with (workdir / f"{device.gateway_id}.log").open("ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway_firmware.cli", "run", "--config", str(path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # the demo's gateways share this machine's clock, whatever its kernel says about
            # NTP (docs/clock.md); an explicit ZONNEWIJK_GATEWAY_CLOCK_SYNC still wins
            env={"ZONNEWIJK_GATEWAY_CLOCK_SYNC": "trust", **os.environ, "PYTHONUNBUFFERED": "1"},
        )


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
    meters = influx.query_records(
        "SELECT count(import_energy_wh) AS readings, last(import_power_w) AS import_w, "
        "last(export_power_w) AS export_w FROM grid_meter GROUP BY device"
    )
    if meters:
        print(f"\n{'smart meter':<16} {'readings':>9} {'import (mean)':>14} {'export (mean)':>14}")
        for r in sorted(meters, key=lambda r: str(r["device"])):
            print(
                f"{r['device']:<16} {r['readings']:>9,} {r['import_w'] or 0:>12,.0f} W "
                f"{r['export_w'] or 0:>12,.0f} W"
            )
    print(f"stored {total} readings from {len(rows)} inverters")
    return 0 if total > 0 else 1
