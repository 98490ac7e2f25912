"""Load a fleet into the relational store idempotently, with a change history.

:func:`sync_fleet` compares each registry table with the fleet row by row (natural keys) and
inserts, updates and (with ``prune=True``) deletes only what differs. Loading the same fleet
twice writes nothing the second time. Every change is recorded in ``registry_changes`` under
one ``registry_loads`` row: an insert with the new row, an update per changed field with its
old and new value, a delete with the old row. Rows that settled statements refer to cannot be
deleted (foreign keys); end a contract with ``end_date`` instead.

Reading the store back as a fleet: :mod:`collector.registry.store_read`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collector.registry.fleet_file import (
    Address,
    Contract,
    Device,
    Fleet,
    Member,
    Site,
)
from collector.store.models import (
    Base,
    ContractRow,
    CooperativeRow,
    CounterResetRow,
    DeviceReplacementRow,
    DeviceRow,
    MemberRow,
    RegistryChangeRow,
    RegistryLoadRow,
    SiteRow,
    TariffPlanRow,
    TariffVersionRow,
)

Row = dict[str, Any]


class RegistryLoadError(RuntimeError):
    """The store refused a change; the message says which row and what to do."""


@dataclass
class Change:
    """One recorded change (see :class:`collector.store.models.RegistryChangeRow`)."""

    entity: str
    entity_key: str
    action: str
    field: str | None = None
    old_value: str | None = None
    new_value: str | None = None


@dataclass
class LoadReport:
    """What a load did."""

    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    #: Rows in the store but not in the fleet, kept because ``prune`` was off.
    absent: dict[str, list[str]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    load_id: int | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def totals(self) -> tuple[int, int, int]:
        return (
            sum(self.inserted.values()),
            sum(self.updated.values()),
            sum(self.deleted.values()),
        )

    def summary(self) -> str:
        ins, upd, dele = self.totals()
        if not self.changed:
            text = "registry unchanged"
        else:
            text = f"registry load {self.load_id}: {ins} inserted, {upd} updated, {dele} deleted"
        kept = sum(len(v) for v in self.absent.values())
        if kept:
            detail = ", ".join(f"{k}: {len(v)}" for k, v in self.absent.items() if v)
            text += (
                f"; {kept} row(s) in the store but not in the file kept ({detail}; --prune deletes)"
            )
        return text


@dataclass(frozen=True)
class _Entity:
    name: str
    model: type[Base]
    key: tuple[str, ...]
    rows: Callable[[Fleet], list[Row]]


def _addr(address: Address) -> Row:
    return {
        "street": address.street,
        "postal_code": address.postal_code,
        "city": address.city,
        "country": address.country,
    }


def _cooperative_rows(fleet: Fleet) -> list[Row]:
    c = fleet.cooperative
    return [
        {
            "id": 1,
            "name": c.name,
            **_addr(c.address),
            "email": c.email,
            "iban": c.iban,
            "creditor_id": c.creditor_id,
        }
    ]


def member_row(m: Member) -> Row:
    return {
        "member_id": m.member_id,
        "name": m.name,
        **_addr(m.address),
        "email": m.email,
        "language": m.language,
        "iban": m.iban,
        "bic": m.bic,
        "mandate_id": m.mandate_id,
        "mandate_date": m.mandate_date,
    }


def _site_row(s: Site) -> Row:
    return {
        "site_id": s.site_id,
        **_addr(s.address),
        "lat": s.lat,
        "lon": s.lon,
        "kwp": s.kwp,
        "tilt_deg": s.tilt_deg,
        "azimuth_deg": s.azimuth_deg,
        "gateway_id": s.gateway_id,
    }


def _device_row(d: Device) -> Row:
    return {
        "device_id": d.device_id,
        "site_id": d.site_id,
        "gateway_id": d.gateway_id,
        "family": d.family,
        "model": d.model,
        "ac_rating_w": d.ac_rating_w,
        "mppt_count": d.mppt_count,
        "kwp": d.kwp,
        "installed_on": d.installed_on,
        "removed_on": d.removed_on,
        "replaced_by": d.replaced_by,
    }


def _replacement_rows(fleet: Fleet) -> list[Row]:
    return [
        {
            "device_id": d.device_id,
            "replaced_device_id": d.replaces.device_id,
            "at": d.replaces.at,
            "old_last_energy_wh": d.replaces.old_last_energy_wh,
            "new_first_energy_wh": d.replaces.new_first_energy_wh,
            "reason": d.replaces.reason,
        }
        for d in fleet.devices
        if d.replaces is not None
    ]


def _reset_rows(fleet: Fleet) -> list[Row]:
    return [
        {
            "device_id": d.device_id,
            "at": r.at,
            "last_energy_wh": r.last_energy_wh,
            "first_energy_wh": r.first_energy_wh,
            "reason": r.reason,
        }
        for d in fleet.devices
        for r in d.counter_resets
    ]


def _version_rows(fleet: Fleet) -> list[Row]:
    rows = []
    for plan in fleet.tariff_plans:
        for v in plan.versions:
            g = v.guarantee
            rows.append(
                {
                    "plan_id": plan.plan_id,
                    "valid_from": v.valid_from,
                    "monthly_fee_eur": v.monthly_fee_eur,
                    "price_eur_per_kwh": v.price_eur_per_kwh,
                    "guarantee_kwh_per_year": None if g is None else g.kwh_per_year,
                    "guarantee_kwh_per_kwp_per_year": None if g is None else g.kwh_per_kwp_per_year,
                    "compensation_eur_per_kwh": None if g is None else g.compensation_eur_per_kwh,
                    "indexation_per_year": v.indexation_per_year,
                    "vat_rate": v.vat_rate,
                    "note": v.note,
                }
            )
    return rows


def contract_row(c: Contract) -> Row:
    return {
        "contract_id": c.contract_id,
        "member_id": c.member_id,
        "site_id": c.site_id,
        "start_date": c.start_date,
        "end_date": c.end_date,
        "tariff_plan_id": c.tariff_plan_id,
        "year_anchor": c.year_anchor,
    }


#: In dependency order: parents before children (deletes run in reverse).
ENTITIES: tuple[_Entity, ...] = (
    _Entity("cooperative", CooperativeRow, ("id",), _cooperative_rows),
    _Entity(
        "tariff_plan",
        TariffPlanRow,
        ("plan_id",),
        lambda f: [{"plan_id": p.plan_id, "name": p.name} for p in f.tariff_plans],
    ),
    _Entity("tariff_version", TariffVersionRow, ("plan_id", "valid_from"), _version_rows),
    _Entity("member", MemberRow, ("member_id",), lambda f: [member_row(m) for m in f.members]),
    _Entity("site", SiteRow, ("site_id",), lambda f: [_site_row(s) for s in f.sites]),
    _Entity("device", DeviceRow, ("device_id",), lambda f: [_device_row(d) for d in f.devices]),
    _Entity("device_replacement", DeviceReplacementRow, ("device_id",), _replacement_rows),
    _Entity("counter_reset", CounterResetRow, ("device_id", "at"), _reset_rows),
    _Entity(
        "contract", ContractRow, ("contract_id",), lambda f: [contract_row(c) for c in f.contracts]
    ),
)
ENTITY_BY_NAME = {e.name: e for e in ENTITIES}


def text_value(value: Any) -> str | None:
    """A value as it is written in the change log."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _row_json(row: Row) -> str:
    return json.dumps({k: text_value(v) for k, v in row.items()}, sort_keys=True)


def _key_of(row: Row, key: Sequence[str]) -> tuple[Any, ...]:
    return tuple(_norm_key(row[k]) for k in key)


def _norm_key(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _key_text(key: tuple[Any, ...]) -> str:
    return "/".join(str(text_value(k)) for k in key)


def upsert_rows(
    session: Session,
    entity: _Entity,
    rows: Iterable[Row],
    report: LoadReport,
    existing: dict[tuple[Any, ...], Any] | None = None,
) -> dict[tuple[Any, ...], Any]:
    """Insert or update ``rows`` of one entity; record what changed. Returns existing rows."""
    if existing is None:
        existing = {
            _key_of(_orm_row(obj), entity.key): obj for obj in session.scalars(select(entity.model))
        }
    for row in rows:
        key = _key_of(row, entity.key)
        obj = existing.get(key)
        if obj is None:
            session.add(entity.model(**row))
            report.inserted[entity.name] = report.inserted.get(entity.name, 0) + 1
            report.changes.append(
                Change(entity.name, _key_text(key), "insert", new_value=_row_json(row))
            )
            continue
        changed = False
        for name, value in row.items():
            old = getattr(obj, name)
            if old != value or (old is None) != (value is None):
                report.changes.append(
                    Change(
                        entity.name,
                        _key_text(key),
                        "update",
                        name,
                        text_value(old),
                        text_value(value),
                    )
                )
                setattr(obj, name, value)
                changed = True
        if changed:
            report.updated[entity.name] = report.updated.get(entity.name, 0) + 1
    session.flush()
    return existing


def _orm_row(obj: Any) -> Row:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def sync_fleet(
    session: Session,
    fleet: Fleet,
    *,
    source: str = "<fleet>",
    sha256: str | None = None,
    prune: bool = False,
    now: datetime | None = None,
) -> LoadReport:
    """Make the registry tables match ``fleet``; record the changes. The caller commits.

    Parameters
    ----------
    prune
        Delete rows that are not in the fleet (recorded, refused when the ledger refers to
        them). Off by default: such rows are kept and listed in the report.
    """
    report = LoadReport()
    existing_by_entity: dict[str, dict[tuple[Any, ...], Any]] = {}
    wanted_keys: dict[str, set[tuple[Any, ...]]] = {}
    for entity in ENTITIES:
        rows = entity.rows(fleet)
        wanted_keys[entity.name] = {_key_of(r, entity.key) for r in rows}
        existing_by_entity[entity.name] = upsert_rows(session, entity, rows, report)
    for entity in reversed(ENTITIES):
        absent = [
            (key, obj)
            for key, obj in existing_by_entity[entity.name].items()
            if key not in wanted_keys[entity.name]
        ]
        if not absent:
            continue
        if not prune:
            report.absent[entity.name] = sorted(_key_text(k) for k, _ in absent)
            continue
        for key, obj in sorted(absent, key=lambda item: _key_text(item[0])):
            report.changes.append(
                Change(entity.name, _key_text(key), "delete", old_value=_row_json(_orm_row(obj)))
            )
            session.delete(obj)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                raise RegistryLoadError(
                    f"cannot delete {entity.name} {_key_text(key)!r}: other records (e.g. "
                    "settled statements or the rows that point at it) still refer to it; keep it "
                    "in the fleet file (end a contract with end_date, a device with removed_on)"
                ) from None
            report.deleted[entity.name] = report.deleted.get(entity.name, 0) + 1
    if report.changed:
        record_load(session, report, source=source, kind="fleet", sha256=sha256 or "", now=now)
    return report


def record_load(
    session: Session,
    report: LoadReport,
    *,
    source: str,
    kind: str,
    sha256: str,
    rejected: int = 0,
    now: datetime | None = None,
) -> int:
    """Write the load row and its change rows; returns the load id."""
    ins, upd, dele = report.totals()
    load = RegistryLoadRow(
        loaded_at=now or datetime.now(UTC),
        source=source[:500],
        kind=kind,
        sha256=sha256,
        inserted=ins,
        updated=upd,
        deleted=dele,
        rejected=rejected,
    )
    session.add(load)
    session.flush()
    session.add_all(
        RegistryChangeRow(
            load_id=load.load_id,
            entity=c.entity,
            entity_key=c.entity_key,
            action=c.action,
            field=c.field,
            old_value=c.old_value,
            new_value=c.new_value,
        )
        for c in report.changes
    )
    session.flush()
    report.load_id = load.load_id
    return load.load_id


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
