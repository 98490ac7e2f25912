"""The fleet file: the cooperative's members, sites, devices, contracts and tariff plans.

One YAML file (``config/fleet.*.yaml``) declares who rents which roof's panels, which inverter
measures them, and on which terms. :func:`load_fleet_file` reads it, validates every field
(pydantic models, unknown keys rejected) and every cross-reference (unknown site, overlapping
contracts on a site, a device on an unknown gateway, ...) and reports each problem with the line
it comes from. ``docs/fleet-file.md`` documents the format.

Conventions
-----------
- Dates (``start_date``, ``end_date``, ``installed_on``, ``removed_on``, ``valid_from``) are
  Europe/Amsterdam calendar days and **inclusive**: a contract with ``end_date: 2026-03-15``
  covers 15 March; its successor starts on ``2026-03-16``.
- Instants (a replacement's or a counter reset's ``at``) are timestamps with an explicit offset,
  stored as UTC.
- Money and prices are :class:`decimal.Decimal`; YAML numbers are read as exact decimals.
- Models: :mod:`collector.registry.fleet_models`; problems with lines: :mod:`collector.registry.fleet_problems`; cross-references: :mod:`collector.registry.fleet_references`.

The simulator writes its example fleet through these models (:func:`dump_fleet_yaml`).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from collector.registry.fleet_models import (
    Address,
    Contract,
    Cooperative,
    CounterReset,
    Device,
    Fleet,
    Member,
    Replacement,
    Site,
)
from collector.registry.fleet_problems import (
    FleetFileError,
    Problem,
    line_of,
    parse_yaml_with_lines,
    pydantic_problems,
)
from collector.registry.fleet_references import check_references
from collector.registry.tariff_plans import TariffPlan, TariffVersion

__all__ = [
    "Address",
    "Contract",
    "Cooperative",
    "CounterReset",
    "Device",
    "Fleet",
    "FleetFileError",
    "Member",
    "Problem",
    "Replacement",
    "Site",
    "TariffPlan",
    "TariffVersion",
    "dump_fleet_yaml",
    "load_fleet_file",
    "parse_fleet",
    "validate_fleet",
]

# ---------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------


def parse_fleet(text: str, source: str = "<fleet>") -> Fleet:
    """Validate fleet file text; raise :class:`FleetFileError` listing every problem with its line."""
    data, marks = parse_yaml_with_lines(text, source)
    if not isinstance(data, dict):
        raise FleetFileError(
            source, [Problem((), "the file must be a mapping with a `cooperative:` key", 1)]
        )
    try:
        fleet = Fleet.model_validate(data)
    except ValidationError as exc:
        raise FleetFileError(source, pydantic_problems(exc, marks)) from None
    problems = [Problem(p.loc, p.message, line_of(p.loc, marks)) for p in check_references(fleet)]
    if problems:
        raise FleetFileError(source, problems)
    return fleet


def load_fleet_file(path: str | Path) -> Fleet:
    """Read and validate a fleet file.

    Parameters
    ----------
    path
        The YAML file [path].

    Raises
    ------
    FleetFileError
        With every problem found, each naming its line and field.
    """
    path = Path(path)
    return parse_fleet(path.read_text(encoding="utf-8"), str(path))


def validate_fleet(fleet: Fleet) -> None:
    """Run the cross-reference checks on a fleet built in code (e.g. by the simulator)."""
    problems = check_references(fleet)
    if problems:
        raise FleetFileError("<fleet>", problems)


_SafeDumperBase: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_SafeDumperBase):  # type: ignore[misc]
    pass


def _represent_decimal(dumper: Any, value: Decimal) -> Any:
    text = format(value, "f")
    tag = "tag:yaml.org,2002:float" if "." in text else "tag:yaml.org,2002:int"
    return dumper.represent_scalar(tag, text)


_Dumper.add_representer(Decimal, _represent_decimal)


def dump_fleet_yaml(fleet: Fleet, header: str | None = None) -> str:
    """Write a fleet as fleet-file YAML (round-trips through :func:`parse_fleet`)."""
    validate_fleet(fleet)
    data = fleet.model_dump(mode="python", exclude_none=True, exclude_defaults=False)
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    if header:
        prefix = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
        return prefix + body
    return body


def count_entries(fleet: Fleet) -> dict[str, int]:
    """How many of each entry a fleet holds (for reports)."""
    return {
        "tariff_plans": len(fleet.tariff_plans),
        "members": len(fleet.members),
        "sites": len(fleet.sites),
        "devices": len(fleet.devices),
        "contracts": len(fleet.contracts),
    }


def iter_gateways(fleet: Fleet) -> Iterator[str]:
    """Each gateway id once, in site order."""
    seen: set[str] = set()
    for site in fleet.sites:
        if site.gateway_id not in seen:
            seen.add(site.gateway_id)
            yield site.gateway_id
