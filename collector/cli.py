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
    "collector.demo.commands",
    "collector.registry.commands",
    "collector.registry.consent_commands",
    "collector.ingest.commands",
    "collector.timeseries.commands",  # after registry.commands: adds to its "db" group
    "collector.broker.commands",
    "collector.remote.commands",  # after broker.commands: adds to its "gateways" group
    "collector.enrolment.commands",  # likewise
    "collector.simulator.inverter_commands",
    "collector.simulator.commands",
    "collector.dashboards.commands",
    "collector.settlement.commands",
    "collector.statements.commands",  # after settlement.commands: adds to its "export" group
    "collector.faults.commands",
    "collector.importing.commands",
    "collector.importing.check_commands",  # after faults.commands: adds to its "faults" group
    "collector.portal.commands",
)


#: The modules behind each command, so ``zonnewijk collect`` imports what collecting needs and
#: not pandas, pvlib, numba and WeasyPrint (``/usr/bin/time -v zonnewijk collect --help``:
#: 0.5 s of CPU and 51 MB; ``zonnewijk --help``, which loads every module: 3.7 s and 278 MB).
#: A group spread over modules lists them in :data:`COMMAND_MODULES` order.
#: ``tests/collector/test_cli.py`` checks this against what the modules register.
COMMANDS: dict[str, tuple[str, ...]] = {
    "demo": ("collector.demo.commands",),
    "db": ("collector.registry.commands", "collector.timeseries.commands"),
    "registry": ("collector.registry.commands",),
    "consent": ("collector.registry.consent_commands",),
    "broker": ("collector.broker.commands",),
    "collect": ("collector.ingest.commands",),
    "gateways": (
        "collector.broker.commands",
        "collector.remote.commands",
        "collector.enrolment.commands",
    ),
    "simulate-inverter": ("collector.simulator.inverter_commands",),
    "simulate": ("collector.simulator.commands",),
    "simulate-fleet": ("collector.simulator.commands",),
    "dashboards": ("collector.dashboards.commands",),
    "export": ("collector.settlement.commands", "collector.statements.commands"),
    "settle": ("collector.settlement.commands",),
    "statements": ("collector.statements.commands",),
    "faults": ("collector.faults.commands", "collector.importing.check_commands"),
    "import": ("collector.importing.commands",),
    "members": ("collector.portal.commands",),
    "portal": ("collector.portal.commands",),
    "tokens": ("collector.portal.commands",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or, for a known ``command``, only the modules that define it."""
    parser = argparse.ArgumentParser(
        prog="zonnewijk", description="Zonnewijk: solar cooperative monitoring and settlement"
    )
    parser.add_argument("--version", action="version", version=f"zonnewijk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS.get(command or "", COMMAND_MODULES):
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
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
