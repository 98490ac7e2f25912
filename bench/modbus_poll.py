"""Cost of one poll per inverter family, over real Modbus TCP.

    .venv/bin/python bench/modbus_poll.py [--polls 200] [--gap 0]

A child process serves one simulated inverter per family (pymodbus server); this process polls
each with a :class:`DeviceReader` and reports wall time, this process's CPU time and Modbus
requests per poll (after discovery). Production polls every 10 s with a 50 ms gap between
requests; ``--gap 0`` measures the work itself.

Figure (``bench/_figures.py``): the most CPU any family's poll costs. Goal: at most 50 ms, so
four inverters polled every 10 s stay under 2 % of a core (issue 4's gateway budget).
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from multiprocessing.connection import Connection

from _figures import at_most, report

from collector.simulator.modbus_device import SimulatedInverters, SunSpecLayout, layout_for
from gateway_firmware.devices.reader import DeviceReader
from gateway_firmware.modbus.transport import BusSettings, ModbusBus

FAMILIES: dict[str, tuple[int, str]] = {
    # name: (unit, profile the gateway uses)
    "sunspec-int+160": (1, "sunspec"),
    "sunspec-float": (2, "sunspec"),
    "sma": (126, "sunspec"),
    "solaredge": (4, "sunspec"),
    "huawei-sun2000": (5, "huawei-sun2000"),
    "sungrow-sg": (6, "sungrow-sg"),
    "growatt": (7, "growatt"),
}


def _serve(pipe: Connection) -> None:
    layouts = {
        unit: SunSpecLayout(mppt_count=2) if name == "sunspec-int+160" else layout_for(name)
        for name, (unit, _) in FAMILIES.items()
    }
    with SimulatedInverters(layouts) as sim:
        for unit in layouts:
            sim.set_values(
                unit, ac_power_w=2500.0, ac_energy_wh=5_000_000.0, dc=[(350.0, 3.6, 1260.0)] * 2
            )
        pipe.send(sim.port)
        pipe.recv()  # until told to stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.0, help="pause between requests [s]")
    args = parser.parse_args()
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    port = parent.recv()
    print(f"{'family':<16} {'ms/poll':>8} {'CPU ms/poll':>12} {'requests/poll':>14}")
    worst = ("", 0.0, 0.0)
    try:
        settings = BusSettings(gap_s=args.gap, timeout_s=3.0)
        for name, (unit, profile) in FAMILIES.items():
            with ModbusBus.tcp("127.0.0.1", port, settings=settings) as bus:
                reader = DeviceReader(
                    bus, unit=unit, device_id="bench", gateway_id="bench", profile=profile
                )
                reader.poll()  # discovery and learning
                requests_before = bus.stats["requests"]
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(args.polls):
                    reader.poll()
                wall = (time.perf_counter() - wall) / args.polls
                cpu = (time.process_time() - cpu) / args.polls
                per_poll = (bus.stats["requests"] - requests_before) / args.polls
            print(f"{name:<16} {wall * 1000:>8.2f} {cpu * 1000:>12.2f} {per_poll:>14.1f}")
            if cpu >= worst[1]:
                worst = (name, cpu, wall)
    finally:
        parent.send("stop")
        server.join(10)
    report(
        "cpu_ms_per_poll_worst_family",
        worst[1] * 1000,
        "ms",
        at_most(50.0, "4 inverters every 10 s under 2 % of a core"),
        detail=f"{worst[0]}, {worst[2] * 1000:.2f} ms wall per poll",
    )


if __name__ == "__main__":
    main()
