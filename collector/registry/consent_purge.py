"""Deleting a meter's stored readings after its member withdrew consent (issue 17).

``zonnewijk consent purge`` (run hourly by cron or the systemd timer, and by the commands
that withdraw) deletes, for every withdrawn consent not yet purged, all points of the meter
from InfluxDB - ``grid_meter``, ``grid_phase`` and ``gas_meter``, in every retention policy
(an InfluxQL ``DELETE`` applies to all of a database's retention policies) - then checks
that none is left and records ``deleted_at`` and a ``deleted`` event. The consent is
withdrawn ``DELETE_WITHIN`` (24 h) before ``delete_by``, and the purge runs every hour, so the
data is gone within a day of the withdrawal; a purge that finds points left after deleting
raises, and the consent stays due. The home's own daily balances
(``household_energy_daily``, tagged by gateway) go with the meter's readings.

The same command keeps the retention of raw meter readings (:func:`purge_expired_raw`):
points of ``grid_meter``, ``grid_phase`` and ``gas_meter`` older than
:data:`RAW_RETENTION_DAYS` are deleted for every meter, while the daily balances stay until
the member withdraws.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from collector.registry.consents import deletion_due
from collector.store.consent_models import ConsentEventRow
from collector.timeseries.influx import InfluxClient, quote_ident, quote_string
from collector.timeseries.measurements import (
    GAS_MEASUREMENT,
    HOUSEHOLD_DAILY_MEASUREMENT,
    METER_MEASUREMENT,
    METER_PHASE_MEASUREMENT,
)

__all__ = [
    "METER_MEASUREMENTS",
    "RAW_RETENTION_DAYS",
    "PurgeResult",
    "count_meter_points",
    "purge_expired_raw",
    "purge_withdrawn",
]

log = logging.getLogger(__name__)

#: Every measurement that holds a member's meter readings.
METER_MEASUREMENTS = (METER_MEASUREMENT, METER_PHASE_MEASUREMENT, GAS_MEASUREMENT)
#: How long raw meter readings are kept [days]: thirteen months, so a month can be compared
#: with the same month a year before; the daily balances are kept longer.
RAW_RETENTION_DAYS = 396


@dataclass(frozen=True)
class PurgeResult:
    consent_id: int
    member_id: str
    device_id: str
    points_deleted: int
    overdue: bool


def _where(gateway_id: str, device_id: str) -> str:
    return f'"gateway" = {quote_string(gateway_id)} AND "device" = {quote_string(device_id)}'


def _count(influx: InfluxClient, rp: str, measurement: str, where: str) -> int:
    rows = influx.query_records(
        f"SELECT count(*) FROM {quote_ident(rp)}.{quote_ident(measurement)} WHERE {where}"
    )
    return sum(
        max((int(v) for k, v in row.items() if k.startswith("count_")), default=0) for row in rows
    )


def count_meter_points(influx: InfluxClient, gateway_id: str, device_id: str) -> int:
    """Points of the meter in every meter measurement and every retention policy, and the
    home's daily balances."""
    policies = [r["name"] for r in influx.query_records("SHOW RETENTION POLICIES")]
    home = f'"gateway" = {quote_string(gateway_id)}'
    return sum(
        sum(_count(influx, rp, m, _where(gateway_id, device_id)) for m in METER_MEASUREMENTS)
        + _count(influx, rp, HOUSEHOLD_DAILY_MEASUREMENT, home)
        for rp in policies
    )


def purge_expired_raw(
    influx: InfluxClient, *, now: datetime, retention_days: int = RAW_RETENTION_DAYS
) -> datetime:
    """Delete every meter's raw readings older than ``retention_days`` [days]; returns the
    cut-off [UTC]. The daily balances are not touched."""
    cutoff = now - timedelta(days=retention_days)
    stamp = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    for measurement in METER_MEASUREMENTS:
        influx.query(f"DELETE FROM {quote_ident(measurement)} WHERE time < '{stamp}'")
    return cutoff


def purge_withdrawn(
    session: Session, influx: InfluxClient, *, now: datetime, actor: str = "consent purge"
) -> list[PurgeResult]:
    """Delete the stored readings of every withdrawn consent not purged yet.

    Commits after each meter, so a failure leaves the ones done recorded.
    """
    results: list[PurgeResult] = []
    for consent in deletion_due(session):
        before = count_meter_points(influx, consent.gateway_id, consent.device_id)
        for measurement in METER_MEASUREMENTS:
            influx.query(
                f"DELETE FROM {quote_ident(measurement)} "
                f"WHERE {_where(consent.gateway_id, consent.device_id)}"
            )
        influx.query(
            f"DELETE FROM {quote_ident(HOUSEHOLD_DAILY_MEASUREMENT)} "
            f'WHERE "gateway" = {quote_string(consent.gateway_id)}'
        )
        left = count_meter_points(influx, consent.gateway_id, consent.device_id)
        if left:
            raise RuntimeError(
                f"{left} points of meter {consent.device_id} are still in InfluxDB after the "
                "delete; the consent stays due for deletion"
            )
        overdue = consent.delete_by is not None and now > consent.delete_by
        consent.deleted_at = now
        session.add(
            ConsentEventRow(
                consent_id=consent.consent_id,
                member_id=consent.member_id,
                at=now,
                kind="deleted",
                actor=actor,
                detail=f"{before} stored points of meter {consent.device_id} deleted"
                + (" (after delete_by)" if overdue else ""),
            )
        )
        session.commit()
        log.info(
            "deleted %d points of meter %s (member %s, consent %d withdrawn %s)",
            before,
            consent.device_id,
            consent.member_id,
            consent.consent_id,
            consent.withdrawn_at,
        )
        results.append(
            PurgeResult(consent.consent_id, consent.member_id, consent.device_id, before, overdue)
        )
    return results
