"""``zonnewijk-gateway p1 --serial DEVICE [--baud N] [--once]``: troubleshoot a P1 cable.

Reads telegrams from the device and prints each decoded as JSON with the wire format's names
and units (a :class:`~zonnewijk_wire.MeterReading` of one telegram: ``interval_s`` 0, energy
in Wh, power in W), or one line saying what was wrong (no data, garbage, CRC mismatch,
unknown version) and exits 1. Nothing is spooled or sent; the equipment id is not printed
(nor its hash: that needs the service's salt), the gas meter only with ``--gas``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from zonnewijk_wire import GasReading, MeterReading, MeterSource, PhaseValues, to_wire_dict

if TYPE_CHECKING:  # dsmr-parser is imported only when the command runs (12 MB resident)
    from gateway_firmware.p1.telegram import P1Error, P1Telegram

__all__ = ["add_commands", "instant_reading"]


def instant_reading(
    telegram: P1Telegram, *, ts: datetime, device_id: str = "p1", gas: bool = False
) -> MeterReading:
    """One telegram as a wire reading of an instant (``interval_s`` 0, one sample)."""
    return MeterReading(
        device_id=device_id,
        ts=ts,
        source=MeterSource.P1,
        interval_s=0,
        samples=1,
        import_energy_wh=telegram.import_energy_wh,
        export_energy_wh=telegram.export_energy_wh,
        import_energy_t1_wh=telegram.import_energy_t1_wh,
        import_energy_t2_wh=telegram.import_energy_t2_wh,
        export_energy_t1_wh=telegram.export_energy_t1_wh,
        export_energy_t2_wh=telegram.export_energy_t2_wh,
        tariff=1 if telegram.tariff == 1 else 2 if telegram.tariff == 2 else None,
        import_power_w=telegram.import_power_w,
        export_power_w=telegram.export_power_w,
        phases=tuple(
            PhaseValues(
                phase="L1" if p.phase == "L1" else "L2" if p.phase == "L2" else "L3",
                import_power_w=p.import_power_w,
                export_power_w=p.export_power_w,
                voltage_v=p.voltage_v,
                current_a=p.current_a,
            )
            for p in telegram.phases
        ),
        gas=(
            GasReading(ts=telegram.gas.ts, gas_m3=telegram.gas.gas_m3)
            if gas and telegram.gas is not None
            else None
        ),
        protocol=telegram.protocol,
    )


def _fail(reason: str, detail: str) -> int:
    print(f"error: {reason.replace('_', ' ')}: {detail}", file=sys.stderr)
    return 1


def p1_command(args: argparse.Namespace) -> int:
    """Read telegrams from ``args.serial`` and print them decoded (or one error line)."""
    from gateway_firmware.p1.port import AUTO_BAUDS, BAUD_BY_VERSION, TelegramFramer, open_serial
    from gateway_firmware.p1.telegram import P1_REASONS, P1Error, decode_telegram

    baud = args.baud or (AUTO_BAUDS[0] if args.dsmr == "auto" else BAUD_BY_VERSION[args.dsmr])
    try:
        line = open_serial(args.serial, baud, dsmr=args.dsmr, timeout_s=0.2)
    except Exception as exc:
        return _fail("no_data", f"cannot open {args.serial}: {exc}")
    framer = TelegramFramer()
    deadline = time.monotonic() + args.timeout
    got_bytes = False
    last_error: P1Error | None = None
    try:
        while time.monotonic() < deadline:
            data = line.read(max(1, min(line.in_waiting, 4096)))
            got_bytes = got_bytes or bool(data)
            for text in framer.feed(data) if data else ():
                try:
                    telegram = decode_telegram(text)
                except P1Error as exc:
                    last_error = exc
                    if args.once:
                        return _fail(exc.reason, exc.detail)
                    print(f"error: {exc.reason.replace('_', ' ')}: {exc.detail}", file=sys.stderr)
                    continue
                reading = instant_reading(telegram, ts=datetime.now(UTC), gas=args.gas)
                print(json.dumps(to_wire_dict(reading)), flush=True)
                if args.once:
                    return 0
                deadline = time.monotonic() + args.timeout
    except KeyboardInterrupt:
        return 0
    finally:
        line.close()
    if last_error is not None:
        return _fail(last_error.reason, last_error.detail)
    if got_bytes:
        return _fail(
            "garbage",
            f"bytes on {args.serial} at {baud} baud but no telegram in {args.timeout:g} s: "
            f"{P1_REASONS['garbage']}"
            + (" (try --baud 9600 for DSMR 2.2)" if baud != 9600 else ""),
        )
    return _fail(
        "no_data", f"nothing on {args.serial} in {args.timeout:g} s: {P1_REASONS['no_data']}"
    )


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``p1`` to the ``zonnewijk-gateway`` command."""
    p1 = sub.add_parser("p1", help="read the smart meter's P1 port and print telegrams as JSON")
    p1.add_argument("--serial", required=True, metavar="DEVICE", help="e.g. /dev/ttyUSB0")
    p1.add_argument("--baud", type=int, choices=(9600, 115200), help="default: by --dsmr")
    p1.add_argument(
        "--dsmr",
        choices=("auto", "5", "4", "2.2"),
        default="auto",
        help="serial settings of this DSMR version (auto: 115200 8N1, reads DSMR 4 and 5)",
    )
    p1.add_argument("--once", action="store_true", help="print one telegram and stop")
    p1.add_argument("--gas", action="store_true", help="include the gas meter")
    p1.add_argument(
        "--timeout", type=float, default=30.0, help="give up after this long without a telegram [s]"
    )
    p1.set_defaults(func=p1_command)
