"""Shared argparse helpers of the ``commands`` modules (``zonnewijk``'s sub-commands)."""

from __future__ import annotations

import argparse


def command_group(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    *,
    metavar: str = "ACTION",
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The sub-command group ``name``, created unless another module made it already.

    A group spread over modules (``db``: the relational store's and InfluxDB's; ``export``:
    the settlement's and the statements') is extended through this, whichever module
    registers first.
    """
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text)
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar=metavar)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar=metavar)
