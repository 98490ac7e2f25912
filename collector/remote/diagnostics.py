"""Diagnostics bundles as the server keeps them (``gateway_diagnostics``).

:func:`ask_and_store` asks one gateway for a bundle over MQTT (:func:`request_diagnostics`)
and stores the request with its answer; a gateway that stays silent within the timeout gets a
row without a bundle, so the history shows that it was asked. The portal's operator pages and
``zonnewijk gateways diagnose`` both go through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from collector.remote.delivery import BrokerLogin, broker_link, command_key, request_diagnostics
from collector.store.gateway_models import GatewayDiagnosticsRow
from zonnewijk_wire.control import DiagnosticsBundle

#: How long connecting to the broker may take before the request is given up [s].
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class StoredDiagnostics:
    """One request and, when the gateway answered, its bundle as a JSON document."""

    id: int
    gateway_id: str
    requested_at: datetime
    requested_by: str
    received_at: datetime | None
    document: dict[str, Any] | None

    @property
    def answered(self) -> bool:
        return self.document is not None


def _stored(row: GatewayDiagnosticsRow) -> StoredDiagnostics:
    return StoredDiagnostics(
        id=row.id,
        gateway_id=row.gateway_id,
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        received_at=row.received_at,
        document=json.loads(row.bundle) if row.bundle else None,
    )


def record_diagnostics(
    session: Session,
    gateway_id: str,
    *,
    requested_at: datetime,
    requested_by: str,
    bundle: DiagnosticsBundle | None,
    received_at: datetime | None,
) -> StoredDiagnostics:
    """Store one request and its answer (None: the gateway did not answer)."""
    if bundle is not None and bundle.gateway_id != gateway_id:
        raise ValueError(f"a bundle of {bundle.gateway_id} cannot be stored for {gateway_id}")
    row = GatewayDiagnosticsRow(
        gateway_id=gateway_id,
        requested_at=requested_at,
        requested_by=requested_by,
        received_at=received_at if bundle is not None else None,
        bundle=bundle.model_dump_json() if bundle is not None else None,
    )
    session.add(row)
    session.flush()
    return _stored(row)


def diagnostics_history(
    session: Session, gateway_id: str, *, limit: int = 10
) -> list[StoredDiagnostics]:
    """The gateway's newest requests first, answered or not."""
    rows = session.scalars(
        select(GatewayDiagnosticsRow)
        .where(GatewayDiagnosticsRow.gateway_id == gateway_id)
        .order_by(GatewayDiagnosticsRow.requested_at.desc(), GatewayDiagnosticsRow.id.desc())
        .limit(limit)
    ).all()
    return [_stored(r) for r in rows]


def diagnostics_by_id(
    session: Session, gateway_id: str, diagnostics_id: int
) -> StoredDiagnostics | None:
    row = session.get(GatewayDiagnosticsRow, diagnostics_id)
    return None if row is None or row.gateway_id != gateway_id else _stored(row)


def latest_answered(session: Session) -> dict[str, StoredDiagnostics]:
    """Per gateway its newest answered request."""
    newest = (
        select(GatewayDiagnosticsRow.gateway_id, func.max(GatewayDiagnosticsRow.id).label("id"))
        .where(GatewayDiagnosticsRow.bundle.is_not(None))
        .group_by(GatewayDiagnosticsRow.gateway_id)
        .subquery()
    )
    rows = session.scalars(
        select(GatewayDiagnosticsRow).join(newest, newest.c.id == GatewayDiagnosticsRow.id)
    ).all()
    return {r.gateway_id: _stored(r) for r in rows}


def ask_and_store(
    sessions: sessionmaker[Session],
    login: BrokerLogin,
    gateway_id: str,
    *,
    requested_by: str,
    timeout_s: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> StoredDiagnostics:
    """Ask ``gateway_id`` for a bundle, wait at most ``timeout_s``, store what came back.

    Raises :class:`~collector.remote.delivery.DeliveryError` (nothing stored) when the gateway
    has no key or the broker cannot be reached or refuses; a silent gateway is stored as a
    request without an answer.
    """
    with sessions() as session:
        key = command_key(session, gateway_id)
    requested_at = clock()
    with broker_link(login, timeout_s=min(timeout_s, CONNECT_TIMEOUT_S)) as link:
        bundle = request_diagnostics(link, gateway_id, key, timeout_s=timeout_s, now=requested_at)
    received_at = clock() if bundle is not None else None
    with sessions() as session, session.begin():
        return record_diagnostics(
            session,
            gateway_id,
            requested_at=requested_at,
            requested_by=requested_by,
            bundle=bundle,
            received_at=received_at,
        )
