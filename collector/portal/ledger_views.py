"""Statements and settlement runs as the portal shows them (read-only views of the ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.store.ledger_models import (
    SettlementLineRow,
    SettlementRunRow,
    SettlementStatementRow,
)
from collector.store.models import ContractRow, DeviceRow, MemberRow
from collector.timeseries.influx import InfluxClient, quote_string


def statements_of(session: Session, member_id: str | None) -> list[dict[str, Any]]:
    """Statements (newest first) of one member, or of everyone when ``member_id`` is None."""
    q = (
        select(SettlementStatementRow, SettlementRunRow)
        .join(SettlementRunRow, SettlementRunRow.run_id == SettlementStatementRow.run_id)
        .order_by(SettlementRunRow.period.desc(), SettlementStatementRow.contract_id)
    )
    if member_id is not None:
        q = q.where(SettlementStatementRow.member_id == member_id)
    return [_statement_dict(s, r) for s, r in session.execute(q.limit(2000)).all()]


def _statement_dict(s: SettlementStatementRow, r: SettlementRunRow) -> dict[str, Any]:
    return {
        "run_id": s.run_id,
        "period": r.period,
        "contract_id": s.contract_id,
        "member_id": s.member_id,
        "site_id": s.site_id,
        "measured_kwh": s.measured_kwh,
        "estimated_kwh": s.estimated_kwh,
        "total_excl_vat_eur": s.total_excl_vat_eur,
        "vat_eur": s.vat_eur,
        "total_incl_vat_eur": s.total_excl_vat_eur + s.vat_eur,
        "issued_at": r.issued_at,
    }


def statement_detail(
    session: Session, run_id: str, contract_id: str, member_id: str | None
) -> dict[str, Any] | None:
    """One statement with its lines; None when absent or (for a member) not theirs."""
    s = session.get(SettlementStatementRow, (run_id, contract_id))
    if s is None or (member_id is not None and s.member_id != member_id):
        return None
    run = session.get(SettlementRunRow, run_id)
    assert run is not None
    lines = session.scalars(
        select(SettlementLineRow)
        .where(SettlementLineRow.run_id == run_id, SettlementLineRow.contract_id == contract_id)
        .order_by(SettlementLineRow.line_no)
    ).all()
    member = session.get(MemberRow, s.member_id)
    out = _statement_dict(s, run)
    out["member_name"] = member.name if member else s.member_id
    out["lines"] = [
        {
            "line_no": ln.line_no,
            "kind": ln.kind,
            "description": ln.description,
            "quantity": ln.quantity,
            "unit": ln.unit,
            "unit_price_eur": ln.unit_price_eur,
            "amount_eur": ln.amount_eur,
            "vat_rate": ln.vat_rate,
            "vat_eur": ln.vat_eur,
        }
        for ln in lines
    ]
    return out


def runs(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(SettlementRunRow).order_by(SettlementRunRow.period.desc()))
    return [
        {
            "run_id": r.run_id,
            "period": r.period,
            "status": r.status,
            "issued_at": r.issued_at,
            "contracts": r.contracts,
            "total_excl_vat_eur": r.total_excl_vat_eur,
            "vat_eur": r.vat_eur,
            "code_version": r.code_version,
        }
        for r in rows
    ]


@dataclass(frozen=True)
class FleetDevice:
    device_id: str
    site_id: str
    gateway_id: str | None
    member_name: str | None
    kwp: Decimal
    last_seen: datetime | None
    power_w: float | None
    state: str | None
    open_alerts: int


def fleet_status(
    session: Session, influx: InfluxClient, open_alerts: dict[str, int], now: datetime
) -> list[FleetDevice]:
    """Every installed device with its last reading of the past week and open alerts."""
    today = now.date()
    devices = session.scalars(
        select(DeviceRow)
        .where((DeviceRow.removed_on.is_(None)) | (DeviceRow.removed_on >= today))
        .order_by(DeviceRow.site_id, DeviceRow.device_id)
    ).all()
    members = dict(
        session.execute(
            select(ContractRow.site_id, MemberRow.name)
            .join(MemberRow, MemberRow.member_id == ContractRow.member_id)
            .where((ContractRow.end_date.is_(None)) | (ContractRow.end_date >= today))
        ).all()
    )
    since = quote_string((now - timedelta(days=7)).astimezone(UTC).isoformat())
    results = influx.query(
        f'SELECT last("ac_power_w") AS "p" FROM "inverter" WHERE time >= {since} GROUP BY "device";'
        f'SELECT last("state") AS "s" FROM "inverter" WHERE time >= {since} GROUP BY "device"'
    )
    power: dict[str, tuple[datetime, float]] = {}
    state: dict[str, str] = {}
    for series in results[0]:
        for t, p in series.values:
            power[series.tags.get("device", "")] = (
                datetime.fromtimestamp(int(t) / 1000, tz=UTC),
                float(p),
            )
    for series in results[1] if len(results) > 1 else []:
        for _t, s in series.values:
            state[series.tags.get("device", "")] = str(s)
    return [
        FleetDevice(
            device_id=d.device_id,
            site_id=d.site_id,
            gateway_id=d.gateway_id,
            member_name=members.get(d.site_id),
            kwp=d.kwp,
            last_seen=power[d.device_id][0] if d.device_id in power else None,
            power_w=power[d.device_id][1] if d.device_id in power else None,
            state=state.get(d.device_id),
            open_alerts=open_alerts.get(d.device_id, 0),
        )
        for d in devices
    ]


def member_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(MemberRow)) or 0)
