"""An operator's look at one member's meter data, always recorded (issue 17, privacy).

Operators see fleet aggregates of at least five homes (Grafana's self-consumption board);
a member's own figures only when a support case needs them. :func:`inspect_member` is that
one door: it refuses without a stated purpose, writes a ``personal_data_access`` row (who,
whose, what, why, when) and commits it *before* reading anything, then returns the member's
daily balances (``household_energy_daily``) for the meters they consented to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.store.consent_models import MeterConsentRow, PersonalDataAccessRow
from collector.timeseries.influx import InfluxClient, quote_ident, quote_string
from collector.timeseries.measurements import HOUSEHOLD_DAILY_MEASUREMENT

__all__ = ["DayBalance", "PurposeMissingError", "inspect_member"]

#: The shortest purpose accepted: a reason a person can check later, not "x".
MIN_PURPOSE_CHARS = 10


class PurposeMissingError(ValueError):
    """An operator asked for a member's data without saying why."""


@dataclass(frozen=True)
class DayBalance:
    """One home's balance of one local day [kWh]."""

    day_start: datetime
    gateway_id: str
    production_kwh: float
    consumption_kwh: float
    import_kwh: float
    export_kwh: float
    self_consumed_kwh: float


def inspect_member(
    session: Session,
    influx: InfluxClient,
    *,
    member_id: str,
    actor: str,
    purpose: str,
    days: int,
    now: datetime,
) -> list[DayBalance]:
    """Record the access, then the member's daily balances of the last ``days`` days."""
    if len(purpose.strip()) < MIN_PURPOSE_CHARS:
        raise PurposeMissingError(
            f"say why you need member {member_id}'s meter data (--purpose, at least "
            f"{MIN_PURPOSE_CHARS} characters, e.g. the support case)"
        )
    session.add(
        PersonalDataAccessRow(
            at=now,
            actor=actor,
            role="operator",
            member_id=member_id,
            what=f"household_energy_daily, last {days} days",
            purpose=purpose.strip(),
        )
    )
    session.commit()
    gateways = sorted(
        set(
            session.scalars(
                select(MeterConsentRow.gateway_id).where(
                    MeterConsentRow.member_id == member_id, MeterConsentRow.deleted_at.is_(None)
                )
            )
        )
    )
    if not gateways:
        return []
    since = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    where = " OR ".join(f'"gateway" = {quote_string(g)}' for g in gateways)
    rows = influx.query_records(
        f"SELECT * FROM {quote_ident(HOUSEHOLD_DAILY_MEASUREMENT)} "
        f"WHERE time >= '{since}' AND ({where})",
        epoch=None,
    )
    return [
        DayBalance(
            day_start=datetime.fromisoformat(str(r["time"]).replace("Z", "+00:00")),
            gateway_id=str(r["gateway"]),
            production_kwh=float(r.get("production_kwh") or 0.0),
            consumption_kwh=float(r.get("consumption_kwh") or 0.0),
            import_kwh=float(r.get("import_kwh") or 0.0),
            export_kwh=float(r.get("export_kwh") or 0.0),
            self_consumed_kwh=float(r.get("self_consumed_kwh") or 0.0),
        )
        for r in rows
    ]
