"""The ``zonnewijk`` command (server side).

Each area registers its sub-commands in its own ``commands`` module, listed in
:data:`COMMAND_MODULES`; a module provides ``register(subparsers)`` which adds parsers whose
``func`` default takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from collector import __version__

#: One module per area; each has ``register(subparsers: argparse._SubParsersAction) -> None``.
COMMAND_MODULES: tuple[str, ...] = (
    "collector.demo",
    "collector.registry.commands",
    "collector.collector_commands",  # after registry.commands: adds to its "db" group
    "collector.simulator.inverter_commands",
    "collector.simulator.commands",
    "collector.dashboards.commands",
    "collector.settlement.commands",
    "collector.statements.commands",  # after settlement.commands: adds to its "export" group
    "collector.faults.commands",
    "collector.portal.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zonnewijk", description="Zonnewijk: solar cooperative monitoring and settlement"
    )
    parser.add_argument("--version", action="version", version=f"zonnewijk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
