"""The month's self-consumption on a member's statement (issue 17), for information only.

From 1 January 2027 a solar kWh used at home is worth more than one exported, so the
statement shows, for a member whose smart meter is read with their consent, how much of the
month's production the home used itself. The figures come from the home's own days in
``household_energy_daily`` (written by ``zonnewijk dashboards self-consumption``; kept until
the member withdraws consent, when the purge deletes them): no consent, no meter or no days
means no box on the statement. Nothing here is billed; the lease is settled on the inverter's
counters alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from collector.settlement.self_consumption import day_span
from collector.timeseries.influx import InfluxClient, quote_ident, quote_string
from collector.timeseries.measurements import HOUSEHOLD_DAILY_MEASUREMENT

#: Figures are shown to 0.1 kWh.
_TENTH = Decimal("0.1")


@dataclass(frozen=True)
class SiteDays:
    """One contract's site and its days in the statement's period (end exclusive)."""

    site_id: str
    start_day: date
    end_day: date


@dataclass(frozen=True)
class MonthSelfConsumption:
    """A home's balance over the measured days of a statement's period [kWh]."""

    production_kwh: Decimal
    self_consumed_kwh: Decimal
    export_kwh: Decimal
    import_kwh: Decimal
    consumption_kwh: Decimal
    #: Days with meter data, and the days of the period the contracts cover.
    days_measured: int
    days_in_period: int

    @property
    def self_consumption_rate(self) -> Decimal | None:
        """Share of the production used at home (None without production)."""
        if self.production_kwh <= 0:
            return None
        return self.self_consumed_kwh / self.production_kwh

    @property
    def self_sufficiency(self) -> Decimal | None:
        """Share of the home's consumption that its panels supplied (None without use)."""
        if self.consumption_kwh <= 0:
            return None
        return self.self_consumed_kwh / self.consumption_kwh


def _kwh(value: object) -> Decimal:
    number = float(value) if isinstance(value, int | float) else 0.0
    return Decimal(repr(number)).quantize(_TENTH)


def month_self_consumption(
    influx: InfluxClient, spans: list[SiteDays]
) -> MonthSelfConsumption | None:
    """Sum the home's days over the contracts' spans; None when no day has meter data."""
    names = ("production_kwh", "self_consumed_kwh", "export_kwh", "import_kwh", "consumption_kwh")
    totals = dict.fromkeys(names, 0.0)
    measured = 0
    days = 0
    for span in spans:
        if span.end_day <= span.start_day:
            continue
        days += (span.end_day - span.start_day).days
        start = day_span(span.start_day)[0]
        end = day_span(span.end_day)[0]
        rows = influx.query_records(
            "SELECT sum(production_kwh) AS production_kwh, "
            "sum(self_consumed_kwh) AS self_consumed_kwh, sum(export_kwh) AS export_kwh, "
            "sum(import_kwh) AS import_kwh, sum(consumption_kwh) AS consumption_kwh, "
            f"count(covered_s) AS days FROM {quote_ident(HOUSEHOLD_DAILY_MEASUREMENT)} "
            f"WHERE site = {quote_string(span.site_id)} "
            f"AND time >= {int(start.timestamp() * 1000)}ms "
            f"AND time < {int(end.timestamp() * 1000)}ms"
        )
        for row in rows:
            measured += int(row.get("days") or 0)
            for name in totals:
                value = row.get(name)
                totals[name] += float(value) if isinstance(value, int | float) else 0.0
    if measured == 0:
        return None
    return MonthSelfConsumption(
        production_kwh=_kwh(totals["production_kwh"]),
        self_consumed_kwh=_kwh(totals["self_consumed_kwh"]),
        export_kwh=_kwh(totals["export_kwh"]),
        import_kwh=_kwh(totals["import_kwh"]),
        consumption_kwh=_kwh(totals["consumption_kwh"]),
        days_measured=measured,
        days_in_period=days,
    )
