"""The member's self-consumption page: today's production against consumption, the month's
self-consumption rate, what was exported and imported, and the hours in which the panels
usually make more than the home uses.

A household is a site the member rents panels on: its inverters and the grid meter behind
its gateway. The figures come from :mod:`collector.settlement.self_consumption` (quarter-hour
balance, each solar Wh either self-consumed or exported); they are indicative, like the rest
of the portal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from collector.portal.scope import MemberScope
from collector.settlement import self_consumption as sc
from collector.settlement.periods import local_day_of, local_midnight_utc, month_period
from collector.settlement.self_consumption_influx import household_intervals
from collector.store.models import SiteRow
from collector.timeseries.influx import InfluxClient

#: Days of the member's own history the advice is drawn from.
ADVICE_DAYS = 28
#: Gap limit over a month: older readings may be hourly [s].
HISTORY_MAX_GAP_S = 7200.0


@dataclass(frozen=True)
class Household:
    """One home: the site, its gateway (the meter behind it) and its inverters."""

    site_id: str
    gateway_id: str
    device_ids: tuple[str, ...]


@dataclass(frozen=True)
class SelfConsumptionPage:
    today: date
    day_start: datetime
    day_end: datetime
    #: per quarter-hour today: (start, production W, consumption W), measured only
    curve: list[tuple[datetime, float, float]]
    today_balance: sc.Balance
    month_label: str
    month_balance: sc.Balance
    surplus_ranges: list[tuple[int, int]]
    has_meter: bool


def households(session: Session, scope: MemberScope, day: date) -> list[Household]:
    """The homes whose panels the member rents on ``day``."""
    devices: dict[str, list[str]] = {}
    for grant in scope.grants:
        if grant.start_day <= day and (grant.end_day is None or grant.end_day >= day):
            devices.setdefault(grant.site_id, []).append(grant.device_id)
    out = []
    for site_id in sorted(devices):
        site = session.get(SiteRow, site_id)
        if site is not None:
            out.append(Household(site_id, site.gateway_id, tuple(sorted(set(devices[site_id])))))
    return out


def _intervals(
    influx: InfluxClient,
    homes: Sequence[Household],
    start: datetime,
    end: datetime,
    max_gap_s: float,
) -> list[sc.IntervalBalance]:
    out: list[sc.IntervalBalance] = []
    for home in homes:
        out.extend(
            household_intervals(
                influx, home.gateway_id, home.device_ids, start, end, max_gap_s=max_gap_s
            )
        )
    return out


def build_page(
    session: Session, influx: InfluxClient, scope: MemberScope, now: datetime
) -> SelfConsumptionPage:
    """Everything on the self-consumption page for one member at ``now`` [UTC]."""
    today = local_day_of(now)
    day_start = local_midnight_utc(today)
    day_end = local_midnight_utc(today + timedelta(days=1))
    homes = households(session, scope, today)
    until = sc.utc_grid_floor(now)
    today_items = (
        _intervals(influx, homes, day_start, until, sc.DEFAULT_MAX_GAP_S)
        if until > day_start
        else []
    )
    hours_per_step = sc.DEFAULT_STEP_S / 3600
    curve = [
        (
            item.start,
            item.balance.production_wh / hours_per_step,
            item.balance.consumption_wh / hours_per_step,
        )
        for item in today_items
        if item.balance.covered_s > 0
    ]
    month = month_period(today.year, today.month)
    history_start = min(month.start_utc, local_midnight_utc(today - timedelta(days=ADVICE_DAYS)))
    history = (
        _intervals(influx, homes, history_start, until, HISTORY_MAX_GAP_S)
        if until > history_start
        else []
    )
    month_items = [i for i in history if i.start >= month.start_utc]
    advice_items = [i for i in history if i.start < day_start]
    return SelfConsumptionPage(
        today=today,
        day_start=day_start,
        day_end=day_end,
        curve=curve,
        today_balance=sc.total(today_items),
        month_label=month.label,
        month_balance=sc.total(month_items),
        surplus_ranges=sc.hour_ranges(sc.surplus_hours(advice_items)),
        has_meter=any(i.balance.covered_s > 0 for i in history),
    )
