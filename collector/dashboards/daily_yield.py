"""The ``daily_yield`` measurement: each inverter's energy per local day, normalised by kWp.

InfluxQL cannot join the readings with the registry (kWp, site, member, contract), so the
dashboards that compare sites or show members read this small derived measurement instead.
``zonnewijk dashboards daily-yield --fleet FILE`` writes it; run it every few minutes for
today and once after midnight for yesterday (it is idempotent: a day's point is keyed by
measurement, tags and the local midnight, so a rerun overwrites it).

Measurement ``daily_yield``, one point per device and Europe/Amsterdam day, stamped at the
day's local midnight (UTC instant):

- tags ``gateway``, ``device``, ``site``, and ``member`` and ``contract_year`` (the start
  date of the contract year) when a contract covers the day;
- fields ``energy_kwh``, ``kwp``, ``specific_yield_kwh_per_kwp``, ``readings`` (integer),
  ``coverage`` (readings ÷ the best-covered inverter's readings that day, 0-1),
  (an inverter in service without a single reading on a day other inverters reported gets a
  point with ``readings`` 0, ``coverage`` 0 and ``energy_kwh`` 0; its energy shows up in the
  counter rise of its next day with data),
  ``fleet_median_kwh_per_kwp`` and ``relative_yield`` (specific yield ÷ fleet median), and
  ``guarantee_kwh`` (the day's pro-rata share of the contract year's guarantee) when the
  tariff has a guarantee.

These are dashboard figures. The day's energy is the rise of the lifetime counter from the
last reading before the day to the last reading in it (no interpolation at midnight, which
costs nothing for solar); a counter that steps back (reset, replacement) counts from its
first reading of the day. Billing uses the settlement engine (collector/settlement/), which
interpolates at boundaries and handles resets from the registry.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from collector.registry.fleet_file import Contract, Device, Fleet
from collector.registry.tariff_plans import TariffError
from collector.timeseries.influx import FieldValue, InfluxClient, Point

log = logging.getLogger(__name__)

MEASUREMENT = "daily_yield"
LOCAL = ZoneInfo("Europe/Amsterdam")
#: Devices below this coverage do not count towards the fleet median.
MEDIAN_MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class DeviceDay:
    """Counter readings of one device on one local day."""

    device_id: str
    counter_before_wh: float | None
    first_wh: float
    last_wh: float
    readings: int


def day_bounds_utc(day: date, tz: ZoneInfo = LOCAL) -> tuple[datetime, datetime]:
    """The UTC instants where a local day starts and ends (23 or 25 hours on DST days)."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def day_energy_wh(d: DeviceDay) -> float:
    """Energy of a day from its counter readings [Wh].

    Parameters
    ----------
    d : DeviceDay
        Counter before the day and first/last counter in it [Wh]
    """
    if d.counter_before_wh is not None and d.last_wh >= d.counter_before_wh:
        return d.last_wh - d.counter_before_wh
    return max(0.0, d.last_wh - d.first_wh)


def specific_yield_kwh_per_kwp(energy_kwh: float, kwp: float) -> float:
    """Energy per installed peak power [kWh/kWp].

    Parameters
    ----------
    energy_kwh : float
        Energy [kWh]
    kwp : float
        Installed peak power [kWp]
    """
    if kwp <= 0:
        raise ValueError(f"kWp must be positive, got {kwp}")
    return energy_kwh / kwp


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def read_device_days(influx: InfluxClient, day: date) -> dict[str, DeviceDay]:
    """Counter readings of every device on one local day, from the ``inverter`` measurement."""
    start, end = day_bounds_utc(day)
    within = influx.query_records(
        'SELECT first("ac_energy_wh") AS "first", last("ac_energy_wh") AS "last", '
        'count("ac_energy_wh") AS "n" FROM "inverter" '
        f'WHERE time >= {_ms(start)}ms AND time < {_ms(end)}ms GROUP BY "device"'
    )
    before = influx.query_records(
        'SELECT last("ac_energy_wh") AS "last" FROM "inverter" '
        f"WHERE time >= {_ms(start - timedelta(days=14))}ms AND time < {_ms(start)}ms "
        'GROUP BY "device"'
    )
    before_by_device = {r["device"]: float(r["last"]) for r in before if r.get("last") is not None}
    out: dict[str, DeviceDay] = {}
    for r in within:
        if r.get("last") is None or not r.get("n"):
            continue
        out[r["device"]] = DeviceDay(
            device_id=r["device"],
            counter_before_wh=before_by_device.get(r["device"]),
            first_wh=float(r["first"]),
            last_wh=float(r["last"]),
            readings=int(r["n"]),
        )
    return out


def _contract_on(fleet: Fleet, site_id: str, day: date) -> Contract | None:
    for contract in fleet.contracts:
        if contract.site_id == site_id and contract.active_on(day):
            return contract
    return None


def contract_year_start(contract: Contract, day: date) -> date:
    """The first day of the contract year that contains ``day``."""
    anchor = contract.contract_year_anchor
    year = day.year
    while True:
        try:
            start = anchor.replace(year=year)
        except ValueError:  # 29 February anchor in a common year
            start = date(year, 3, 1)
        if start <= day:
            return start
        year -= 1


def guarantee_kwh_for_day(
    fleet: Fleet, contract: Contract, kwp: Decimal, day: date
) -> float | None:
    """The day's pro-rata share of the contract year's guaranteed energy [kWh].

    Parameters
    ----------
    kwp : Decimal
        Installed peak power of the site [kWp]
    """
    try:
        version = fleet.tariff_plan(contract.tariff_plan_id).version_at(day)
    except (KeyError, LookupError, TariffError, ValueError):
        return None
    if version.guarantee is None:
        return None
    start = contract_year_start(contract, day)
    try:
        next_start = start.replace(year=start.year + 1)
    except ValueError:
        next_start = date(start.year + 1, 3, 1)
    year_days = (next_start - start).days
    return float(version.guarantee.guaranteed_kwh(kwp)) / year_days


def _device_in_service(device: Device, day: date) -> bool:
    return device.installed_on <= day and (device.removed_on is None or day <= device.removed_on)


def daily_yield_points(fleet: Fleet, day: date, device_days: dict[str, DeviceDay]) -> list[Point]:
    """The ``daily_yield`` points of one day (pure: no I/O)."""
    stamp = day_bounds_utc(day)[0]
    best = max((d.readings for d in device_days.values()), default=0)
    rows: list[tuple[Device, DeviceDay, float, float, float]] = []
    for device in fleet.devices:
        if not _device_in_service(device, day):
            continue
        found = device_days.get(device.device_id)
        if found is None:
            if best:  # others reported that day: this device has a whole-day gap
                rows.append((device, DeviceDay(device.device_id, None, 0.0, 0.0, 0), 0.0, 0.0, 0.0))
            continue
        kwp = float(device.kwp)
        energy_kwh = day_energy_wh(found) / 1000
        coverage = found.readings / best if best else 0.0
        rows.append(
            (device, found, energy_kwh, specific_yield_kwh_per_kwp(energy_kwh, kwp), coverage)
        )
    covered = [sy for _d, _f, _e, sy, cov in rows if cov >= MEDIAN_MIN_COVERAGE]
    median = statistics.median(covered) if covered else None
    points: list[Point] = []
    for device, found, energy_kwh, sy, coverage in rows:
        site = fleet.site(device.site_id)
        tags = {
            "gateway": fleet.gateway_of(device),
            "device": device.device_id,
            "site": device.site_id,
        }
        fields: dict[str, FieldValue] = {
            "energy_kwh": round(energy_kwh, 4),
            "kwp": float(device.kwp),
            "readings": found.readings,
            "coverage": round(coverage, 4),
        }
        if found.readings:
            fields["specific_yield_kwh_per_kwp"] = round(sy, 4)
        if median is not None and found.readings:
            fields["fleet_median_kwh_per_kwp"] = round(median, 4)
            if median > 0:
                fields["relative_yield"] = round(sy / median, 4)
        contract = _contract_on(fleet, device.site_id, day)
        if contract is not None:
            tags["member"] = contract.member_id
            tags["contract_year"] = contract_year_start(contract, day).isoformat()
            guarantee = guarantee_kwh_for_day(fleet, contract, site.kwp, day)
            if guarantee is not None:
                fields["guarantee_kwh"] = round(guarantee, 4)
        points.append(Point(MEASUREMENT, tags, fields, stamp))
    return points


def local_days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def write_daily_yields(influx: InfluxClient, fleet: Fleet, days: Iterable[date]) -> int:
    """Compute and write ``daily_yield`` for the given local days; returns points written."""
    written = 0
    for day in days:
        points = daily_yield_points(fleet, day, read_device_days(influx, day))
        written += influx.write_points(points)
        log.info("daily_yield %s: %d devices", day, len(points))
    return written


def today_local(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(LOCAL).date()


def recent_days(count: int, now: datetime | None = None) -> Sequence[date]:
    """The last ``count`` local days, ending today."""
    today = today_local(now)
    return local_days(today - timedelta(days=count - 1), today)
