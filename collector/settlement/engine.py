"""Settle one month: contracts × measured yields × tariffs → statement lines. Pure, no I/O.

:func:`settle` takes everything a settlement depends on in one :class:`SettlementInputs`
(the period, the fleet registry, every device's counter readings, and what earlier issued
runs billed) and returns a :class:`SettlementResult`. The same inputs always give the same
result, to the cent and to the byte of its JSON, whether they came from InfluxDB and the
ledger or from an exported readings file. The inputs are defined in
:mod:`collector.settlement.inputs`, the result types in :mod:`collector.settlement.results`.

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

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal

from collector import __version__
from collector.registry.fleet_file import Contract, Device, Fleet
from collector.registry.tariff_plans import ZERO
from collector.settlement.counter_segments import (
    CounterReadings,
    Installation,
    PreparedSite,
    prepare_site,
)
from collector.settlement.fleet_profile import (
    FleetProfile,
    build_fleet_profile,
)
from collector.settlement.inputs import (
    BilledPart,
    EngineSettings,
    SettlementInputs,
    contract_year_cuts,
    readings_window,
)
from collector.settlement.periods import (
    Period,
    contract_year,
    days_in_month,
    local_midnight_utc,
    split_at_days,
)
from collector.settlement.results import ContractSettlement, PartResult, SettlementResult
from collector.settlement.tariffs import (
    GuaranteeOutcome,
    StatementLine,
    energy_correction_line,
    energy_line,
    guarantee_line,
    guarantee_outcome,
    monthly_fee_line,
    price_spans,
    prices_on,
    round_kwh,
)
from collector.settlement.yields import counters_at, site_yield, wh_to_kwh

#: Bumped whenever a change to the engine can change a result.
ENGINE_VERSION = "1"
#: Readings are needed this far around the settled days (gaps across a boundary) [days].
WINDOW_MARGIN_DAYS = 2
_ONE_MS = timedelta(milliseconds=1)


def code_version() -> str:
    """The code version recorded with every run."""
    return f"zonnewijk {__version__}, settlement engine {ENGINE_VERSION}"


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
        merged[device.device_id] = CounterReadings.from_arrays(
            device.device_id, ts, wh, imported=measured.imported if measured is not None else ()
        )
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


# --------------------------------------------------------------------------- settling


class SettlementError(ValueError):
    """The inputs cannot be settled; the message says what to fix."""


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
        year_cuts = contract_year_cuts(contract, days)
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
