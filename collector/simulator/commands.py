"""``zonnewijk simulate`` and ``zonnewijk simulate-fleet``: the fleet simulator's commands.

Three ways to run (see ``docs/simulator.md``)::

    zonnewijk simulate --sites 122 --days 365 --start 2026-01-01 --interval 300 --seed 1 --out DIR
    zonnewijk simulate --days 60 --publish --mqtt-host 127.0.0.1 --mqtt-port 1883
    zonnewijk simulate --live --sites 3 --time-scale 60 --base-port 5100

and ``zonnewijk simulate-fleet --out config/fleet.example.yaml`` writes just the fleet file.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from collector.simulator.engine import Simulation, window
from collector.simulator.faults import (
    DEFAULT_RATES_PER_SITE_YEAR,
    FAULT_TYPES,
    FaultSchedule,
    generate_faults,
    write_ground_truth,
)
from collector.simulator.fleet import Fleet, generate_fleet
from collector.simulator.fleet_export import write_fleet_file


class ProgressLine:
    """Progress on stderr: one updating line on a terminal, a line per 10 % otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.last_decile = -1
        self.last_draw = 0.0

    def __call__(self, fraction: float, readings: int, message: str) -> None:
        stream = self.stream
        elapsed = time.monotonic() - self.started
        text = (
            f"{self.label}: {fraction * 100:5.1f} %  {readings:,} readings  {message}  "
            f"{elapsed:,.1f} s"
        )
        tty = bool(getattr(stream, "isatty", lambda: False)())
        if tty:
            now = time.monotonic()
            if now - self.last_draw > 0.2 or fraction >= 1.0:
                print("\r" + text, end="\n" if fraction >= 1.0 else "", file=stream, flush=True)
                self.last_draw = now
            return
        decile = int(fraction * 10)
        if decile > self.last_decile:
            self.last_decile = decile
            print(text, file=stream, flush=True)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-01") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _faults(
    args: argparse.Namespace, fleet: Fleet, start: datetime, end: datetime
) -> FaultSchedule:
    if args.no_faults:
        return FaultSchedule()
    types = tuple(args.fault_types.split(",")) if args.fault_types else FAULT_TYPES
    scale = args.fault_rate_scale
    rates = {k: v * scale for k, v in DEFAULT_RATES_PER_SITE_YEAR.items()}
    return generate_faults(fleet, start, end, rates, types, interval_s=args.interval)


def simulate_command(args: argparse.Namespace) -> int:
    fleet = generate_fleet(args.sites, args.seed)
    if args.live:
        return _live(args, fleet)
    start_day = args.start or (datetime.now(UTC).date() - timedelta(days=args.days))
    start, end = window(start_day, args.days)
    try:
        faults = _faults(args, fleet, start, end)
        sim = Simulation(fleet, start, end, args.interval, faults, batch_s=args.batch)
    except ValueError as exc:
        print(f"zonnewijk simulate: {exc}", file=sys.stderr)
        return 2
    if args.publish:
        from collector.simulator.output import stream_lines
        from collector.simulator.publish import device_infos, publish_lines

        totals = publish_lines(
            stream_lines(sim),
            [s.gateway_id for s in fleet.sites],
            args.mqtt_host,
            args.mqtt_port,
            device_infos=device_infos(fleet),
            username=args.mqtt_username,
            password=args.mqtt_password,
            progress=ProgressLine("publish"),
            total_readings=sim.n_steps * len(fleet),
        )
        print(
            f"published {totals.messages:,} batches ({totals.readings:,} readings) to "
            f"{args.mqtt_host}:{args.mqtt_port} in {totals.seconds:.1f} s "
            f"({totals.messages_per_s:,.0f} messages/s); {len(faults)} faults injected"
        )
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            write_ground_truth(faults.faults, args.out / "ground_truth.csv")
            write_fleet_file(fleet, args.out / "fleet.yaml", sim.reset_log)
        return 0
    if args.out is None:
        print("zonnewijk simulate: give --out DIR, --publish or --live", file=sys.stderr)
        return 2
    from collector.simulator.output import write_run

    run = write_run(sim, args.out, ProgressLine("simulate"))
    summary = json.loads((args.out / "summary.json").read_text())
    print(
        f"wrote {run.readings:,} readings in {run.lines:,} batches "
        f"({run.bytes / 1e6:,.1f} MB) to {args.out} in {run.seconds:.1f} s; "
        f"fleet yield {summary['fleet_specific_yield_kwh_per_kwp']} kWh/kWp; "
        f"{len(faults)} faults in ground_truth.csv"
    )
    return 0


def _live(args: argparse.Namespace, fleet: Fleet) -> int:
    from collector.simulator.live import LiveFleet

    start = None
    if args.start is not None:
        start = datetime(args.start.year, args.start.month, args.start.day, tzinfo=UTC)
    step = args.interval if args.interval_given else 10
    try:
        live = LiveFleet(
            fleet,
            start=start,
            time_scale=args.time_scale,
            step_s=step,
            host=args.host,
            base_port=args.base_port,
        )
    except ValueError as exc:
        print(f"zonnewijk simulate: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    with live:
        devices = [vars(d) for d in live.devices]
        if args.devices_file:
            args.devices_file.write_text(json.dumps(devices, indent=2) + "\n")
        for d in devices:
            print(
                f"{d['site_id']}  {d['gateway_id']}  {d['device_id']}  {d['family']:<13} "
                f"modbus tcp {d['host']}:{d['port']} unit {d['unit_id']} "
                f"(gateway profile {d['gateway_profile']})",
                flush=True,
            )
        last = [0.0]

        def show(sim_time: datetime) -> None:
            now = time.monotonic()
            if now - last[0] >= 10:
                last[0] = now
                print(
                    f"simulated time {sim_time:%Y-%m-%d %H:%M:%S} UTC", file=sys.stderr, flush=True
                )

        try:
            live.run(args.duration, stop, show)
        except KeyboardInterrupt:
            stop.set()
    return 0


def simulate_fleet_command(args: argparse.Namespace) -> int:
    fleet = generate_fleet(args.sites, args.seed)
    write_fleet_file(fleet, args.out)
    print(f"wrote {len(fleet)} sites (seed {args.seed}) to {args.out}")
    return 0


class _IntervalAction(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        namespace.interval_given = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate`` and ``simulate-fleet`` to ``zonnewijk``."""
    p = sub.add_parser(
        "simulate",
        help="simulate the fleet: write readings, publish them through MQTT, or serve them live",
        description="Simulate a district of rooftop PV systems with weather, inverters and "
        "faults (docs/simulator.md).",
    )
    p.add_argument("--sites", type=_positive_int, default=122, help="number of sites (default 122)")
    p.add_argument("--days", type=float, default=7.0, help="days to simulate (default 7)")
    p.add_argument("--start", type=_day, help="first day (UTC), default: --days before today")
    p.add_argument(
        "--interval",
        type=_positive_int,
        default=300,
        action=_IntervalAction,
        help="reading interval; must divide a day [s] (default 300)",
    )
    p.add_argument(
        "--batch",
        type=_positive_int,
        default=3600,
        help="readings per gateway are batched per this period [s] (default 3600)",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    p.add_argument(
        "--out", type=Path, help="directory for readings.jsonl, ground_truth.csv, fleet.yaml"
    )
    p.add_argument("--no-faults", action="store_true", help="inject no faults")
    p.add_argument("--fault-types", help=f"comma-separated subset of: {', '.join(FAULT_TYPES)}")
    p.add_argument(
        "--fault-rate-scale",
        type=float,
        default=1.0,
        help="multiply every fault rate by this (default 1)",
    )
    p.add_argument("--publish", action="store_true", help="send the readings through MQTT")
    p.add_argument("--mqtt-host", default="127.0.0.1")
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--mqtt-username")
    p.add_argument("--mqtt-password")
    p.add_argument(
        "--live",
        action="store_true",
        help="serve every inverter as a Modbus TCP server following the model",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="live: simulated seconds per real second (default 1)",
    )
    p.add_argument("--host", default="127.0.0.1", help="live: address to listen on")
    p.add_argument(
        "--base-port",
        type=int,
        default=0,
        help="live: site i listens on base-port + i (default: free ports)",
    )
    p.add_argument("--duration", type=float, help="live: stop after this many real seconds")
    p.add_argument("--devices-file", type=Path, help="live: write where each device listens (JSON)")
    p.set_defaults(func=simulate_command, interval_given=False)

    f = sub.add_parser("simulate-fleet", help="write the simulated fleet as a fleet file")
    f.add_argument("--sites", type=_positive_int, default=122)
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--out", type=Path, default=Path("config/fleet.example.yaml"))
    f.set_defaults(func=simulate_fleet_command)
