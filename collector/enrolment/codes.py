"""One-time enrolment codes: made, stored hashed, claimed once (store side).

A code is 80 random bits in Crockford's base 32 (:mod:`zonnewijk_wire.enrolment`); the store
keeps its SHA-256 only. :func:`claim_code` marks a code used in the same UPDATE that checks it
is unused and unexpired, so two Pis racing with one code cannot both win, on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from collector.store.gateway_models import EnrolmentCodeRow, EnrolmentEventRow
from zonnewijk_wire.enrolment import CODE_ALPHABET, CODE_LENGTH

#: How long a code is valid unless the operator says otherwise.
DEFAULT_CODE_LIFETIME = timedelta(hours=48)
#: The longest lifetime allowed: a code on a sticker in a cupboard should not work for ever.
MAX_CODE_LIFETIME = timedelta(days=30)


def new_code() -> str:
    """A fresh code in canonical form (16 characters, 80 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def code_sha256(code: str) -> str:
    """The stored form of a canonical code."""
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class Refusal:
    """Why a code cannot be redeemed: a reason for counters and logs, an HTTP status."""

    reason: str
    status: int
    message: str


UNKNOWN = Refusal("unknown_code", 404, "this enrolment code is not known; check for typos")
USED = Refusal(
    "already_used", 410, "this enrolment code was used already; ask an operator for a new one"
)
EXPIRED = Refusal("expired", 410, "this enrolment code has expired; ask an operator for a new one")


def check_code(row: EnrolmentCodeRow | None, now: datetime) -> Refusal | None:
    """Why ``row`` cannot be redeemed at ``now``, or None when it can."""
    if row is None:
        return UNKNOWN
    if row.redeemed_at is not None:
        return USED
    if row.expires_at <= now:
        return EXPIRED
    return None


def claim_code(
    session: Session, digest: str, *, now: datetime, remote: str | None, hostname: str | None
) -> bool:
    """Mark the code used if it still is unused and unexpired; True when this call won."""
    result = session.execute(
        update(EnrolmentCodeRow)
        .where(
            EnrolmentCodeRow.code_sha256 == digest,
            EnrolmentCodeRow.redeemed_at.is_(None),
            EnrolmentCodeRow.expires_at > now,
        )
        .values(redeemed_at=now, redeemed_from=remote, redeemed_hostname=hostname)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def log_event(
    session: Session,
    event: str,
    *,
    at: datetime,
    gateway_id: str | None = None,
    site_id: str | None = None,
    reason: str | None = None,
    remote: str | None = None,
    detail: str | None = None,
) -> None:
    """One line of the enrolment log (``gateway_enrolment_events``); the caller commits."""
    session.add(
        EnrolmentEventRow(
            at=at,
            event=event,
            gateway_id=gateway_id,
            site_id=site_id,
            reason=reason,
            remote=(remote or "")[:64] or None,
            detail=(detail or "")[:500] or None,
        )
    )
