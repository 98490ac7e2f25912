"""Settle one month: contracts × measured yields × tariffs → statement lines. Pure, no I/O.

:func:`settle` takes everything a settlement depends on in one :class:`SettlementInputs`
(the period, the fleet registry, every device's counter readings, and what earlier issued
runs billed) and returns a :class:`SettlementResult`. The same inputs always give the same
result, to the cent and to the byte of its JSON, whether they came from InfluxDB and the
ledger or from an exported readings file.

How a contract's month is settled
---------------------------------
1. The contract's days in the month are cut where prices change (a new tariff version, an
   indexation anniversary) into *price spans*, and spans are cut at contract-year
   anniversaries into *parts*.
2. Each part's yield is the site's counter difference over the part (see
   :mod:`collector.settlement.yields`), measured and estimated, rounded to 1 Wh.
3. Per price span: a prorated monthly-fee line and an energy line (sum of its parts' kWh).
4. Per contract year touching the month: the guarantee's year-to-date position; when the
   contract year (or the contract) ends within the month, the shortfall compensation line.
5. For each issued earlier period named in ``correct_periods``: each billed part is
   recomputed with today's readings and a correction line bills the difference at the
   original price. Nothing issued is changed.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from collector import __version__
from collector.registry.fleet_file import Contract, Device, Fleet
from collector.registry.store_sync import canonical
from collector.registry.tariff_plans import ZERO
from collector.settlement.counter_segments import (
    DEFAULT_MAX_GAP_S,
    DEFAULT_RESET_THRESHOLD_WH,
    Anomaly,
    CounterReadings,
    Installation,
    PreparedSite,
    prepare_site,
)
from collector.settlement.fleet_profile import (
    DEFAULT_PROFILE_STEP_S,
    FleetProfile,
    build_fleet_profile,
)
from collector.settlement.periods import (
    Period,
    add_years,
    contract_year,
    days_in_month,
    local_midnight_utc,
    parse_month,
    split_at_days,
)
from collector.settlement.tariffs import (
    GuaranteeOutcome,
    PriceSpan,
    StatementLine,
    energy_correction_line,
    energy_line,
    guarantee_line,
    guarantee_outcome,
    line_totals,
    monthly_fee_line,
    price_spans,
    prices_on,
    round_kwh,
)
from collector.settlement.yields import CounterUse, Estimate, counters_at, site_yield, wh_to_kwh

#: Bumped whenever a change to the engine can change a result.
ENGINE_VERSION = "1"
#: Readings are needed this far around the settled days (gaps across a boundary) [days].
WINDOW_MARGIN_DAYS = 2
_ONE_MS = timedelta(milliseconds=1)


def code_version() -> str:
    """The code version recorded with every run."""
    return f"zonnewijk {__version__}, settlement engine {ENGINE_VERSION}"


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
        cuts = _contract_year_cuts(contract, days)
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


# --------------------------------------------------------------------------- registry → sites


def _installation(devices: Mapping[str, Device], device: Device) -> Installation:
    start = (
        device.replaces.at
        if device.replaces is not None
        else local_midnight_utc(device.installed_on)
    )
    end: datetime | None = None
    if device.replaced_by is not None:
        successor = devices[device.replaced_by]
        assert successor.replaces is not None  # checked when the fleet was loaded
        end = successor.replaces.at
    elif device.removed_on is not None:
        end = local_midnight_utc(device.removed_on + timedelta(days=1))
    return Installation(
        device_id=device.device_id,
        start=start,
        end=end,
        known_resets=tuple(r.at for r in device.counter_resets),
        kwp=float(device.kwp),
    )


def registry_readings(fleet: Fleet) -> dict[str, list[tuple[datetime, float]]]:
    """Counter readings the registry records: replacements' last/first and known resets'."""
    out: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for device in fleet.devices:
        if device.replaces is not None:
            rep = device.replaces
            out[rep.device_id].append((rep.at, float(rep.old_last_energy_wh)))
            out[device.device_id].append((rep.at, float(rep.new_first_energy_wh)))
        for reset in device.counter_resets:
            out[device.device_id].append((reset.at - _ONE_MS, float(reset.last_energy_wh)))
            out[device.device_id].append((reset.at, float(reset.first_energy_wh)))
    return dict(out)


def prepare_sites(inputs: SettlementInputs) -> dict[str, PreparedSite]:
    """Every site of the fleet with its counters cut into segments."""
    fleet = inputs.fleet
    extra = registry_readings(fleet)
    merged: dict[str, CounterReadings] = {}
    for device in fleet.devices:
        measured = inputs.readings.get(device.device_id)
        added = extra.get(device.device_id, [])
        if not added:
            if measured is not None:
                merged[device.device_id] = measured
            continue
        ts = [t.timestamp() for t, _ in added]
        wh = [v for _, v in added]
        if measured is not None:
            # measured readings win over registry ones at the same instant
            ts, wh = ts + measured.ts_s.tolist(), wh + measured.wh.tolist()
        merged[device.device_id] = CounterReadings.from_arrays(device.device_id, ts, wh)
    by_site: dict[str, list[Device]] = defaultdict(list)
    for device in fleet.devices:
        by_site[device.site_id].append(device)
    devices_by_id = {d.device_id: d for d in fleet.devices}
    sites: dict[str, PreparedSite] = {}
    for site in sorted(fleet.sites, key=lambda s: s.site_id):
        ordered = sorted(by_site[site.site_id], key=lambda d: (d.installed_on, d.device_id))
        installations = [_installation(devices_by_id, d) for d in ordered]
        sites[site.site_id] = prepare_site(
            site.site_id,
            float(site.kwp),
            installations,
            merged,
            reset_threshold_wh=inputs.settings.reset_threshold_wh,
        )
    return sites


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PartResult:
    """The yield of one contract's days ``[start_day, end_day)``.

    Parameters
    ----------
    measured_wh, estimated_wh : float
        Energy from counters and estimated [Wh].
    kwh : Decimal
        Total rounded to 1 Wh: the quantity billed [kWh].
    delta_kwh : Decimal, optional
        For a correction: new yield minus the yield billed so far [kWh].
    """

    contract_id: str
    start_day: date
    end_day: date
    measured_wh: float
    estimated_wh: float
    completeness: float
    kwh: Decimal
    tariff: str
    unit_price_eur: Decimal
    vat_rate: Decimal
    estimates: tuple[Estimate, ...] = ()
    counters: tuple[CounterUse, ...] = ()
    corrects: str | None = None
    delta_kwh: Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start_day": self.start_day.isoformat(),
            "end_day": self.end_day.isoformat(),
            "measured_kwh": str(wh_to_kwh(self.measured_wh)),
            "estimated_kwh": str(wh_to_kwh(self.estimated_wh)),
            "completeness": round(self.completeness, 4),
            "kwh": str(self.kwh),
            "tariff": self.tariff,
            "unit_price_eur": str(self.unit_price_eur),
            "estimates": [e.to_json() for e in self.estimates],
        }
        if self.corrects is not None:
            out["corrects"] = self.corrects
            out["delta_kwh"] = str(self.delta_kwh)
        return out


@dataclass(frozen=True)
class ContractSettlement:
    """One contract's settlement for the month."""

    contract_id: str
    member_id: str
    site_id: str
    period: str
    start_day: date | None
    end_day: date | None
    parts: tuple[PartResult, ...]
    corrections: tuple[PartResult, ...]
    lines: tuple[StatementLine, ...]
    guarantees: tuple[GuaranteeOutcome, ...]
    anomalies: tuple[Anomaly, ...]

    @property
    def measured_wh(self) -> float:
        return sum(p.measured_wh for p in self.parts)

    @property
    def estimated_wh(self) -> float:
        return sum(p.estimated_wh for p in self.parts)

    @property
    def completeness(self) -> float:
        total = self.measured_wh + self.estimated_wh
        if total > 0:
            return max(0.0, min(1.0, self.measured_wh / total))
        return min((p.completeness for p in self.parts), default=1.0)

    @property
    def totals(self) -> tuple[Decimal, Decimal]:
        return line_totals(self.lines)

    def to_json(self) -> dict[str, Any]:
        excl, vat = self.totals
        return {
            "contract_id": self.contract_id,
            "site_id": self.site_id,
            "start_day": None if self.start_day is None else self.start_day.isoformat(),
            "end_day": None if self.end_day is None else self.end_day.isoformat(),
            "measured_kwh": str(wh_to_kwh(self.measured_wh)),
            "estimated_kwh": str(wh_to_kwh(self.estimated_wh)),
            "completeness": round(self.completeness, 4),
            "parts": [p.to_json() for p in self.parts],
            "corrections": [p.to_json() for p in self.corrections],
            "guarantees": [g.to_json() for g in self.guarantees],
            "anomalies": [a.to_json() for a in self.anomalies],
            "lines": [line.to_json() for line in self.lines],
            "total_excl_vat_eur": str(excl),
            "vat_eur": str(vat),
            "total_incl_vat_eur": str(excl + vat),
        }


@dataclass(frozen=True)
class SettlementResult:
    """A month's settlement of the whole fleet."""

    period: str
    code_version: str
    inputs_digest: str
    settings: EngineSettings
    contracts: tuple[ContractSettlement, ...]

    def members(self) -> list[dict[str, Any]]:
        """The result per member (sorted by member id), as documented in docs/settlement.md."""
        by_member: dict[str, list[ContractSettlement]] = defaultdict(list)
        for c in self.contracts:
            by_member[c.member_id].append(c)
        out = []
        for member_id in sorted(by_member):
            contracts = by_member[member_id]
            measured = sum(c.measured_wh for c in contracts)
            estimated = sum(c.estimated_wh for c in contracts)
            lines = [line for c in contracts for line in c.lines]
            excl, vat = line_totals(lines)
            total = measured + estimated
            completeness = measured / total if total > 0 else min(c.completeness for c in contracts)
            out.append(
                {
                    "member_id": member_id,
                    "period": self.period,
                    "measured_kwh": str(wh_to_kwh(measured)),
                    "estimated_kwh": str(wh_to_kwh(estimated)),
                    "completeness": round(max(0.0, min(1.0, completeness)), 4),
                    "lines": [line.to_json() for line in lines],
                    "total_excl_vat_eur": str(excl),
                    "vat_eur": str(vat),
                    "total_incl_vat_eur": str(excl + vat),
                    "contracts": [c.to_json() for c in contracts],
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        excl, vat = line_totals([line for c in self.contracts for line in c.lines])
        return {
            "format": "zonnewijk-settlement-1",
            "period": self.period,
            "code_version": self.code_version,
            "inputs_sha256": self.inputs_digest,
            "settings": self.settings.to_json(),
            "total_excl_vat_eur": str(excl),
            "vat_eur": str(vat),
            "total_incl_vat_eur": str(excl + vat),
            "members": self.members(),
        }

    def dumps(self) -> str:
        """Canonical JSON text of the result (sorted keys, two-space indent)."""
        return json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- settling


class SettlementError(ValueError):
    """The inputs cannot be settled; the message says what to fix."""


def _contract_year_cuts(contract: Contract, days: Period) -> list[date]:
    anchor = contract.contract_year_anchor
    cuts = []
    year = contract_year(anchor, max(days.start_day, anchor))
    while year.end_day < days.end_day:
        cuts.append(year.end_day)
        year = Period(year.end_day, add_years(anchor, _years_between(anchor, year.end_day) + 1))
    return cuts


def _years_between(anchor: date, day: date) -> int:
    years = day.year - anchor.year
    if add_years(anchor, years) > day:
        years -= 1
    return years


def _part(
    contract_id: str,
    site: PreparedSite,
    days: Period,
    profile: FleetProfile,
    settings: EngineSettings,
    *,
    tariff: str,
    unit_price_eur: Decimal,
    vat_rate: Decimal,
) -> PartResult:
    y = site_yield(site, days.start_utc, days.end_utc, profile, max_gap_s=settings.max_gap_s)
    return PartResult(
        contract_id=contract_id,
        start_day=days.start_day,
        end_day=days.end_day,
        measured_wh=y.measured_wh,
        estimated_wh=y.estimated_wh,
        completeness=y.completeness,
        kwh=round_kwh(wh_to_kwh(y.total_wh)),
        tariff=tariff,
        unit_price_eur=unit_price_eur,
        vat_rate=vat_rate,
        estimates=y.estimates,
        counters=tuple(
            counters_at(site, days.start_utc, profile, max_gap_s=settings.max_gap_s)
            + counters_at(site, days.end_utc, profile, max_gap_s=settings.max_gap_s)
        ),
    )


def settle(
    inputs: SettlementInputs, *, progress: Callable[[int, int], None] | None = None
) -> SettlementResult:
    """Settle the month of ``inputs``: every contract active in it, plus corrections.

    Parameters
    ----------
    progress : callable, optional
        Called as ``progress(done, total)`` while contracts are settled.
    """
    fleet, period, settings = inputs.fleet, inputs.period, inputs.settings
    window_first, window_end = readings_window(period, inputs.correct_periods)
    sites = prepare_sites(inputs)
    profile = build_fleet_profile(
        sites.values(),
        local_midnight_utc(window_first),
        local_midnight_utc(window_end),
        step_s=settings.profile_step_s,
        max_gap_s=settings.max_gap_s,
    )
    billed_by_contract: dict[str, list[BilledPart]] = defaultdict(list)
    for b in inputs.billed:
        billed_by_contract[b.contract_id].append(b)
    active = {
        c.contract_id: c
        for c in fleet.contracts_in(period.start_day, period.end_day - timedelta(days=1))
    }
    correcting = set(inputs.correct_periods)
    to_correct = {b.contract_id for b in inputs.billed if b.period in correcting}
    contract_ids = sorted(set(active) | to_correct)
    known = {c.contract_id: c for c in fleet.contracts}
    missing = [cid for cid in contract_ids if cid not in known]
    if missing:
        raise SettlementError(
            f"issued runs bill contracts the fleet no longer declares: {', '.join(missing)}; "
            "keep ended contracts in the fleet file (give them an end_date)"
        )
    results = []
    for done, contract_id in enumerate(contract_ids, start=1):
        contract = known[contract_id]
        results.append(
            _settle_contract(
                contract,
                fleet,
                period,
                sites[contract.site_id],
                profile,
                settings,
                billed_by_contract.get(contract_id, []),
                correcting,
            )
        )
        if progress is not None:
            progress(done, len(contract_ids))
    return SettlementResult(
        period=period.label,
        code_version=code_version(),
        inputs_digest=inputs.digest(),
        settings=settings,
        contracts=tuple(results),
    )


def _settle_contract(
    contract: Contract,
    fleet: Fleet,
    period: Period,
    site: PreparedSite,
    profile: FleetProfile,
    settings: EngineSettings,
    billed: list[BilledPart],
    correcting: set[str],
) -> ContractSettlement:
    plan = fleet.tariff_plan(contract.tariff_plan_id)
    days = period.intersect(contract.start_date, contract.end_exclusive)
    parts: list[PartResult] = []
    lines: list[StatementLine] = []
    if days is not None:
        year_cuts = _contract_year_cuts(contract, days)
        for span in price_spans(plan, days.start_day, days.end_day):
            span_parts = [
                _part(
                    contract.contract_id,
                    site,
                    piece,
                    profile,
                    settings,
                    tariff=span.prices.label,
                    unit_price_eur=span.prices.price_eur_per_kwh,
                    vat_rate=span.prices.vat_rate,
                )
                for piece in split_at_days(Period(span.start, span.end), year_cuts)
            ]
            parts.extend(span_parts)
            fee = monthly_fee_line(span, days_in_month(span.start))
            if fee is not None:
                lines.append(fee)
            energy = energy_line(span, sum((p.kwh for p in span_parts), ZERO))
            if energy is not None:
                lines.append(energy)

    corrections: list[PartResult] = []
    for b in sorted(billed, key=lambda b: (b.start_day, b.end_day)):
        if b.period not in correcting:
            continue
        redo = _part(
            contract.contract_id,
            site,
            Period(b.start_day, b.end_day),
            profile,
            settings,
            tariff=b.tariff,
            unit_price_eur=b.unit_price_eur,
            vat_rate=b.vat_rate,
        )
        delta = redo.kwh - b.kwh
        if delta == 0:
            continue
        corrections.append(
            PartResult(**{**redo.__dict__, "corrects": b.period, "delta_kwh": delta})
        )
        line = energy_correction_line(
            delta_kwh=delta,
            unit_price_eur=b.unit_price_eur,
            vat_rate=b.vat_rate,
            tariff=b.tariff,
            start=b.start_day,
            end=b.end_day,
            period_label=b.period,
        )
        if line is not None:
            lines.append(line)

    guarantees: list[GuaranteeOutcome] = []
    if days is not None:
        guarantees, guarantee_lines = _guarantees(
            contract, fleet, period, days, site, parts, corrections, billed
        )
        lines.extend(guarantee_lines)

    return ContractSettlement(
        contract_id=contract.contract_id,
        member_id=contract.member_id,
        site_id=contract.site_id,
        period=period.label,
        start_day=None if days is None else days.start_day,
        end_day=None if days is None else days.end_day,
        parts=tuple(parts),
        corrections=tuple(corrections),
        lines=tuple(lines),
        guarantees=tuple(guarantees),
        anomalies=site.anomalies,
    )


def _guarantees(
    contract: Contract,
    fleet: Fleet,
    period: Period,
    days: Period,
    site: PreparedSite,
    parts: list[PartResult],
    corrections: list[PartResult],
    billed: list[BilledPart],
) -> tuple[list[GuaranteeOutcome], list[StatementLine]]:
    plan = fleet.tariff_plan(contract.tariff_plan_id)
    site_kwp = Decimal(repr(site.kwp))  # the fleet's kWp has at most 4 decimals
    anchor = contract.contract_year_anchor
    outcomes: list[GuaranteeOutcome] = []
    lines: list[StatementLine] = []
    seen: set[Period] = set()
    for part in parts:
        year = contract_year(anchor, max(part.start_day, anchor))
        if year in seen:
            continue
        seen.add(year)
        covered = year.intersect(contract.start_date, contract.end_exclusive)
        if covered is None:
            continue
        last_day = covered.end_day - timedelta(days=1)
        prices = prices_on(plan, last_day)
        guarantee = prices.version.guarantee
        if guarantee is None:
            continue

        def in_year(start_day: date) -> bool:
            return year.contains_day(start_day)  # noqa: B023 - used at once

        so_far = sum((b.kwh for b in billed if in_year(b.start_day)), ZERO)
        so_far += sum(
            (c.delta_kwh or ZERO for c in corrections if in_year(c.start_day)),
            ZERO,
        )
        so_far += sum((p.kwh for p in parts if in_year(p.start_day)), ZERO)
        known_spans = {(b.start_day, b.end_day) for b in billed if in_year(b.start_day)}
        known_spans |= {(p.start_day, p.end_day) for p in parts if in_year(p.start_day)}
        known_days = sum((end - start).days for start, end in known_spans)
        outcome = guarantee_outcome(
            guarantee,
            kwp=site_kwp,
            year_start=year.start_day,
            year_end=year.end_day,
            covered_days=covered.days,
            yield_kwh=so_far,
            final=covered.end_day <= period.end_day,
            known_days=known_days,
        )
        outcomes.append(outcome)
        line = guarantee_line(outcome, prices)
        if line is not None:
            lines.append(line)
    return outcomes, lines


__all__ = [
    "BilledPart",
    "ContractSettlement",
    "EngineSettings",
    "PartResult",
    "PriceSpan",
    "SettlementError",
    "SettlementInputs",
    "SettlementResult",
    "code_version",
    "correction_periods",
    "part_boundaries",
    "prepare_sites",
    "readings_window",
    "registry_readings",
    "settle",
]
