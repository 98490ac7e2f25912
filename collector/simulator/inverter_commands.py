"""``zonnewijk simulate-inverter``: a simulated Modbus inverter serving a plausible day.

The curve is deliberately simple (a sine-shaped clear day scaled to the array's kWp); the fleet
simulator drives devices with real physics. The lifetime counter advances by the energy of the
curve, so successive reads show a rising counter.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType
from zoneinfo import ZoneInfo

from collector.simulator.modbus_device import (
    LAYOUT_NAMES,
    DcValues,
    SimulatedInverters,
    layout_for,
)
from zonnewijk_wire import InverterState

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
#: Peak AC output of a clear day as a fraction of the array's kWp [-].
PEAK_FRACTION = 0.75


def day_curve_power_w(
    kwp: float, local_hour: float, sunrise_h: float = 6.0, sunset_h: float = 20.0
) -> float:
    """AC power of a sine-shaped clear day.

    Parameters
    ----------
    kwp
        Array size [kWp].
    local_hour
        Local clock time as a decimal hour, 0..24 [h].
    sunrise_h, sunset_h
        Local times production starts and ends [h].

    Returns
    -------
    float
        AC power, 0 at night [W].
    """
    if kwp <= 0:
        raise ValueError("kwp must be > 0")
    if not sunrise_h < local_hour < sunset_h:
        return 0.0
    phase = (local_hour - sunrise_h) / (sunset_h - sunrise_h)
    return kwp * 1000.0 * PEAK_FRACTION * math.sin(math.pi * phase)


def _local_hour(ts: datetime) -> float:
    local = ts.astimezone(AMSTERDAM)
    return local.hour + local.minute / 60 + local.second / 3600


def simulate_command(args: argparse.Namespace) -> int:
    units = args.unit or [1]
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    try:
        sim = SimulatedInverters(
            {unit: layout_for(args.profile) for unit in units},
            host=args.host,
            port=args.port or 0,
            serial_port=args.serial,
        )
    except (ValueError, OSError) as exc:
        print(f"zonnewijk simulate-inverter: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sim.start()
    except RuntimeError as exc:
        print(f"zonnewijk simulate-inverter: {exc}", file=sys.stderr)
        return 1
    where = args.serial or f"{args.host}:{sim.port}"
    print(
        f"serving {args.profile} inverter(s), unit(s) {', '.join(map(str, units))} on {where}",
        flush=True,
    )
    started_real = time.monotonic()
    sim_start = (
        datetime.fromisoformat(args.start).astimezone(UTC) if args.start else datetime.now(UTC)
    )
    energy_wh = {unit: args.energy_wh for unit in units}
    last_sim_ts = sim_start
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - started_real
            if args.duration is not None and elapsed >= args.duration:
                break
            sim_ts = sim_start + timedelta(seconds=elapsed * args.time_scale)
            power = day_curve_power_w(args.kwp, _local_hour(sim_ts))
            dt_h = (sim_ts - last_sim_ts).total_seconds() / 3600
            last_sim_ts = sim_ts
            for index, unit in enumerate(units):
                energy_wh[unit] += power * dt_h
                dc_power = power / 0.96 / 2
                dc_voltage = 340.0 + 5 * index if power > 0 else 0.0
                sim.set_values(
                    unit,
                    ac_power_w=round(power, 1),
                    ac_energy_wh=round(energy_wh[unit]),
                    ac_voltage_v=230.0,
                    grid_frequency_hz=50.0,
                    cabinet_temp_c=round(20 + power / (args.kwp * 100), 1),
                    dc=[
                        DcValues(
                            dc_voltage,
                            round(dc_power / dc_voltage, 2) if power > 0 else 0.0,
                            round(dc_power),
                        )
                        for _ in range(2)
                    ],
                    state=InverterState.PRODUCING if power > 0 else InverterState.SLEEPING,
                )
            stop.wait(args.interval)
    finally:
        sim.stop()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate-inverter`` to ``zonnewijk``."""
    p = sub.add_parser(
        "simulate-inverter", help="serve simulated inverter(s) over Modbus TCP or RTU"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=5020, help="TCP port (0: pick a free one)")
    p.add_argument("--serial", metavar="DEVICE", help="serve Modbus RTU on this serial device/pty")
    p.add_argument(
        "--unit", type=int, action="append", help="unit id to serve (repeatable; default 1)"
    )
    p.add_argument(
        "--profile",
        default="sunspec-int",
        help=f"register layout: {', '.join(LAYOUT_NAMES)}",
    )
    p.add_argument("--kwp", type=float, default=4.0, help="array size [kWp]")
    p.add_argument("--energy-wh", type=float, default=1_000_000.0, help="counter at start [Wh]")
    p.add_argument("--interval", type=float, default=1.0, help="update period [s]")
    p.add_argument(
        "--time-scale", type=float, default=1.0, help="simulated seconds per real second"
    )
    p.add_argument("--start", help="simulated start time, ISO 8601 (default: now)")
    p.add_argument("--duration", type=float, help="stop after this many real seconds [s]")
    p.set_defaults(func=simulate_command)
