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
- Tariff plans use the settlement engine's model (:mod:`collector.settlement.tariffs`).

The simulator writes its example fleet through these models (:func:`dump_fleet_yaml`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from collector.registry.tariff_plans import TariffError, TariffPlan, TariffVersion
from zonnewijk_wire import ID_PATTERN

FLEET_FILE_VERSION: Literal[1] = 1
_AMS = ZoneInfo("Europe/Amsterdam")

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

#: Inverter families the gateway can read (SunSpec discovered, the others from config/devices).
DeviceFamily = Literal["sunspec-int", "sunspec-float", "huawei", "sungrow", "growatt"]
DEVICE_FAMILIES: tuple[str, ...] = ("sunspec-int", "sunspec-float", "huawei", "sungrow", "growatt")

Identifier = Annotated[
    str,
    Field(
        pattern=ID_PATTERN,
        description="letters, digits, '_', '.', '-'; starts with a letter or digit; ≤ 64 chars",
    ),
]
NonEmpty = Annotated[str, Field(min_length=1, max_length=200)]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp needs an explicit offset, e.g. 2026-03-14T11:20:00Z")
    return value.astimezone(UTC)


def _iban(value: str) -> str:
    try:
        return str(IBAN(value).compact)
    except SchwiftyException as exc:
        raise ValueError(f"not a valid IBAN ({exc})") from None


def _bic(value: str) -> str:
    try:
        return str(BIC(value).compact)
    except SchwiftyException as exc:
        raise ValueError(f"not a valid BIC ({exc})") from None


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Iban = Annotated[str, BeforeValidator(_strip), AfterValidator(_iban)]
Bic = Annotated[str, BeforeValidator(_strip), AfterValidator(_bic)]
Kwp = Annotated[Decimal, Field(gt=0, le=1000, max_digits=10, decimal_places=4)]
EnergyWh = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=3)]

_NL_POSTCODE = re.compile(r"^[1-9][0-9]{3} ?[A-Z]{2}$")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, coerce_numbers_to_str=True
    )


class Address(_Model):
    """A postal address."""

    street: NonEmpty = Field(description="street and house number, e.g. 'Dieze 12a'")
    postal_code: NonEmpty
    city: NonEmpty
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "NL"

    @model_validator(mode="after")
    def _dutch_postcode(self) -> Self:
        if self.country == "NL" and not _NL_POSTCODE.match(self.postal_code):
            raise ValueError(
                f"postal_code {self.postal_code!r} is not a Dutch postcode like '8011 AB'"
            )
        return self


class Cooperative(_Model):
    """The cooperative itself (the lessor on every contract)."""

    name: NonEmpty
    address: Address
    email: EmailStr | None = None
    iban: Iban | None = None
    creditor_id: NonEmpty | None = Field(default=None, description="SEPA creditor identifier")


class Member(_Model):
    """A member (resident) who rents panels."""

    member_id: Identifier
    name: NonEmpty
    address: Address
    email: EmailStr
    language: Literal["nl", "en"] = "nl"
    iban: Iban | None = None
    bic: Bic | None = None
    mandate_id: Annotated[str, Field(min_length=1, max_length=35)] | None = Field(
        default=None, description="SEPA direct debit mandate reference"
    )
    mandate_date: date | None = Field(default=None, description="date the mandate was signed")

    @model_validator(mode="after")
    def _mandate(self) -> Self:
        if (self.mandate_id is None) != (self.mandate_date is None):
            raise ValueError("mandate_id and mandate_date go together: give both or neither")
        if self.mandate_id is not None and self.iban is None:
            raise ValueError("a direct debit mandate needs the member's iban")
        return self


class Site(_Model):
    """A roof with panels; one gateway reads its inverter(s)."""

    site_id: Identifier
    address: Address
    lat: Annotated[float, Field(ge=-90, le=90, description="latitude [deg]")]
    lon: Annotated[float, Field(ge=-180, le=180, description="longitude [deg]")]
    kwp: Kwp = Field(description="installed peak power of the panels [kWp]")
    tilt_deg: Annotated[float, Field(ge=0, le=90, description="panel tilt from horizontal [deg]")]
    azimuth_deg: Annotated[
        float, Field(ge=0, lt=360, description="panel azimuth, 0 north, 90 east, 180 south [deg]")
    ]
    gateway_id: Identifier


class CounterReset(_Model):
    """A known jump of a device's lifetime energy counter (reset, firmware swap)."""

    at: UtcDatetime = Field(description="when the counter jumped [UTC]")
    last_energy_wh: EnergyWh = Field(description="the counter's last reading before [Wh]")
    first_energy_wh: EnergyWh = Field(description="the counter's first reading after [Wh]")
    reason: NonEmpty | None = None


class Replacement(_Model):
    """This device replaced an older one: the old counter's last and the new one's first."""

    device_id: Identifier = Field(description="the device that was replaced")
    at: UtcDatetime = Field(description="when the new device took over [UTC]")
    old_last_energy_wh: EnergyWh = Field(description="old device's last counter reading [Wh]")
    new_first_energy_wh: EnergyWh = Field(description="new device's first counter reading [Wh]")
    reason: NonEmpty | None = None


class Device(_Model):
    """An inverter: the meter whose lifetime counter measures a site's production."""

    device_id: Identifier
    site_id: Identifier
    gateway_id: Identifier | None = Field(
        default=None, description="defaults to the site's gateway"
    )
    family: DeviceFamily
    model: NonEmpty | None = Field(default=None, description="vendor model name, free text")
    ac_rating_w: Annotated[int, Field(gt=0, le=1_000_000, description="AC rating [W]")]
    mppt_count: Annotated[int, Field(ge=1, le=32)] = 1
    kwp: Kwp = Field(description="panels connected to this inverter [kWp]")
    installed_on: date
    removed_on: date | None = Field(default=None, description="last day in service (inclusive)")
    replaces: Replacement | None = None
    replaced_by: Identifier | None = Field(
        default=None, description="the device that replaced this one (must say `replaces`)"
    )
    counter_resets: tuple[CounterReset, ...] = ()

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.removed_on is not None and self.removed_on < self.installed_on:
            raise ValueError(
                f"removed_on {self.removed_on} is before installed_on {self.installed_on}"
            )
        if self.replaces is not None and self.replaces.device_id == self.device_id:
            raise ValueError("a device cannot replace itself")
        if self.replaced_by is not None and self.removed_on is None:
            raise ValueError("a replaced device needs removed_on (its last day in service)")
        ats = [r.at for r in self.counter_resets]
        if ats != sorted(ats) or len(set(ats)) != len(ats):
            raise ValueError("counter_resets must be in time order without duplicates")
        return self

    def in_service_on(self, day: date) -> bool:
        """Whether the device measured the site on a calendar day."""
        return self.installed_on <= day and (self.removed_on is None or day <= self.removed_on)


class Contract(_Model):
    """A member renting a site's panels from start_date to end_date (inclusive)."""

    contract_id: Identifier
    member_id: Identifier
    site_id: Identifier
    start_date: date
    end_date: date | None = Field(default=None, description="last day (inclusive); open if none")
    tariff_plan_id: Identifier
    year_anchor: date | None = Field(
        default=None,
        description="contract years start on this date's day and month; default start_date",
    )

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self

    @property
    def contract_year_anchor(self) -> date:
        """The date from which contract years are counted."""
        return self.year_anchor or self.start_date

    @property
    def end_exclusive(self) -> date | None:
        """The first day no longer covered, or None for an open contract."""
        return None if self.end_date is None else self.end_date + timedelta(days=1)

    def active_on(self, day: date) -> bool:
        """Whether the contract covers a calendar day."""
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)

    def overlaps(self, first_day: date, last_day: date) -> bool:
        """Whether the contract covers any day of [first_day, last_day] (inclusive)."""
        return self.start_date <= last_day and (self.end_date is None or first_day <= self.end_date)


class Fleet(_Model):
    """The whole fleet file."""

    version: Literal[1] = FLEET_FILE_VERSION
    cooperative: Cooperative
    tariff_plans: tuple[TariffPlan, ...] = ()
    members: tuple[Member, ...] = ()
    sites: tuple[Site, ...] = ()
    devices: tuple[Device, ...] = ()
    contracts: tuple[Contract, ...] = ()

    # Look-up indexes, built on first use; keyed by the section tuple's identity, so a
    # model_copy(update=...) with a new section never sees a stale index.
    _indexes: dict[str, tuple[object, dict[str, Any]]] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        # Equal when the data are equal, whichever look-up indexes happen to be built.
        if not isinstance(other, Fleet):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in type(self).model_fields)

    __hash__ = None  # type: ignore[assignment]  # tariff plans hold lists: never hashable

    def _index(self, section: str, attr: str) -> dict[str, Any]:
        items: tuple[Any, ...] = getattr(self, section)
        cached = self._indexes.get(section)
        if cached is None or cached[0] is not items:
            cached = (items, {getattr(item, attr): item for item in items})
            self._indexes[section] = cached
        return cached[1]

    def _get(self, section: str, attr: str, wanted: str) -> Any:
        try:
            return self._index(section, attr)[wanted]
        except KeyError:
            raise KeyError(f"no {attr} {wanted!r} in the fleet") from None

    # -- look-ups used by the settlement engine ------------------------------------------
    def member(self, member_id: str) -> Member:
        """The member with this id; KeyError if there is none."""
        member: Member = self._get("members", "member_id", member_id)
        return member

    def site(self, site_id: str) -> Site:
        """The site with this id; KeyError if there is none."""
        site: Site = self._get("sites", "site_id", site_id)
        return site

    def device(self, device_id: str) -> Device:
        """The device with this id; KeyError if there is none."""
        device: Device = self._get("devices", "device_id", device_id)
        return device

    def tariff_plan(self, plan_id: str) -> TariffPlan:
        """The tariff plan with this id; KeyError if there is none."""
        plan: TariffPlan = self._get("tariff_plans", "plan_id", plan_id)
        return plan

    def contract(self, contract_id: str) -> Contract:
        """The contract with this id; KeyError if there is none."""
        contract: Contract = self._get("contracts", "contract_id", contract_id)
        return contract

    def gateway_of(self, device: Device) -> str:
        """The gateway that reads a device (its own or its site's)."""
        return device.gateway_id or self.site(device.site_id).gateway_id

    def devices_of_site(self, site_id: str) -> list[Device]:
        """All devices that ever measured a site, oldest first."""
        return sorted(
            (d for d in self.devices if d.site_id == site_id),
            key=lambda d: (d.installed_on, d.device_id),
        )

    def contracts_in(self, first_day: date, last_day: date) -> list[Contract]:
        """Contracts covering any day of [first_day, last_day], by site and start date."""
        return sorted(
            (c for c in self.contracts if c.overlaps(first_day, last_day)),
            key=lambda c: (c.site_id, c.start_date, c.contract_id),
        )


# ---------------------------------------------------------------------------------------
# Problems, YAML with line numbers, cross-references
# ---------------------------------------------------------------------------------------

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a fleet file, where it is and why."""

    loc: Loc
    message: str
    line: int | None = None

    @property
    def field(self) -> str:
        return format_loc(self.loc)

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field or '(file)'}: {self.message}"


class FleetFileError(ValueError):
    """The fleet file is invalid; :attr:`problems` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {len(self.problems)} problem(s)"]
        lines += [
            f"  {source}:{p.line or '?'}: {p.field or '(file)'}: {p.message}" for p in self.problems
        ]
        super().__init__("\n".join(lines))


def format_loc(loc: Loc) -> str:
    """``('members', 3, 'email')`` → ``members[3].email``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# libyaml's parser when PyYAML was built with it (about 10x faster on a 10,000-member file).
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc]
    """Safe YAML loader that reads numbers with a fraction as exact Decimals."""


def _construct_decimal(loader: Any, node: yaml.Node) -> Any:
    text = str(loader.construct_scalar(node))
    plain = text.replace("_", "").lower()
    if plain in (".nan", ".inf", "+.inf", "-.inf"):
        return float(loader.construct_yaml_float(node))
    return Decimal(plain)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def _walk_marks(node: yaml.Node, path: Loc, marks: dict[Loc, int], problems: list[Problem]) -> None:
    marks[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem((*path, key), f"duplicate key (first on line {seen[key]})", line)
                )
            seen[key] = line
            marks[(*path, key)] = line
            _walk_marks_value(value_node, (*path, key), marks, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_marks(item, (*path, index), marks, problems)


def _walk_marks_value(
    node: yaml.Node, path: Loc, marks: dict[Loc, int], problems: list[Problem]
) -> None:
    # A mapping or sequence value keeps its key's line; children get their own.
    key_line = marks[path]
    _walk_marks(node, path, marks, problems)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        marks[path] = key_line


def parse_yaml_with_lines(text: str, source: str = "<fleet>") -> tuple[Any, dict[Loc, int]]:
    """Parse YAML, returning the data and a map from each key/item path to its line (1-based).

    Raises
    ------
    FleetFileError
        On a YAML syntax error or a duplicate key, with the line.
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise FleetFileError(
                source, [Problem((), f"YAML syntax: {exc.problem or exc}", line)]
            ) from None
        except yaml.YAMLError as exc:
            raise FleetFileError(source, [Problem((), f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    marks: dict[Loc, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk_marks(node, (), marks, problems)
    if problems:
        raise FleetFileError(source, problems)
    return data, marks


def line_of(loc: Sequence[str | int], marks: Mapping[Loc, int]) -> int | None:
    """The line of the deepest part of ``loc`` present in the file."""
    parts = tuple(loc)
    for end in range(len(parts), -1, -1):
        if parts[:end] in marks:
            return marks[parts[:end]]
    return None


def _pydantic_problems(exc: ValidationError, marks: Mapping[Loc, int]) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        # Keep only the path parts that are real keys or indices (drop union/function tags).
        loc = tuple(p for p in err["loc"] if isinstance(p, int) or not _is_tag(p, err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see docs/fleet-file.md)"
        elif (
            err["type"] == "string_pattern_mismatch"
            and (err.get("ctx") or {}).get("pattern") == ID_PATTERN
        ):
            message = (
                f"{err['input']!r} is not a valid id: use letters, digits, '_', '.', '-', "
                "start with a letter or digit, at most 64 characters"
            )
        problems.append(Problem(loc, message, line_of(loc, marks)))
    return problems


def _is_tag(part: str, loc: Sequence[Any]) -> bool:
    return "[" in part or part.startswith(("function-", "lax-", "json-or-python"))


def check_references(fleet: Fleet) -> list[Problem]:
    """Cross-reference checks the field models cannot make on their own.

    Unique ids; contracts point at a known member, site and tariff plan, start no earlier than
    the plan's first version and do not overlap on a site; devices sit on a known site and on
    that site's gateway; replacements are consistent on both devices.
    """
    problems: list[Problem] = []

    def dupes(section: str, attr: str, items: Sequence[BaseModel]) -> dict[str, int]:
        index: dict[str, int] = {}
        for i, item in enumerate(items):
            key = getattr(item, attr)
            if key in index:
                problems.append(
                    Problem(
                        (section, i, attr),
                        f"duplicate {attr} {key!r} (also {section}[{index[key]}])",
                    )
                )
            else:
                index[key] = i
        return index

    members = dupes("members", "member_id", fleet.members)
    sites = dupes("sites", "site_id", fleet.sites)
    devices = dupes("devices", "device_id", fleet.devices)
    dupes("contracts", "contract_id", fleet.contracts)
    plans = dupes("tariff_plans", "plan_id", fleet.tariff_plans)
    gateways = {s.gateway_id: s.site_id for s in fleet.sites}

    for i, dev in enumerate(fleet.devices):
        if dev.site_id not in sites:
            problems.append(Problem(("devices", i, "site_id"), f"unknown site {dev.site_id!r}"))
            continue
        site = fleet.sites[sites[dev.site_id]]
        if dev.gateway_id is not None:
            if dev.gateway_id not in gateways:
                problems.append(
                    Problem(
                        ("devices", i, "gateway_id"),
                        f"unknown gateway {dev.gateway_id!r}: no site has this gateway_id",
                    )
                )
            elif dev.gateway_id != site.gateway_id:
                problems.append(
                    Problem(
                        ("devices", i, "gateway_id"),
                        f"gateway {dev.gateway_id!r} serves site {gateways[dev.gateway_id]!r}, "
                        f"not this device's site {dev.site_id!r} (gateway {site.gateway_id!r})",
                    )
                )
        if dev.kwp > site.kwp:
            problems.append(
                Problem(("devices", i, "kwp"), f"{dev.kwp} kWp exceeds site's {site.kwp} kWp")
            )
        if dev.replaced_by is not None:
            if dev.replaced_by not in devices:
                problems.append(
                    Problem(("devices", i, "replaced_by"), f"unknown device {dev.replaced_by!r}")
                )
            else:
                new = fleet.devices[devices[dev.replaced_by]]
                if new.replaces is None or new.replaces.device_id != dev.device_id:
                    problems.append(
                        Problem(
                            ("devices", i, "replaced_by"),
                            f"device {new.device_id!r} does not say `replaces: "
                            f"device_id: {dev.device_id}`",
                        )
                    )
        if dev.replaces is not None:
            problems += _check_replacement(fleet, i, dev, devices)

    for i, con in enumerate(fleet.contracts):
        if con.member_id not in members:
            problems.append(
                Problem(("contracts", i, "member_id"), f"unknown member {con.member_id!r}")
            )
        if con.site_id not in sites:
            problems.append(Problem(("contracts", i, "site_id"), f"unknown site {con.site_id!r}"))
        if con.tariff_plan_id not in plans:
            problems.append(
                Problem(
                    ("contracts", i, "tariff_plan_id"),
                    f"unknown tariff plan {con.tariff_plan_id!r}",
                )
            )
        else:
            plan = fleet.tariff_plans[plans[con.tariff_plan_id]]
            try:
                plan.version_at(con.start_date)
            except TariffError as exc:
                problems.append(Problem(("contracts", i, "start_date"), str(exc)))

    by_site: dict[str, list[int]] = {}
    for i, con in enumerate(fleet.contracts):
        by_site.setdefault(con.site_id, []).append(i)
    for indices in by_site.values():
        ordered = sorted(indices, key=lambda k: fleet.contracts[k].start_date)
        for prev, cur in itertools.pairwise(ordered):
            a, b = fleet.contracts[prev], fleet.contracts[cur]
            if a.end_date is None or a.end_date >= b.start_date:
                problems.append(
                    Problem(
                        ("contracts", cur, "start_date"),
                        f"contract {b.contract_id!r} starts {b.start_date} while contract "
                        f"{a.contract_id!r} on site {a.site_id!r} runs until "
                        f"{a.end_date or 'open end'}; end the earlier contract the day before",
                    )
                )
    return problems


def _check_replacement(
    fleet: Fleet, i: int, dev: Device, devices: Mapping[str, int]
) -> list[Problem]:
    assert dev.replaces is not None
    rep = dev.replaces
    loc: Loc = ("devices", i, "replaces", "device_id")
    if rep.device_id not in devices:
        return [Problem(loc, f"unknown device {rep.device_id!r}")]
    old = fleet.devices[devices[rep.device_id]]
    problems = []
    if old.site_id != dev.site_id:
        problems.append(
            Problem(
                loc,
                f"replaced device {old.device_id!r} is on site {old.site_id!r}, not {dev.site_id!r}",
            )
        )
    if old.replaced_by is not None and old.replaced_by != dev.device_id:
        problems.append(
            Problem(loc, f"{old.device_id!r} says it was replaced by {old.replaced_by!r}")
        )
    if old.removed_on is None:
        problems.append(
            Problem(loc, f"replaced device {old.device_id!r} needs removed_on (its last day)")
        )
    # The takeover instant lies on the old device's last day or the new one's first day.
    at_day = rep.at.astimezone(_AMS).date()
    if old.removed_on is not None and not (
        old.removed_on <= at_day <= old.removed_on + timedelta(days=1)
    ):
        problems.append(
            Problem(
                ("devices", i, "replaces", "at"),
                f"{rep.at.isoformat()} is not on {old.device_id!r}'s removed_on day "
                f"{old.removed_on} or the day after",
            )
        )
    if not (dev.installed_on <= at_day <= dev.installed_on + timedelta(days=1)):
        problems.append(
            Problem(
                ("devices", i, "replaces", "at"),
                f"{rep.at.isoformat()} is not on installed_on {dev.installed_on} or the day after",
            )
        )
    return problems


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
        raise FleetFileError(source, _pydantic_problems(exc, marks)) from None
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
