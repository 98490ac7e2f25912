"""The member overview: what the member's home page shows, assembled from store and InfluxDB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.faults.alerts import Alert, AlertService, AlertStatus
from collector.portal import production as prod
from collector.portal.i18n import month_names, translate
from collector.portal.scope import MemberScope
from collector.settlement.periods import Period, contract_year
from collector.store.models import ContractRow, TariffVersionRow
from collector.timeseries.influx import InfluxClient


@dataclass(frozen=True)
class Overview:
    today: date
    curve: list[tuple[datetime, float]]
    day_start: datetime
    day_end: datetime
    power_now_w: float | None
    today_kwh: float | None
    days: list[prod.PeriodBar]
    months: list[prod.PeriodBar]
    years: list[prod.PeriodBar]
    ytd_kwh: float
    ytd_last_year_kwh: float
    guarantee: GuaranteeStatus | None
    kwp: float


@dataclass(frozen=True)
class GuaranteeStatus:
    """The member's guaranteed contracts, each in its own contract year, added up [kWh]."""

    #: the (first) guaranteed contract's year: first day and the day after its last
    year_start: date
    year_end: date
    produced_kwh: float
    guarantee_year_kwh: float
    guarantee_to_date_kwh: float

    @property
    def year_last_day(self) -> date:
        return self.year_end - timedelta(days=1)


def guarantee_status(
    session: Session,
    scope: MemberScope,
    counters: Mapping[str, Mapping[date, float]],
    events: Mapping[str, Sequence[prod.CounterEvent]],
    today: date,
) -> GuaranteeStatus | None:
    """Energy in the running contract year against the yield guarantee, None without one.

    The contract year runs from the contract's anniversary (``year_anchor`` or the start
    day); the guarantee to date is the yearly guarantee times the share of a typical year's
    energy that falls between the anniversary and today.
    """
    produced = guarantee = to_date = 0.0
    first_year: Period | None = None
    for contract_id in scope.contract_ids:
        contract = session.get(ContractRow, contract_id)
        if contract is None or (contract.end_date is not None and contract.end_date < today):
            continue
        version = session.scalar(
            select(TariffVersionRow)
            .where(
                TariffVersionRow.plan_id == contract.tariff_plan_id,
                TariffVersionRow.valid_from <= today,
            )
            .order_by(TariffVersionRow.valid_from.desc())
            .limit(1)
        )
        if version is None:
            continue
        grants = [g for g in scope.grants if g.contract_id == contract_id]
        kwp = sum(Decimal(str(g.kwp)) for g in grants)
        if version.guarantee_kwh_per_year is not None:
            yearly = float(version.guarantee_kwh_per_year)
        elif version.guarantee_kwh_per_kwp_per_year is not None:
            yearly = float(version.guarantee_kwh_per_kwp_per_year * kwp)
        else:
            continue
        year = contract_year(contract.year_anchor or contract.start_date, today)
        devices = {g.device_id for g in grants}
        daily = prod.daily_energy_kwh(
            {d: v for d, v in counters.items() if d in devices}, scope, events
        )
        produced += prod.sum_between(daily, year.start_day, today)
        guarantee += yearly
        to_date += yearly * prod.typical_share(year.start_day, today, year.end_day)
        first_year = first_year or year
    if first_year is None:
        return None
    return GuaranteeStatus(first_year.start_day, first_year.end_day, produced, guarantee, to_date)


def build_overview(
    session: Session, influx: InfluxClient, scope: MemberScope, now: datetime, language: str
) -> Overview:
    """Everything on the overview page for one member at ``now`` [UTC]."""
    today = prod.local_day(now)
    day_start = prod.local_midnight_utc(today)
    day_end = prod.local_midnight_utc(today + timedelta(days=1))
    devices = list(scope.device_ids)
    # Power today, clipped to the member's window on each device.
    allowed = [d for d in devices if _window_covers(scope, d, day_start, now)]
    curve = prod.power_curve_w(influx, allowed, day_start, now) if allowed else []
    first_day = date(today.year - 1, 1, 1) - timedelta(days=1)
    counters = prod.daily_counters_wh(influx, devices, first_day, today, today=today)
    events = prod.counter_events(session, devices)
    daily = prod.daily_energy_kwh(counters, scope, events)
    try:
        same_day_last_year = today.replace(year=today.year - 1)
    except ValueError:
        same_day_last_year = today.replace(year=today.year - 1, day=28)
    ytd = prod.sum_between(daily, date(today.year, 1, 1), today)
    ytd_last = prod.sum_between(daily, date(today.year - 1, 1, 1), same_day_last_year)
    guarantee = guarantee_status(session, scope, counters, events, today)
    recent = [p for t, p in curve if (now - t).total_seconds() <= 900]
    return Overview(
        today=today,
        curve=curve,
        day_start=day_start,
        day_end=day_end,
        power_now_w=recent[-1] if recent else None,
        today_kwh=daily.get(today),
        days=prod.days_with_last_year(daily, today, 30),
        months=prod.months_with_last_year(daily, today.year, month_names(language)),
        years=prod.years_totals(daily, range(today.year - 1, today.year + 1)),
        ytd_kwh=ytd,
        ytd_last_year_kwh=ytd_last,
        guarantee=guarantee,
        kwp=sum(g.kwp for g in scope.grants if g.end_day is None or g.end_day >= today),
    )


def _window_covers(scope: MemberScope, device_id: str, start: datetime, end: datetime) -> bool:
    window = scope.window(device_id)
    if window is None:
        return False
    return window[0] <= start and (window[1] is None or window[1] >= end)


def member_alerts(service: AlertService, scope: MemberScope, *, limit: int = 20) -> list[Alert]:
    """Live alerts, then the most recent resolved ones, on the member's own devices."""
    if not scope.device_ids:
        return []
    live = service.list(
        status=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED], device_ids=scope.device_ids
    )
    done = service.list(status=AlertStatus.RESOLVED, device_ids=scope.device_ids, limit=5)
    return (live + done)[:limit]


def alert_sentence(alert: Alert, language: str) -> str:
    """An alert in plain words: "Uw omvormer meldt sinds 14:05 een storing; ..."."""
    from collector.portal.web import local_time

    today = prod.local_day(datetime.now(alert.condition_since.tzinfo))
    since_day = prod.local_day(alert.condition_since)
    if since_day == today:
        since = local_time(alert.condition_since, "%H:%M")
    else:
        since = local_time(alert.condition_since, "%d-%m %H:%M")
    key = f"alert.{alert.kind.value}"
    text = translate(key, language, since=since)
    if alert.status == AlertStatus.RESOLVED:
        return f"{text} ({translate('alerts.resolved', language)} {local_time(alert.resolved_at)})."
    return f"{text}; {translate('alerts.aware', language)}"
