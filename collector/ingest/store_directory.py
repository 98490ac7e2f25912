"""The registry (:mod:`collector.store`) as the collector's :class:`DeviceDirectory`.

A device belongs to a gateway when its own ``gateway_id`` says so, or, when that is empty, when
its site's gateway does. Removed devices stay known: their late readings are still stored.
Wrap it in :class:`collector.ingest.directory.CachedDirectory` so the database is asked once a minute
per device, not once per reading. :class:`StoreConsents` answers for members' meters (wrap it in
:class:`collector.ingest.consent.CachedConsents`).
"""

from __future__ import annotations

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from collector.ingest.directory import ConsentRecord, DeviceRecord
from collector.store.consent_models import MeterConsentRow
from collector.store.models import DeviceRow, SiteRow


class StoreDirectory:
    """Looks gateways and devices up in the relational registry."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def gateway_known(self, gateway_id: str) -> bool:
        with Session(self.engine) as session:
            site = session.scalar(
                select(SiteRow.site_id).where(SiteRow.gateway_id == gateway_id).limit(1)
            )
            if site is not None:
                return True
            device = session.scalar(
                select(DeviceRow.device_id).where(DeviceRow.gateway_id == gateway_id).limit(1)
            )
            return device is not None

    def device(self, gateway_id: str, device_id: str) -> DeviceRecord | None:
        with Session(self.engine) as session:
            row = session.execute(
                select(DeviceRow.device_id, DeviceRow.ac_rating_w, DeviceRow.installed_on)
                .join(SiteRow, SiteRow.site_id == DeviceRow.site_id)
                .where(DeviceRow.device_id == device_id)
                .where(
                    or_(
                        DeviceRow.gateway_id == gateway_id,
                        (DeviceRow.gateway_id.is_(None)) & (SiteRow.gateway_id == gateway_id),
                    )
                )
            ).first()
        if row is None:
            return None
        rating = float(row.ac_rating_w) if row.ac_rating_w else None
        return DeviceRecord(gateway_id, device_id, rating, installed_on=row.installed_on)


class StoreConsents:
    """Looks members' meter consents up in the relational store (``meter_consents``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def meter_consent(self, gateway_id: str, device_id: str) -> ConsentRecord | None:
        """The newest consent for the meter (an active one before a withdrawn one)."""
        with Session(self.engine) as session:
            row = session.scalars(
                select(MeterConsentRow)
                .where(MeterConsentRow.gateway_id == gateway_id)
                .where(MeterConsentRow.device_id == device_id)
                .order_by(
                    MeterConsentRow.withdrawn_at.is_not(None),
                    MeterConsentRow.given_at.desc(),
                )
                .limit(1)
            ).first()
        if row is None:
            return None
        return ConsentRecord(
            member_id=row.member_id,
            given_at=row.given_at,
            withdrawn_at=row.withdrawn_at,
            electricity=row.electricity,
            gas=row.gas,
            granularity_s=row.granularity_s,
        )
