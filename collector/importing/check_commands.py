"""``zonnewijk faults check FILE...``: the detectors on files, offline (no InfluxDB, no MQTT).

The files are read as ``zonnewijk import readings`` reads them (same formats and options);
:mod:`collector.importing.offline_check` judges them. ``docs/faults.md`` (*Files*) describes
what is found and how.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from collector.commandline import command_group
from collector.importing.commands import FILE_FORMATS, CommandError, open_source
from collector.importing.generic_csv import FormatError
from collector.importing.offline_check import (
    CheckConfig,
    DeviceInfo,
    Site,
    check_files,
    result_json,
    result_table,
)
from collector.importing.timestamps import LocalTimes, zone
from collector.registry.fleet_file import FleetFileError, load_fleet_file


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = command_group(sub, "faults", "fault detection and alerts")
    p = group.add_parser(
        "check",
        help="run the detectors offline on readings in files (CSV, vendor exports, a spool)",
        description="Every detector that applies, on files read as 'zonnewijk import readings' "
        "reads them; no server needed. Findings as a table or JSON (kind, device, start, end, "
        "evidence). docs/faults.md, 'Files'.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--fleet", type=Path, help="fleet file: each device's kWp, rating and roof")
    p.add_argument("--site-kwp", type=float, help="installed kWp (every device in the files)")
    p.add_argument("--ac-rating-w", type=float, help="AC rating [W] (default: from the data)")
    p.add_argument("--lat", type=float, help="latitude [deg] (default: Zwolle, 52.52)")
    p.add_argument("--lon", type=float, help="longitude [deg] (default: Zwolle, 6.10)")
    p.add_argument("--tilt", type=float, help="panel tilt [deg] (default 35)")
    p.add_argument("--azimuth", type=float, help="panel azimuth, 180 south [deg] (default 180)")
    p.add_argument("--step-minutes", type=float, help="grid interval (default: the files')")
    # reading the files: the import's options
    p.add_argument("--file-format", choices=FILE_FORMATS, default="auto", help="default: detect")
    p.add_argument("--device", help="the one device of a file that has no device column")
    p.add_argument("--gateway", help="the gateway of the file's devices")
    p.add_argument("--device-map", action="append", default=[], metavar="NAME=DEVICE")
    p.add_argument("--column", action="append", default=[], metavar="STANDARD=HEADER")
    p.add_argument("--timezone", help="zone of local times without an offset")
    p.add_argument("--time-format", help="strftime layout of the timestamps")
    p.add_argument("--decimal-comma", action="store_true")
    p.add_argument("--separator")
    p.add_argument("--interval-minutes", type=float)
    p.add_argument("--interval-label", choices=("start", "end"), default="end")
    p.set_defaults(func=_cmd_check)


def _info(args: argparse.Namespace) -> tuple[Site, dict[str, DeviceInfo]]:
    site = Site()
    info: dict[str, DeviceInfo] = {}
    if args.fleet is not None:
        fleet = load_fleet_file(args.fleet)
        sites = {s.site_id: s for s in fleet.sites}
        for device in fleet.devices:
            s = sites[device.site_id]
            info[device.device_id] = DeviceInfo(
                kwp=float(device.kwp),
                ac_rating_w=float(device.ac_rating_w),
                tilt_deg=s.tilt_deg,
                azimuth_deg=s.azimuth_deg,
                gateway_id=device.gateway_id or s.gateway_id,
            )
        if fleet.sites:
            first = fleet.sites[0]
            site = Site(first.lat, first.lon, first.tilt_deg, first.azimuth_deg)
    site = Site(
        args.lat if args.lat is not None else site.lat_deg,
        args.lon if args.lon is not None else site.lon_deg,
        args.tilt if args.tilt is not None else site.tilt_deg,
        args.azimuth if args.azimuth is not None else site.azimuth_deg,
    )
    return site, info


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        site, info = _info(args)
        times = LocalTimes(zone(args.timezone))
        sources = [open_source(path, args, times) for path in args.files]
        # the options describe every device of the files that the fleet does not
        default = DeviceInfo(kwp=args.site_kwp, ac_rating_w=args.ac_rating_w)
        step_s = int(args.step_minutes * 60) if args.step_minutes else None
        result = check_files(sources, CheckConfig(site=site, default_device=default), info, step_s)
    except (CommandError, FormatError, FleetFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(result_json(result), indent=2))
    else:
        print(result_table(result))
    return 0


__all__ = ["register"]
