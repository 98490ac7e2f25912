"""The ``fleet_self_consumption`` measurement: the fleet's and each neighbourhood's solar
self-consumption per local day, for Grafana.

InfluxQL cannot take a per-quarter-hour minimum across two measurements (inverter and grid
meter), so this module balances each household with
:mod:`collector.settlement.self_consumption` (each solar Wh either self-consumed or
exported) and writes only aggregates of at least
:data:`~collector.settlement.self_consumption.MIN_HOUSEHOLDS` homes with meter data, so no
single home stands out and operators see no household's consumption.

One point per group and Europe/Amsterdam day, stamped at the day's local midnight; a rerun
overwrites it. Tags ``scope`` (``fleet``, or ``pc4`` for a neighbourhood by the four digits
of the Dutch postal code) and ``area`` (``all`` or the digits). Fields ``production_kwh``,
``consumption_kwh``, ``import_kwh``, ``export_kwh``, ``self_consumed_kwh``,
``self_consumption_ratio``, ``self_sufficiency_ratio`` (absent when undefined),
``households`` (integer) and ``completeness``. ``fleet_self_consumption_hourly`` has the
same fields for the fleet per hour (an hour is in the group when the home was measured in
it), for the evening peak after sunset.

``household_energy_daily`` keeps each metered home's own balance per local day (tags ``site``
and ``gateway``, the same energy fields, ``covered_s``): personal data, like the raw meter
readings, read only for the member (portal) and deleted with them on withdrawal
(:mod:`collector.registry.consent_purge`), but kept after the raw readings' retention ends, so
a member's year stays comparable.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from collector.registry.fleet_file import Fleet
from collector.settlement import self_consumption as sc
from collector.settlement.self_consumption_influx import household_intervals
from collector.timeseries.influx import FieldValue, InfluxClient, Point
from collector.timeseries.measurements import HOUSEHOLD_DAILY_MEASUREMENT

MEASUREMENT = "fleet_self_consumption"
#: The fleet's energy per hour (the evening peak after sunset), same fields, tag ``scope``
#: ``fleet`` only, stamped at the start of each hour.
HOURLY_MEASUREMENT = "fleet_self_consumption_hourly"
#: One metered home's balance per local day (personal data: see the module's docstring).
HOUSEHOLD_MEASUREMENT = HOUSEHOLD_DAILY_MEASUREMENT


def household_days(influx: InfluxClient, fleet: Fleet, day: date) -> dict[str, sc.Balance]:
    """Each site's balance on a local day (sites without meter data have no covered time)."""
    return {site: sc.total(items) for site, items in household_quarters(influx, fleet, day).items()}


def household_quarters(
    influx: InfluxClient, fleet: Fleet, day: date
) -> dict[str, list[sc.IntervalBalance]]:
    """Each site's quarter-hour balances on a local day."""
    start, end = sc.day_span(day)
    out: dict[str, list[sc.IntervalBalance]] = {}
    for site in fleet.sites:
        devices = [
            d.device_id
            for d in fleet.devices_of_site(site.site_id)
            if d.installed_on <= day and (d.removed_on is None or d.removed_on >= day)
        ]
        out[site.site_id] = household_intervals(influx, site.gateway_id, devices, start, end)
    return out


def hourly_points(quarters: dict[str, list[sc.IntervalBalance]]) -> list[Point]:
    """The fleet's balance per hour, for hours with at least five metered households."""
    per_hour: dict[datetime, dict[str, sc.Balance]] = {}
    for site_id, items in quarters.items():
        for item in items:
            hour = item.start.replace(minute=0, second=0, microsecond=0)
            homes = per_hour.setdefault(hour, {})
            homes[site_id] = homes.get(site_id, sc.Balance()) + item.balance
    points = []
    for hour in sorted(per_hour):
        group = sc.aggregate_households(per_hour[hour])
        if group is not None:
            points.append(Point(HOURLY_MEASUREMENT, {"scope": "fleet"}, _fields(group), hour))
    return points


def area_of(postal_code: str) -> str:
    """The neighbourhood of a Dutch postal code: its four digits ("5211 AB" -> "5211")."""
    digits = "".join(ch for ch in postal_code if ch.isdigit())
    return digits[:4]


def group_points(fleet: Fleet, day: date, homes: dict[str, sc.Balance]) -> list[Point]:
    """The day's points: the fleet and every neighbourhood with enough households."""
    stamp = sc.day_span(day)[0]
    groups: dict[tuple[str, str], dict[str, sc.Balance]] = {("fleet", "all"): homes}
    for site in fleet.sites:
        key = ("pc4", area_of(site.address.postal_code))
        if key[1] and site.site_id in homes:
            groups.setdefault(key, {})[site.site_id] = homes[site.site_id]
    points: list[Point] = []
    for (scope, area), members in sorted(groups.items()):
        group = sc.aggregate_households(members)
        if group is None:
            continue
        points.append(Point(MEASUREMENT, {"scope": scope, "area": area}, _fields(group), stamp))
    return points


def household_points(fleet: Fleet, day: date, homes: dict[str, sc.Balance]) -> list[Point]:
    """One point per home with meter data on the day (``covered_s`` > 0)."""
    stamp = sc.day_span(day)[0]
    points = []
    for site_id, b in sorted(homes.items()):
        if b.covered_s <= 0:
            continue
        tags = {"site": site_id, "gateway": fleet.site(site_id).gateway_id}
        fields: dict[str, FieldValue] = {
            "production_kwh": b.production_wh / 1000,
            "consumption_kwh": b.consumption_wh / 1000,
            "import_kwh": b.import_wh / 1000,
            "export_kwh": b.export_wh / 1000,
            "self_consumed_kwh": b.self_consumed_wh / 1000,
            "covered_s": b.covered_s,
        }
        points.append(Point(HOUSEHOLD_MEASUREMENT, tags, fields, stamp))
    return points


def _fields(group: sc.GroupBalance) -> dict[str, FieldValue]:
    b = group.balance
    fields: dict[str, FieldValue] = {
        "production_kwh": b.production_wh / 1000,
        "consumption_kwh": b.consumption_wh / 1000,
        "import_kwh": b.import_wh / 1000,
        "export_kwh": b.export_wh / 1000,
        "self_consumed_kwh": b.self_consumed_wh / 1000,
        "households": group.households,
        "completeness": b.completeness,
    }
    if b.self_consumption_ratio is not None:
        fields["self_consumption_ratio"] = b.self_consumption_ratio
    if b.self_sufficiency_ratio is not None:
        fields["self_sufficiency_ratio"] = b.self_sufficiency_ratio
    return fields


def write_days(influx: InfluxClient, fleet: Fleet, days: Iterable[date]) -> int:
    """Write the points of each day; returns how many."""
    written = 0
    for day in days:
        quarters = household_quarters(influx, fleet, day)
        homes = {site: sc.total(items) for site, items in quarters.items()}
        points = (
            group_points(fleet, day, homes)
            + hourly_points(quarters)
            + household_points(fleet, day, homes)
        )
        if points:
            influx.write_points(points)
        written += len(points)
    return written
