"""What a settlement run depends on: the period, the fleet, the readings, what was billed.

:class:`SettlementInputs` carries everything :func:`collector.settlement.engine.settle`
reads, with a digest that identifies the inputs of a run; :class:`BilledPart` is what an
issued run billed (the basis of corrections); :class:`EngineSettings` the yield parameters.
Pure, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from collector.registry.fleet_file import Contract, Fleet
from collector.registry.store_read import canonical
from collector.settlement.counter_segments import (
    DEFAULT_MAX_GAP_S,
    DEFAULT_RESET_THRESHOLD_WH,
    CounterReadings,
)
from collector.settlement.fleet_profile import (
    DEFAULT_PROFILE_STEP_S,
)
from collector.settlement.periods import (
    Period,
    add_years,
    contract_year,
    parse_month,
    split_at_days,
)
from collector.settlement.tariffs import (
    price_spans,
)

#: Bumped whenever a change to the engine can change a result.
ENGINE_VERSION = "1"
#: Readings are needed this far around the settled days (gaps across a boundary) [days].
WINDOW_MARGIN_DAYS = 2

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class BilledPart:
    """Energy of one contract's days as issued so far (original plus corrections).

    Parameters
    ----------
    kwh : Decimal
        Energy billed so far for these days [kWh].
    unit_price_eur : Decimal
        The price they were billed at [EUR/kWh].
    vat_rate : Decimal
        Their VAT rate [1].
    """

    contract_id: str
    period: str
    start_day: date
    end_day: date
    kwh: Decimal
    unit_price_eur: Decimal
    vat_rate: Decimal
    tariff: str

    def to_json(self) -> dict[str, str]:
        return {
            "contract_id": self.contract_id,
            "period": self.period,
            "start_day": self.start_day.isoformat(),
            "end_day": self.end_day.isoformat(),
            "kwh": str(self.kwh),
            "unit_price_eur": str(self.unit_price_eur),
            "vat_rate": str(self.vat_rate),
            "tariff": self.tariff,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BilledPart:
        return cls(
            contract_id=str(data["contract_id"]),
            period=str(data["period"]),
            start_day=date.fromisoformat(data["start_day"]),
            end_day=date.fromisoformat(data["end_day"]),
            kwh=Decimal(data["kwh"]),
            unit_price_eur=Decimal(data["unit_price_eur"]),
            vat_rate=Decimal(data["vat_rate"]),
            tariff=str(data["tariff"]),
        )


@dataclass(frozen=True)
class EngineSettings:
    """Parameters of the yield calculation, recorded with each run.

    Parameters
    ----------
    max_gap_s : float
        Readings further apart are a gap [s].
    reset_threshold_wh : float
        Backward steps larger than this are a counter restart [Wh].
    profile_step_s : float
        Bucket of the fleet profile [s].
    """

    max_gap_s: float = DEFAULT_MAX_GAP_S
    reset_threshold_wh: float = DEFAULT_RESET_THRESHOLD_WH
    profile_step_s: float = DEFAULT_PROFILE_STEP_S

    def to_json(self) -> dict[str, float]:
        return {
            "max_gap_s": self.max_gap_s,
            "reset_threshold_wh": self.reset_threshold_wh,
            "profile_step_s": self.profile_step_s,
        }


@dataclass(frozen=True)
class SettlementInputs:
    """Everything one settlement depends on."""

    period: Period
    fleet: Fleet
    readings: Mapping[str, CounterReadings]
    billed: tuple[BilledPart, ...] = ()
    correct_periods: tuple[str, ...] = ()
    settings: EngineSettings = field(default_factory=EngineSettings)

    def digest(self) -> str:
        """SHA-256 of the inputs in a canonical form: equal inputs, equal digest."""
        h = hashlib.sha256()
        h.update(self.period.label.encode())
        h.update(fleet_sha256(self.fleet).encode())
        for device in sorted(self.readings):
            r = self.readings[device]
            h.update(device.encode())
            h.update(np.ascontiguousarray(r.ts_s).tobytes())
            h.update(np.ascontiguousarray(r.wh).tobytes())
            if r.imported:
                h.update(json.dumps(r.imported).encode())
        h.update(json.dumps([b.to_json() for b in self.billed], sort_keys=True).encode())
        h.update(json.dumps(sorted(self.correct_periods)).encode())
        h.update(json.dumps(self.settings.to_json(), sort_keys=True).encode())
        return h.hexdigest()


def fleet_sha256(fleet: Fleet) -> str:
    """SHA-256 of the fleet with every section sorted by id (order in the file does not count)."""
    return hashlib.sha256(canonical(fleet).model_dump_json().encode()).hexdigest()


def correction_periods(billed: Iterable[BilledPart], before: Period, months: int) -> list[Period]:
    """The issued months (among ``billed``) within ``months`` before ``before``."""
    earliest = before.start_day
    for _ in range(months):
        earliest = (earliest - timedelta(days=1)).replace(day=1)
    labels = {b.period for b in billed}
    periods = [parse_month(label) for label in labels]
    return sorted(p for p in periods if earliest <= p.start_day < before.start_day)


def readings_window(period: Period, correct_periods: Sequence[str] = ()) -> tuple[date, date]:
    """The local days ``[first, end)`` whose readings a settlement needs (with margins)."""
    first = min([period.start_day, *(parse_month(p).start_day for p in correct_periods)])
    return (
        first - timedelta(days=WINDOW_MARGIN_DAYS),
        period.end_day + timedelta(days=WINDOW_MARGIN_DAYS),
    )


def part_boundaries(
    fleet: Fleet,
    period: Period,
    billed: Sequence[BilledPart] = (),
    correct_periods: Sequence[str] = (),
) -> dict[date, set[str]]:
    """The local days at whose midnight some part starts or ends, with the devices involved.

    A data source fetches the exact readings around these instants; elsewhere a coarser
    series suffices, since only the counter at part boundaries enters a bill.
    """
    out: dict[date, set[str]] = defaultdict(set)
    site_devices: dict[str, set[str]] = defaultdict(set)
    for device in fleet.devices:
        site_devices[device.site_id].add(device.device_id)
    contracts = {c.contract_id: c for c in fleet.contracts}
    for contract in fleet.contracts_in(period.start_day, period.end_day - timedelta(days=1)):
        days = period.intersect(contract.start_date, contract.end_exclusive)
        if days is None:
            continue
        plan = fleet.tariff_plan(contract.tariff_plan_id)
        cuts = contract_year_cuts(contract, days)
        for span in price_spans(plan, days.start_day, days.end_day):
            for piece in split_at_days(Period(span.start, span.end), cuts):
                out[piece.start_day] |= site_devices[contract.site_id]
                out[piece.end_day] |= site_devices[contract.site_id]
    wanted = set(correct_periods)
    for b in billed:
        if b.period in wanted and b.contract_id in contracts:
            site = contracts[b.contract_id].site_id
            out[b.start_day] |= site_devices[site]
            out[b.end_day] |= site_devices[site]
    return dict(out)


def contract_year_cuts(contract: Contract, days: Period) -> list[date]:
    anchor = contract.contract_year_anchor
    cuts = []
    year = contract_year(anchor, max(days.start_day, anchor))
    while year.end_day < days.end_day:
        cuts.append(year.end_day)
        year = Period(year.end_day, add_years(anchor, years_between(anchor, year.end_day) + 1))
    return cuts


def years_between(anchor: date, day: date) -> int:
    years = day.year - anchor.year
    if add_years(anchor, years) > day:
        years -= 1
    return years
