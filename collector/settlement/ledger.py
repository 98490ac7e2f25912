"""Writing and reading the settlement ledger (tables in :mod:`collector.store.ledger_models`).

A run is recorded complete and issued in one transaction; there is one issued run per month.
Ledger rows are never updated or deleted: a flush that would do so raises
:class:`LedgerImmutableError`. Late readings are settled as correction rows of a later run
(:func:`billed_parts` sums them into what a contract's days have been billed so far).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, UOWTransaction

from collector.registry.fleet_file import Fleet
from collector.settlement.inputs import BilledPart
from collector.settlement.results import PartResult, SettlementResult
from collector.settlement.yields import wh_to_kwh
from collector.store.ledger_models import (
    LEDGER_MODELS,
    SettlementCounterRow,
    SettlementEstimateRow,
    SettlementLineRow,
    SettlementPartRow,
    SettlementRunRow,
    SettlementStatementRow,
    SettlementTariffRow,
)

COMPLETENESS_QUANTUM = Decimal("0.0001")


class LedgerError(ValueError):
    """The ledger cannot do what was asked; the message says why."""


class LedgerImmutableError(LedgerError):
    """Something tried to change or delete an issued ledger row."""


@event.listens_for(Session, "before_flush")
def _refuse_changes(session: Session, _ctx: UOWTransaction, _instances: Any) -> None:
    for obj in [*session.dirty, *session.deleted]:
        if isinstance(obj, LEDGER_MODELS) and (obj in session.deleted or session.is_modified(obj)):
            raise LedgerImmutableError(
                f"{type(obj).__tablename__} rows are issued and immutable; late data is "
                "settled as correction lines in the next run"
            )


def issued_periods(session: Session) -> list[str]:
    """Months with an issued run, oldest first."""
    return list(session.scalars(select(SettlementRunRow.period).order_by(SettlementRunRow.period)))


def run_of(session: Session, period: str) -> SettlementRunRow | None:
    """The issued run of a month, if any."""
    return session.scalars(
        select(SettlementRunRow).where(SettlementRunRow.period == period)
    ).first()


def billed_parts(session: Session, *, before: str | None = None) -> list[BilledPart]:
    """What every contract's days have been billed so far: billed parts plus corrections.

    With ``before`` (``YYYY-MM``), only runs of earlier months count: the history as it was
    when that month was settled.
    """
    runs = {r.run_id: r.period for r in session.scalars(select(SettlementRunRow))}
    if before is not None:
        runs = {run_id: period for run_id, period in runs.items() if period < before}
    parts = [p for p in session.scalars(select(SettlementPartRow)) if p.run_id in runs]
    deltas: dict[tuple[str, Any, Any], Decimal] = defaultdict(Decimal)
    for p in parts:
        if p.kind == "correction" and p.delta_kwh is not None:
            deltas[(p.contract_id, p.start_day, p.end_day)] += p.delta_kwh
    out = []
    for p in parts:
        if p.kind != "billed":
            continue
        out.append(
            BilledPart(
                contract_id=p.contract_id,
                period=runs[p.run_id],
                start_day=p.start_day,
                end_day=p.end_day,
                kwh=p.kwh + deltas.get((p.contract_id, p.start_day, p.end_day), Decimal(0)),
                unit_price_eur=p.unit_price_eur,
                vat_rate=p.vat_rate,
                tariff=p.tariff,
            )
        )
    return sorted(out, key=lambda b: (b.contract_id, b.start_day, b.end_day))


def _part_row(run_id: str, part: PartResult, kind: str, period: str) -> SettlementPartRow:
    return SettlementPartRow(
        run_id=run_id,
        contract_id=part.contract_id,
        kind=kind,
        start_day=part.start_day,
        end_day=part.end_day,
        period=period,
        measured_kwh=wh_to_kwh(part.measured_wh),
        estimated_kwh=wh_to_kwh(part.estimated_wh),
        completeness=Decimal(str(part.completeness)).quantize(COMPLETENESS_QUANTUM),
        kwh=part.kwh,
        delta_kwh=part.delta_kwh,
        tariff=part.tariff,
        unit_price_eur=part.unit_price_eur,
        vat_rate=part.vat_rate,
    )


def _wh(value: float) -> Decimal:
    return Decimal(f"{value:.3f}")


def record_run(
    session: Session,
    result: SettlementResult,
    *,
    fleet: Fleet,
    correct_periods: Iterable[str],
    readings_source: str,
    issued_at: datetime,
    inputs_file: str | None = None,
) -> str:
    """Write an issued run with everything it used; returns its run id.

    The caller commits. Refuses a month that already has an issued run.
    """
    existing = run_of(session, result.period)
    if existing is not None:
        raise LedgerError(
            f"{result.period} was issued as run {existing.run_id} on "
            f"{existing.issued_at.isoformat()}; issued runs are never rewritten. Late readings "
            "are corrected in the next month's run."
        )
    run_id = f"{result.period}.1"
    excl = sum((c.totals[0] for c in result.contracts), Decimal(0))
    vat = sum((c.totals[1] for c in result.contracts), Decimal(0))
    session.add(
        SettlementRunRow(
            run_id=run_id,
            period=result.period,
            status="issued",
            issued_at=issued_at,
            code_version=result.code_version,
            inputs_sha256=result.inputs_digest,
            inputs_file=inputs_file,
            readings_source=readings_source,
            settings_json=json.dumps(result.settings.to_json(), sort_keys=True),
            correct_periods=",".join(sorted(correct_periods)),
            contracts=len(result.contracts),
            total_excl_vat_eur=excl,
            vat_eur=vat,
        )
    )
    session.flush()
    tariffs: set[str] = set()
    for c in result.contracts:
        c_excl, c_vat = c.totals
        session.add(
            SettlementStatementRow(
                run_id=run_id,
                contract_id=c.contract_id,
                member_id=c.member_id,
                site_id=c.site_id,
                start_day=c.start_day,
                end_day=c.end_day,
                measured_kwh=wh_to_kwh(c.measured_wh),
                estimated_kwh=wh_to_kwh(c.estimated_wh),
                completeness=Decimal(str(c.completeness)).quantize(COMPLETENESS_QUANTUM),
                total_excl_vat_eur=c_excl,
                vat_eur=c_vat,
                guarantees_json=json.dumps([g.to_json() for g in c.guarantees], sort_keys=True),
                anomalies_json=json.dumps([a.to_json() for a in c.anomalies], sort_keys=True),
            )
        )
    session.flush()
    for c in result.contracts:
        for no, line in enumerate(c.lines, start=1):
            tariffs.add(line.tariff)
            session.add(
                SettlementLineRow(
                    run_id=run_id,
                    contract_id=c.contract_id,
                    line_no=no,
                    kind=line.kind.value,
                    description=line.description,
                    quantity=line.quantity,
                    unit=line.unit,
                    unit_price_eur=line.unit_price_eur,
                    amount_eur=line.amount_eur,
                    vat_rate=line.vat_rate,
                    vat_eur=line.vat_eur,
                    tariff=line.tariff,
                    period_start=line.period_start,
                    period_end=line.period_end,
                )
            )
        counter_seq = estimate_seq = 0
        for kind, parts in (("billed", c.parts), ("correction", c.corrections)):
            for part in parts:
                tariffs.add(part.tariff)
                period = part.corrects if part.corrects is not None else result.period
                session.add(_part_row(run_id, part, kind, period))
                for use in part.counters:
                    counter_seq += 1
                    session.add(
                        SettlementCounterRow(
                            run_id=run_id,
                            contract_id=c.contract_id,
                            seq=counter_seq,
                            device_id=use.device_id,
                            at=use.at,
                            before_ts=use.before_ts,
                            before_wh=_wh(use.before_wh),
                            after_ts=use.after_ts,
                            after_wh=_wh(use.after_wh),
                            counter_wh=_wh(use.counter_wh),
                        )
                    )
                for est in part.estimates:
                    estimate_seq += 1
                    session.add(
                        SettlementEstimateRow(
                            run_id=run_id,
                            contract_id=c.contract_id,
                            seq=estimate_seq,
                            kind=est.kind,
                            device_id=est.device_id,
                            start=est.start,
                            end=est.end,
                            wh=_wh(est.wh),
                            basis=est.basis,
                        )
                    )
    plans = {plan.plan_id: plan for plan in fleet.tariff_plans}
    for label in sorted(tariffs):
        plan_id, _, valid_from = label.partition("@")
        plan = plans.get(plan_id)
        version = None
        if plan is not None:
            version = next(
                (v for v in plan.versions if v.valid_from.isoformat() == valid_from), None
            )
        session.add(
            SettlementTariffRow(
                run_id=run_id,
                tariff=label,
                version_json="{}" if version is None else version.model_dump_json(),
            )
        )
    session.flush()
    return run_id


def ledger_snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every ledger row as plain values, sorted by primary key (to compare ledgers)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for model in LEDGER_MODELS:
        columns = [a.key for a in model.__mapper__.column_attrs]
        pk = [str(c.key) for c in model.__mapper__.primary_key]
        rows = session.scalars(select(model).order_by(*(getattr(model, k) for k in pk))).all()
        out[model.__tablename__] = [tuple(getattr(r, k) for k in columns) for r in rows]
    return out
