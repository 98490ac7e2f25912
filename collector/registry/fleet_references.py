"""The fleet file's cross-references: every name points at something that exists, and
what covers a site or a device never overlaps (contracts, replacements, counter resets).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
)

from collector.registry.fleet_models import Device, Fleet
from collector.registry.fleet_problems import Loc, Problem
from collector.registry.tariff_plans import TariffError

_AMS = ZoneInfo("Europe/Amsterdam")


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
