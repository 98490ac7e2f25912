"""A member's production from InfluxDB: today's power curve and energy per day, month, year.

Energy comes from the inverters' lifetime counters (ARCHITECTURE decision 3): the energy of a
local day is the last counter reading of that day minus the last one before it. Finished days
are read from the daily rollup (``rollup_1d``, :mod:`collector.timeseries.schema`); the last two days, which
its continuous query may still recompute, from the raw readings. Without rollups everything is
read from the raw readings. The portal's figures are indicative; the statements are what is
billed.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy.orm import Session

from collector.portal.scope import MemberScope
from collector.timeseries.influx import InfluxClient, InfluxQueryError, quote_ident, quote_string

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
#: Days at the end that the daily rollup's continuous query may still recompute.
RAW_TAIL_DAYS = 2


def local_midnight_utc(day: date) -> datetime:
    """The UTC instant a Europe/Amsterdam day starts (23- and 25-hour days included)."""
    return datetime.combine(day, time(), AMSTERDAM).astimezone(UTC)


def local_day(ts: datetime) -> date:
    return ts.astimezone(AMSTERDAM).date()


def _device_filter(device_ids: Sequence[str]) -> str:
    if not device_ids:
        raise ValueError("no devices to query")
    return "(" + " OR ".join(f'"device" = {quote_string(d)}' for d in device_ids) + ")"


def _time_filter(start: datetime, end: datetime) -> str:
    return (
        f"time >= {quote_string(start.astimezone(UTC).isoformat())} "
        f"AND time < {quote_string(end.astimezone(UTC).isoformat())}"
    )


def _ms(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def power_curve_w(
    influx: InfluxClient,
    device_ids: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    interval: str = "5m",
) -> list[tuple[datetime, float]]:
    """Mean AC power per interval, summed over the devices.

    Parameters
    ----------
    device_ids
        Devices to add up [-]
    start, end
        Time range, timezone-aware [UTC]
    interval
        InfluxQL bucket, e.g. ``5m`` [-]

    Returns (bucket start, power) pairs, oldest first [W].
    """
    if not device_ids or end <= start:
        return []
    q = (
        f'SELECT mean("ac_power_w") AS "p" FROM "inverter" WHERE {_device_filter(device_ids)} '
        f'AND {_time_filter(start, end)} GROUP BY time({interval}), "device" fill(none)'
    )
    totals: dict[int, float] = {}
    for row in influx.query_records(q):
        if row.get("p") is not None:
            totals[int(row["time"])] = totals.get(int(row["time"]), 0.0) + float(row["p"])
    return [(_ms(t), p) for t, p in sorted(totals.items())]


def _daily_last(
    influx: InfluxClient,
    device_ids: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    rollup: bool,
) -> dict[str, dict[date, float]]:
    source = '"rollup_1d"."inverter"' if rollup else '"inverter"'
    fieldname = "ac_energy_wh_last" if rollup else "ac_energy_wh"
    q = (
        f'SELECT last({quote_ident(fieldname)}) AS "wh" FROM {source} '
        f"WHERE {_device_filter(device_ids)} AND {_time_filter(start, end)} "
        f"GROUP BY time(1d), \"device\" fill(none) tz('Europe/Amsterdam')"
    )
    out: dict[str, dict[date, float]] = {}
    for row in influx.query_records(q):
        if row.get("wh") is None:
            continue
        out.setdefault(str(row["device"]), {})[local_day(_ms(row["time"]))] = float(row["wh"])
    return out


def daily_counters_wh(
    influx: InfluxClient,
    device_ids: Sequence[str],
    first_day: date,
    last_day: date,
    *,
    today: date,
) -> dict[str, dict[date, float]]:
    """The last lifetime-counter reading of each local day, per device [Wh].

    Days before ``today - RAW_TAIL_DAYS`` come from the daily rollup when it exists.
    """
    if not device_ids or last_day < first_day:
        return {}
    start = local_midnight_utc(first_day)
    end = local_midnight_utc(last_day + timedelta(days=1))
    split = min(max(local_midnight_utc(today - timedelta(days=RAW_TAIL_DAYS)), start), end)
    result: dict[str, dict[date, float]] = {}
    old: dict[str, dict[date, float]] = {}
    if split > start:
        try:
            old = _daily_last(influx, device_ids, start, split, rollup=True)
        except InfluxQueryError:
            old = {}
        if not old:
            old = _daily_last(influx, device_ids, start, split, rollup=False)
    recent = _daily_last(influx, device_ids, split, end, rollup=False) if end > split else {}
    for part in (old, recent):
        for device, days in part.items():
            result.setdefault(device, {}).update(days)
    return result


@dataclass(frozen=True)
class CounterEvent:
    """A known jump of a device's counter (registry): a reset, or a new device's first value.

    ``before_wh`` is the old counter's last value (None when a replacement device starts) and
    ``after_wh`` the first value the counter continued from [Wh].
    """

    at: datetime
    before_wh: float | None
    after_wh: float


def daily_energy_kwh(
    counters_wh: Mapping[str, Mapping[date, float]],
    scope: MemberScope | None = None,
    events: Mapping[str, Sequence[CounterEvent]] | None = None,
) -> dict[date, float]:
    """Energy per local day from the daily last counter readings, summed over devices.

    A day's energy is its last reading minus the previous known one (after a gap the whole
    gap's energy lands on the first day back). On a day with a known counter reset the energy
    is counted on both sides of it (old counter up to its last value, new one from its first);
    a replacement device's first day counts from its first value. A counter that steps
    backwards without a known event contributes nothing that day. Days outside a member's
    contract window on the device are left out when ``scope`` is given.

    Parameters
    ----------
    counters_wh
        Per device, per local day, the day's last lifetime counter [Wh]
    scope
        The member's devices and contract windows [-]
    events
        Per device, the registry's counter resets and replacement starts [-]

    Returns energy per day [kWh].
    """
    out: dict[date, float] = {}
    for device, days in counters_wh.items():
        window = scope.window(device) if scope is not None else None
        by_day: dict[date, CounterEvent] = {}
        for known in (events or {}).get(device, ()):
            by_day[local_day(known.at)] = known
        previous: float | None = None
        for day in sorted(days):
            value = days[day]
            event = by_day.get(day)
            wh: float | None = None
            if event is not None:
                old_part = 0.0
                if event.before_wh is not None and previous is not None:
                    old_part = max(event.before_wh - previous, 0.0)
                wh = old_part + max(value - event.after_wh, 0.0)
            elif previous is not None and value >= previous:
                wh = value - previous
            previous = value
            if wh is None:
                continue
            start = local_midnight_utc(day)
            if window is not None and (
                start < window[0] or (window[1] is not None and start >= window[1])
            ):
                continue
            out[day] = out.get(day, 0.0) + wh / 1000.0
    return out


def counter_events(session: Session, device_ids: Sequence[str]) -> dict[str, list[CounterEvent]]:
    """The registry's counter resets and replacement starts of these devices."""
    from sqlalchemy import select

    from collector.store.models import CounterResetRow, DeviceReplacementRow

    out: dict[str, list[CounterEvent]] = {}
    if not device_ids:
        return out
    for reset in session.scalars(
        select(CounterResetRow).where(CounterResetRow.device_id.in_(list(device_ids)))
    ):
        out.setdefault(reset.device_id, []).append(
            CounterEvent(reset.at, float(reset.last_energy_wh), float(reset.first_energy_wh))
        )
    for rep in session.scalars(
        select(DeviceReplacementRow).where(DeviceReplacementRow.device_id.in_(list(device_ids)))
    ):
        out.setdefault(rep.device_id, []).append(
            CounterEvent(rep.at, None, float(rep.new_first_energy_wh))
        )
    return out


def sum_by_month(daily_kwh: Mapping[date, float]) -> dict[tuple[int, int], float]:
    """Energy per (year, month) [kWh] from energy per day [kWh]."""
    out: dict[tuple[int, int], float] = {}
    for day, kwh in daily_kwh.items():
        key = (day.year, day.month)
        out[key] = out.get(key, 0.0) + kwh
    return out


def sum_between(daily_kwh: Mapping[date, float], first: date, last: date) -> float:
    """Energy of the days ``first`` .. ``last`` inclusive [kWh]."""
    return sum(kwh for day, kwh in daily_kwh.items() if first <= day <= last)


@lru_cache(maxsize=1)
def typical_daily_kwh_per_kwp() -> tuple[float, ...]:
    """Typical daily specific yield per calendar month [kWh/kWp/day] (data file)."""
    text = resources.files("collector.portal").joinpath("data/typical_yield.yaml").read_text()
    values = tuple(float(v) for v in yaml.safe_load(text)["daily_kwh_per_kwp_by_month"])
    if len(values) != 12 or any(v <= 0 for v in values):
        raise ValueError("typical_yield.yaml needs 12 positive monthly values")
    return values


def year_fraction_typical(day: date) -> float:
    """The share of a typical year's energy produced from 1 January through ``day`` [-]."""
    profile = typical_daily_kwh_per_kwp()
    months = [profile[m - 1] * calendar.monthrange(day.year, m)[1] for m in range(1, 13)]
    done = sum(months[: day.month - 1]) + profile[day.month - 1] * day.day
    return done / sum(months)


def typical_share(start: date, day: date, end: date) -> float:
    """The share of a typical year's energy in ``[start, end)`` produced from ``start``
    through ``day`` (inclusive) [-]; e.g. a contract year from its anniversary."""
    profile = typical_daily_kwh_per_kwp()
    total = done = 0.0
    current = start
    while current < end:
        value = profile[current.month - 1]
        total += value
        if current <= day:
            done += value
        current += timedelta(days=1)
    return done / total if total else 0.0


@dataclass(frozen=True)
class PeriodBar:
    """One bar pair of a chart: this period and the same period a year before [kWh]."""

    label: str
    kwh: float | None
    kwh_last_year: float | None


def months_with_last_year(
    daily_kwh: Mapping[date, float], year: int, month_names: Sequence[str]
) -> list[PeriodBar]:
    """Each month of ``year`` next to the same month of the year before [kWh]."""
    by_month = sum_by_month(daily_kwh)
    return [
        PeriodBar(month_names[m - 1], by_month.get((year, m)), by_month.get((year - 1, m)))
        for m in range(1, 13)
    ]


def days_with_last_year(
    daily_kwh: Mapping[date, float], last_day: date, count: int
) -> list[PeriodBar]:
    """The last ``count`` days, each next to the same calendar day a year before [kWh]."""
    out = []
    for i in range(count - 1, -1, -1):
        day = last_day - timedelta(days=i)
        try:
            before = day.replace(year=day.year - 1)
        except ValueError:  # 29 February
            before = day.replace(year=day.year - 1, day=28)
        out.append(PeriodBar(day.strftime("%d-%m"), daily_kwh.get(day), daily_kwh.get(before)))
    return out


def years_totals(daily_kwh: Mapping[date, float], years: Iterable[int]) -> list[PeriodBar]:
    """Total per calendar year [kWh] (no comparison bar)."""
    by_year: dict[int, float] = {}
    for day, kwh in daily_kwh.items():
        by_year[day.year] = by_year.get(day.year, 0.0) + kwh
    return [PeriodBar(str(y), by_year.get(y), None) for y in years]
