"""The ``zonnewijk`` command imports only what the chosen command needs."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from collector.cli import COMMAND_MODULES, COMMANDS, build_parser


def _size(parser: argparse.ArgumentParser) -> int:
    """Options plus sub-commands: grows when a module adds to a command group."""
    return len(parser._actions) + sum(
        len(a.choices) for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )


def _registered_by_module() -> dict[str, list[str]]:
    """Which modules add parsers to each top-level command, in registration order."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    owners: dict[str, list[str]] = {}
    for module in COMMAND_MODULES:
        before = {name: _size(p) for name, p in sub.choices.items()}
        importlib.import_module(module).register(sub)
        for name, p in sub.choices.items():
            if name not in before or _size(p) != before[name]:
                owners.setdefault(name, []).append(module)
    return owners


def test_command_table_names_every_module_that_defines_a_command() -> None:
    owners = _registered_by_module()
    assert {name: tuple(modules) for name, modules in owners.items()} == COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_builds_a_parser_from_its_own_modules_only(command: str) -> None:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {
        name for name, mods in COMMANDS.items() if set(mods) & set(COMMANDS[command])
    }


def test_collect_does_not_import_the_heavy_libraries() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['zonnewijk', 'collect', '--help']\n"
        "try:\n"
        "    runpy.run_module('collector.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('pandas', 'pvlib', 'numba', 'weasyprint', 'fastapi', "
        "'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "usage: zonnewijk collect" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_unknown_or_missing_command_still_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "no-such-command"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice: 'no-such-command'" in result.stderr
