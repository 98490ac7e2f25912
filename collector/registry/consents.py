"""Members' consent to read their smart meter: opt in, withdraw, and what is due for deletion.

The lifecycle (``docs/privacy.md``):

1. **opt in** (:func:`give_consent`): the date, the scope (electricity; gas or not) and the
   granularity (the shortest interval stored, default 5 minutes) are recorded, with who
   recorded it and the evidence. Only then does the collector store the meter's readings
   (:mod:`collector.ingest.consent`).
2. **withdraw** (:func:`withdraw_consent`): collection stops at once (the collector refuses the
   meter's readings from ``withdrawn_at``, at most :data:`~collector.ingest.consent.CONSENT_CACHE_S`
   later), and the stored readings must be deleted by ``delete_by`` =
   ``withdrawn_at`` + :data:`DELETE_WITHIN`.
3. **delete** (:mod:`collector.registry.consent_purge`): every stored reading of the meter goes
   from InfluxDB, and ``deleted_at`` records when.

Every step is a row in ``consent_events``. The consent row itself stays: it is the record of
what the member agreed to, and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.store.consent_models import ConsentEventRow, MeterConsentRow
from collector.store.models import ContractRow, MemberRow, SiteRow

__all__ = [
    "DEFAULT_GRANULARITY_S",
    "DELETE_WITHIN",
    "GRANULARITIES_S",
    "ConsentError",
    "deletion_due",
    "give_consent",
    "withdraw_consent",
]

#: After a withdrawal, the stored readings are gone within this time (the purge runs hourly).
DELETE_WITHIN = timedelta(hours=24)
#: Intervals a member may choose: 5 minutes, a quarter, an hour, a day [s].
GRANULARITIES_S = (300, 900, 3600, 86400)
DEFAULT_GRANULARITY_S = 300


class ConsentError(ValueError):
    """A consent that cannot be recorded or withdrawn; the message says why."""


@dataclass(frozen=True)
class ConsentSummary:
    """One consent as the commands list it."""

    consent_id: int
    member_id: str
    site_id: str
    gateway_id: str
    device_id: str
    electricity: bool
    gas: bool
    granularity_s: int
    given_at: datetime
    withdrawn_at: datetime | None
    delete_by: datetime | None
    deleted_at: datetime | None


def _event(session: Session, row: MeterConsentRow | None, member_id: str, **kw: object) -> None:
    session.add(
        ConsentEventRow(
            consent_id=None if row is None else row.consent_id, member_id=member_id, **kw
        )
    )


def give_consent(
    session: Session,
    *,
    member_id: str,
    site_id: str,
    device_id: str,
    at: datetime,
    recorded_by: str,
    electricity: bool = True,
    gas: bool = False,
    granularity_s: int = DEFAULT_GRANULARITY_S,
    evidence: str | None = None,
) -> MeterConsentRow:
    """Record a member's opt-in for the meter ``device_id`` at ``site_id`` (from ``at``, UTC).

    The member must rent the site's panels (a contract) and there may be no other active
    consent for that meter. Raises :class:`ConsentError` otherwise.
    """
    if granularity_s not in GRANULARITIES_S:
        raise ConsentError(f"granularity {granularity_s} s: choose one of {GRANULARITIES_S}")
    if not electricity and not gas:
        raise ConsentError("a consent covers electricity, gas or both")
    if session.get(MemberRow, member_id) is None:
        raise ConsentError(f"no member {member_id!r} in the registry")
    site = session.get(SiteRow, site_id)
    if site is None:
        raise ConsentError(f"no site {site_id!r} in the registry")
    contract = session.scalar(
        select(ContractRow.contract_id)
        .where(ContractRow.member_id == member_id, ContractRow.site_id == site_id)
        .limit(1)
    )
    if contract is None:
        raise ConsentError(f"member {member_id} has no contract at site {site_id}")
    active = session.scalar(
        select(MeterConsentRow).where(
            MeterConsentRow.gateway_id == site.gateway_id,
            MeterConsentRow.device_id == device_id,
            MeterConsentRow.withdrawn_at.is_(None),
        )
    )
    if active is not None:
        raise ConsentError(
            f"meter {device_id} already has consent {active.consent_id} (member "
            f"{active.member_id}); withdraw it first to record a different one"
        )
    row = MeterConsentRow(
        member_id=member_id,
        site_id=site_id,
        gateway_id=site.gateway_id,
        device_id=device_id,
        electricity=electricity,
        gas=gas,
        granularity_s=granularity_s,
        given_at=at,
        recorded_by=recorded_by,
        evidence=evidence,
    )
    session.add(row)
    session.flush()
    scope = "+".join(s for s, on in (("electricity", electricity), ("gas", gas)) if on)
    _event(
        session,
        row,
        member_id,
        at=at,
        kind="given",
        actor=recorded_by,
        detail=f"meter {device_id} at {site_id}: {scope}, every {granularity_s} s",
    )
    return row


def withdraw_consent(
    session: Session, *, member_id: str, device_id: str, at: datetime, actor: str
) -> MeterConsentRow:
    """Withdraw the member's active consent for ``device_id`` from ``at`` (UTC).

    Collection stops at ``at``; the stored readings are due for deletion by
    ``at + DELETE_WITHIN``. Raises :class:`ConsentError` when there is no active consent.
    """
    row = session.scalar(
        select(MeterConsentRow).where(
            MeterConsentRow.member_id == member_id,
            MeterConsentRow.device_id == device_id,
            MeterConsentRow.withdrawn_at.is_(None),
        )
    )
    if row is None:
        raise ConsentError(f"member {member_id} has no active consent for meter {device_id}")
    row.withdrawn_at = at
    row.delete_by = at + DELETE_WITHIN
    _event(
        session,
        row,
        member_id,
        at=at,
        kind="withdrawn",
        actor=actor,
        detail=f"collection stopped; stored readings deleted by {row.delete_by.isoformat()}",
    )
    return row


def deletion_due(session: Session) -> list[MeterConsentRow]:
    """Withdrawn consents whose meter's readings are not deleted yet, oldest first."""
    return list(
        session.scalars(
            select(MeterConsentRow)
            .where(MeterConsentRow.withdrawn_at.is_not(None), MeterConsentRow.deleted_at.is_(None))
            .order_by(MeterConsentRow.withdrawn_at)
        )
    )


def summaries(session: Session, member_id: str | None = None) -> list[ConsentSummary]:
    """Every consent (of one member, or all), newest first."""
    query = select(MeterConsentRow).order_by(MeterConsentRow.given_at.desc())
    if member_id is not None:
        query = query.where(MeterConsentRow.member_id == member_id)
    return [
        ConsentSummary(
            r.consent_id, r.member_id, r.site_id, r.gateway_id, r.device_id, r.electricity,
            r.gas, r.granularity_s, r.given_at, r.withdrawn_at, r.delete_by, r.deleted_at,
        )
        for r in session.scalars(query)
    ]  # fmt: skip
