"""The ``zonnewijk-gateway`` command (runs on the Raspberry Pi).

Sub-commands come from the modules in :data:`COMMAND_MODULES`; each provides
``register(subparsers)`` (or ``add_commands(subparsers)``) adding parsers whose ``func``
default takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

#: ``read``, ``scan``, ``wire-schema`` (Modbus side); ``run``, ``spool`` (the service);
#: ``enrol`` (a new Pi fetches its credentials and configuration); ``p1`` (the smart meter).
COMMAND_MODULES: tuple[str, ...] = (
    "gateway_firmware.devices.commands",
    "gateway_firmware.service",
    "gateway_firmware.enrolment",
    "gateway_firmware.p1.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zonnewijk-gateway", description="Zonnewijk gateway: read inverters, publish readings"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        register = getattr(module, "register", None) or module.add_commands
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
