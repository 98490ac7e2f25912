"""Read the registry in the relational store back as a fleet.

:func:`read_fleet` rebuilds a :class:`~collector.registry.fleet_file.Fleet` from the store,
every section sorted by id, so the settlement engine works the same from a file or from the
database; :func:`canonical` sorts a fleet from a file the same way. Loading a fleet into the
store: :mod:`collector.registry.store_sync`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.registry.fleet_file import (
    Address,
    Contract,
    Cooperative,
    CounterReset,
    Device,
    Fleet,
    Member,
    Replacement,
    Site,
    TariffPlan,
)
from collector.registry.tariff_plans import Guarantee, TariffVersion
from collector.store.models import (
    ContractRow,
    CooperativeRow,
    CounterResetRow,
    DeviceReplacementRow,
    DeviceRow,
    MemberRow,
    SiteRow,
    TariffPlanRow,
    TariffVersionRow,
)

Row = dict[str, Any]


class RegistryEmptyError(LookupError):
    """The store holds no registry yet (run ``zonnewijk registry load FILE``)."""


def _address(row: Any) -> Address:
    return Address(
        street=row.street, postal_code=row.postal_code, city=row.city, country=row.country
    )


def read_fleet(session: Session) -> Fleet:
    """The registry in the store as a :class:`Fleet`, every section sorted by id."""
    coop = session.get(CooperativeRow, 1)
    if coop is None:
        raise RegistryEmptyError("the registry is empty: run `zonnewijk registry load FILE` first")
    versions: dict[str, list[TariffVersion]] = {}
    for v in session.scalars(
        select(TariffVersionRow).order_by(TariffVersionRow.plan_id, TariffVersionRow.valid_from)
    ):
        guarantee = None
        if v.compensation_eur_per_kwh is not None:
            guarantee = Guarantee(
                kwh_per_year=v.guarantee_kwh_per_year,
                kwh_per_kwp_per_year=v.guarantee_kwh_per_kwp_per_year,
                compensation_eur_per_kwh=v.compensation_eur_per_kwh,
            )
        versions.setdefault(v.plan_id, []).append(
            TariffVersion(
                valid_from=v.valid_from,
                monthly_fee_eur=v.monthly_fee_eur,
                price_eur_per_kwh=v.price_eur_per_kwh,
                guarantee=guarantee,
                indexation_per_year=v.indexation_per_year,
                vat_rate=v.vat_rate,
                note=v.note,
            )
        )
    plans = [
        TariffPlan(plan_id=p.plan_id, name=p.name, versions=versions.get(p.plan_id, []))
        for p in session.scalars(select(TariffPlanRow).order_by(TariffPlanRow.plan_id))
    ]
    replacements = {r.device_id: r for r in session.scalars(select(DeviceReplacementRow))}
    resets: dict[str, list[CounterReset]] = {}
    for r in session.scalars(
        select(CounterResetRow).order_by(CounterResetRow.device_id, CounterResetRow.at)
    ):
        resets.setdefault(r.device_id, []).append(
            CounterReset(
                at=r.at,
                last_energy_wh=r.last_energy_wh,
                first_energy_wh=r.first_energy_wh,
                reason=r.reason,
            )
        )
    devices = []
    for d in session.scalars(select(DeviceRow).order_by(DeviceRow.device_id)):
        rep = replacements.get(d.device_id)
        devices.append(
            Device(
                device_id=d.device_id,
                site_id=d.site_id,
                gateway_id=d.gateway_id,
                family=d.family,  # validated by the model
                model=d.model,
                ac_rating_w=d.ac_rating_w,
                mppt_count=d.mppt_count,
                kwp=d.kwp,
                installed_on=d.installed_on,
                removed_on=d.removed_on,
                replaced_by=d.replaced_by,
                replaces=None
                if rep is None
                else Replacement(
                    device_id=rep.replaced_device_id,
                    at=rep.at,
                    old_last_energy_wh=rep.old_last_energy_wh,
                    new_first_energy_wh=rep.new_first_energy_wh,
                    reason=rep.reason,
                ),
                counter_resets=tuple(resets.get(d.device_id, ())),
            )
        )
    return Fleet(
        cooperative=Cooperative(
            name=coop.name,
            address=_address(coop),
            email=coop.email,
            iban=coop.iban,
            creditor_id=coop.creditor_id,
        ),
        tariff_plans=tuple(plans),
        members=tuple(
            Member(
                member_id=m.member_id,
                name=m.name,
                address=_address(m),
                email=m.email,
                language=m.language,  # validated by the model
                iban=m.iban,
                bic=m.bic,
                mandate_id=m.mandate_id,
                mandate_date=m.mandate_date,
            )
            for m in session.scalars(select(MemberRow).order_by(MemberRow.member_id))
        ),
        sites=tuple(
            Site(
                site_id=s.site_id,
                address=_address(s),
                lat=s.lat,
                lon=s.lon,
                kwp=s.kwp,
                tilt_deg=s.tilt_deg,
                azimuth_deg=s.azimuth_deg,
                gateway_id=s.gateway_id,
            )
            for s in session.scalars(select(SiteRow).order_by(SiteRow.site_id))
        ),
        devices=tuple(devices),
        contracts=tuple(
            Contract(
                contract_id=c.contract_id,
                member_id=c.member_id,
                site_id=c.site_id,
                start_date=c.start_date,
                end_date=c.end_date,
                tariff_plan_id=c.tariff_plan_id,
                year_anchor=c.year_anchor,
            )
            for c in session.scalars(select(ContractRow).order_by(ContractRow.contract_id))
        ),
    )


def canonical(fleet: Fleet) -> Fleet:
    """The same fleet with every section sorted by id (how :func:`read_fleet` returns it)."""
    return fleet.model_copy(
        update={
            "tariff_plans": tuple(sorted(fleet.tariff_plans, key=lambda p: p.plan_id)),
            "members": tuple(sorted(fleet.members, key=lambda m: m.member_id)),
            "sites": tuple(sorted(fleet.sites, key=lambda s: s.site_id)),
            "devices": tuple(sorted(fleet.devices, key=lambda d: d.device_id)),
            "contracts": tuple(sorted(fleet.contracts, key=lambda c: c.contract_id)),
        }
    )
