"""``zonnewijk-gateway read``, ``scan`` and ``wire-schema``: troubleshooting at a member's home."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gateway_firmware.devices import scan_report
from gateway_firmware.devices.factory import make_reader
from gateway_firmware.devices.profile_device import ProfileDevice
from gateway_firmware.devices.reader import SUNSPEC
from gateway_firmware.modbus.errors import DeviceException, ModbusError, ProfileError
from gateway_firmware.modbus.transport import BusSettings, ModbusBus
from gateway_firmware.profiles import Profile, load_profiles
from gateway_firmware.sunspec.client import SunSpecUnit
from zonnewijk_wire import InverterState, json_schema


def _bus(args: argparse.Namespace, timeout_s: float) -> ModbusBus:
    settings = BusSettings(timeout_s=timeout_s, gap_s=args.gap, retries=0, reconnect_backoff_s=0)
    if args.serial:
        return ModbusBus.serial(
            args.serial, baudrate=args.baudrate, parity=args.parity, settings=settings
        )
    return ModbusBus.tcp(args.host, args.port, settings=settings)


def _where(args: argparse.Namespace, unit: int | None = None) -> str:
    place = f"serial {args.serial}" if args.serial else f"host {args.host} port {args.port}"
    return place if unit is None else f"{place} unit {unit}"


def _add_bus_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="inverter or Modbus TCP gateway address")
    where.add_argument("--serial", metavar="DEVICE", help="RS-485 adapter, e.g. /dev/ttyUSB0")
    parser.add_argument("--port", type=int, default=502, help="Modbus TCP port (default 502)")
    parser.add_argument("--baudrate", type=int, default=9600, help="serial speed [baud]")
    parser.add_argument("--parity", choices=("N", "E", "O"), default="N", help="serial parity")
    parser.add_argument("--gap", type=float, default=0.05, help="pause between requests [s]")


def read_command(args: argparse.Namespace) -> int:
    """Print one Reading (a MeterReading for a meter profile) as JSON; missing values as null."""
    try:
        bus = _bus(args, args.timeout)
    except ValueError as exc:
        print(f"zonnewijk-gateway read: {exc}", file=sys.stderr)
        return 2
    with bus:
        try:
            reader = make_reader(
                bus,
                unit=args.unit,
                device_id=args.device_id,
                gateway_id=args.gateway_id,
                profile=args.profile,
            )
            reading = reader.poll()
            output: dict[str, Any] = {"reading": reading.model_dump(mode="json")}
            if args.info:
                output["device_info"] = reader.device_info().model_dump(mode="json")
        except ProfileError as exc:
            print(f"zonnewijk-gateway read: {exc}", file=sys.stderr)
            return 2
        except ModbusError as exc:
            print(
                f"cannot read the inverter at {_where(args, args.unit)}: {exc}",
                file=sys.stderr,
            )
            return 1
    print(json.dumps(output if args.info else output["reading"], indent=2, ensure_ascii=False))
    return 0


def parse_units(text: str) -> list[int]:
    """``"1-3,126"`` -> ``[1, 2, 3, 126]``; each unit id 1..247."""
    units: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a unit id or range") from None
        if not 1 <= first <= last <= 247:
            raise argparse.ArgumentTypeError(f"unit ids must be 1..247 (got {part!r})")
        units.extend(range(first, last + 1))
    if not units:
        raise argparse.ArgumentTypeError("no unit ids given")
    return sorted(set(units))


def _identify_profile(bus: ModbusBus, unit: int, profiles: dict[str, Profile]) -> dict[str, Any]:
    """The register profiles whose every register answers and whose state code is known."""
    matches = []
    details: dict[str, dict[str, str | None]] = {}
    for profile in profiles.values():
        if profile.protocol != "registers":
            continue
        device = ProfileDevice(bus, unit, profile)
        try:
            values = device.read()
            if values.state is InverterState.UNKNOWN:
                continue
            details[profile.name] = device.identity()
        except DeviceException:
            continue
        matches.append(profile.name)
    return {
        "unit": unit,
        "protocol": "registers",
        "possible_profiles": matches,
        "identity": details,
    }


def scan_unit(
    bus: ModbusBus, unit: int, profiles: dict[str, Profile], *, points: bool = False
) -> dict[str, Any] | None:
    """What answers at ``unit``: a SunSpec device (models, identity) or a profile's registers.

    ``points`` adds every decoded point of every SunSpec model. Returns None when nothing
    answers at all.
    """
    device = SunSpecUnit(bus, unit)
    try:
        layout = device.discover()
        identity = device.identity()
        chain = [scan_report.model_entry(header) for header in layout.models]
        if points:
            for entry, (_header, values) in zip(chain, device.read_all(), strict=True):
                entry["points"] = scan_report.point_values(values)
        return {
            "unit": unit,
            "protocol": "sunspec",
            "base": layout.base,
            "models": list(layout.model_ids),
            "model_chain": chain,
            "profiles": scan_report.profiles_for(layout),
            "manufacturer": identity.get("Mn"),
            "model": identity.get("Md"),
            "serial": identity.get("SN"),
            "firmware": identity.get("Vr"),
        }
    except ModbusError as exc:
        if exc.reason in ("no_response", "connection_failed"):
            return None
    found = _identify_profile(bus, unit, profiles)
    return found if found["possible_profiles"] else {**found, "protocol": "unknown"}


def scan_command(args: argparse.Namespace) -> int:
    """Find unit ids on a bus and identify what answers."""
    try:
        profiles = load_profiles()
    except ProfileError as exc:
        print(f"zonnewijk-gateway scan: {exc}", file=sys.stderr)
        return 2
    found = []
    with _bus(args, args.timeout) as bus:
        for unit in args.units:
            try:
                result = scan_unit(bus, unit, profiles, points=args.points)
            except ModbusError as exc:
                if exc.reason == "connection_failed":
                    print(f"cannot connect to {_where(args)}: {exc}", file=sys.stderr)
                    return 1
                result = None
            if result is None:
                continue
            found.append(result)
            if not args.json:
                print(_describe(result))
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
    if not found:
        print(f"no device answered at {_where(args)}, units {args.units_text}", file=sys.stderr)
        return 1
    return 0


def _describe(result: dict[str, Any]) -> str:
    unit = result["unit"]
    if result["protocol"] == "sunspec":
        return scan_report.describe(result)
    if result["protocol"] == "registers":
        return f"unit {unit}: answers; matching profiles: {', '.join(result['possible_profiles'])}"
    return f"unit {unit}: answers, but no SunSpec marker and no matching profile"


def wire_schema_command(args: argparse.Namespace) -> int:
    """Print the wire format's JSON Schema."""
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``read``, ``scan`` and ``wire-schema`` to ``zonnewijk-gateway``."""
    read = sub.add_parser("read", help="read one inverter once and print the reading as JSON")
    _add_bus_arguments(read)
    read.add_argument("--unit", type=int, default=1, help="Modbus unit id (SMA: 126)")
    read.add_argument(
        "--profile",
        default=SUNSPEC,
        help="sunspec (default), sunspec-meter (a grid meter) or a config/devices profile name",
    )
    read.add_argument("--device-id", default="inverter", help="device id put in the reading")
    read.add_argument("--gateway-id", default="gateway", help="gateway id for --info")
    read.add_argument("--timeout", type=float, default=3.0, help="answer timeout [s]")
    read.add_argument("--info", action="store_true", help="also print the device info")
    read.set_defaults(func=read_command)

    scan = sub.add_parser("scan", help="find unit ids on a bus and identify the devices")
    _add_bus_arguments(scan)
    scan.add_argument(
        "--units",
        dest="units_text",
        default="1-3,100,126,247",
        help="unit ids to try, e.g. 1-10,126 (default 1-3,100,126,247)",
    )
    scan.add_argument("--timeout", type=float, default=1.0, help="answer timeout per try [s]")
    scan.add_argument("--json", action="store_true", help="print the result as JSON")
    scan.add_argument(
        "--points", action="store_true", help="also print every point of every SunSpec model"
    )
    scan.set_defaults(func=_scan_entry)

    schema = sub.add_parser("wire-schema", help="print the wire format's JSON Schema")
    schema.set_defaults(func=wire_schema_command)


def _scan_entry(args: argparse.Namespace) -> int:
    try:
        args.units = parse_units(args.units_text)
    except argparse.ArgumentTypeError as exc:
        print(f"zonnewijk-gateway scan: {exc}", file=sys.stderr)
        return 2
    return scan_command(args)
