"""Rows the portal reads from other areas' tables: alerts and an issued settlement run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from collector.store.alert_models import AlertRow
from collector.store.ledger_models import (
    SettlementLineRow,
    SettlementRunRow,
    SettlementStatementRow,
)

MESSAGES = {
    "fault_state": "{device} reports inverter state fault",
    "device_offline": "{device} sent no readings for 45 minutes",
}


def add_alert(sessions: sessionmaker[Session], device_id: str, kind: str = "fault_state") -> int:
    now = datetime.now(UTC)
    with sessions.begin() as session:
        row = AlertRow(
            kind=kind,
            device_id=device_id,
            gateway_id="gw-" + device_id.split("-")[0],
            severity=30,
            status="open",
            open_key=f"{device_id}|{kind}",
            message=MESSAGES.get(kind, kind).format(device=device_id),
            evidence={"state": "fault"},
            condition_since=now - timedelta(hours=2),
            last_seen=now,
            opened_at=now - timedelta(hours=1, minutes=55),
        )
        session.add(row)
        session.flush()
        return row.id


def add_run(
    sessions: sessionmaker[Session], period: str, statements: list[tuple[str, str, str]]
) -> str:
    """An issued run with one statement per (contract, member, site) and one line each."""
    run_id = f"{period}.1"
    year, month = (int(x) for x in period.split("-"))
    first = date(year, month, 1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    with sessions.begin() as session:
        session.add(
            SettlementRunRow(
                run_id=run_id,
                period=period,
                status="issued",
                issued_at=datetime.now(UTC),
                code_version="test",
                inputs_sha256="0" * 64,
                inputs_file=None,
                readings_source="test",
                settings_json="{}",
                correct_periods="",
                contracts=len(statements),
                total_excl_vat_eur=Decimal("12.50") * len(statements),
                vat_eur=Decimal("2.63") * len(statements),
            )
        )
        session.flush()
        for contract_id, member_id, site_id in statements:
            session.add(
                SettlementStatementRow(
                    run_id=run_id,
                    contract_id=contract_id,
                    member_id=member_id,
                    site_id=site_id,
                    start_day=first,
                    end_day=last,
                    measured_kwh=Decimal("88.000"),
                    estimated_kwh=Decimal("0"),
                    completeness=Decimal("1"),
                    total_excl_vat_eur=Decimal("12.50"),
                    vat_eur=Decimal("2.63"),
                    guarantees_json="[]",
                    anomalies_json="[]",
                )
            )
            session.flush()
            for line_no, (kind, text, qty, unit, price, amount, vat) in enumerate(
                [
                    ("fee", "Vaste huur", "1", "month", "4.58", "4.58", "0.97"),
                    ("energy", f"Opbrengst {period}", "88.000", "kWh", "0.0900", "7.92", "1.66"),
                ],
                start=1,
            ):
                session.add(
                    SettlementLineRow(
                        run_id=run_id,
                        contract_id=contract_id,
                        line_no=line_no,
                        kind=kind,
                        description=f"{text} ({contract_id})",
                        quantity=Decimal(qty),
                        unit=unit,
                        unit_price_eur=Decimal(price),
                        amount_eur=Decimal(amount),
                        vat_rate=Decimal("0.21"),
                        vat_eur=Decimal(vat),
                        tariff="huur-basis@2026-01-01",
                        period_start=first,
                        period_end=last,
                    )
                )
    return run_id
