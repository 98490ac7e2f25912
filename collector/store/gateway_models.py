"""Gateway fleet tables (issue 21), on the shared Base.

- ``gateway_enrolment_codes``: one-time enrolment codes an operator made for a site. Only the
  code's SHA-256 is kept (a leaked table cannot be redeemed); a code expires at ``expires_at``
  and works once (``redeemed_at`` is set in the same statement that checks it is still NULL).
- ``gateway_enrolment_events``: every creation, redemption and refusal, with the reason and
  the caller's address: the enrolment log.
- ``gateway_configs``: each gateway's configuration as the server keeps it, one row per
  version (never updated: a change is a new version).
- ``gateway_keys``: the per-gateway key that authenticates configs and commands.
- ``gateway_diagnostics``: every diagnostics request (portal or CLI) and the bundle the
  gateway answered with.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collector.store.models import ID, Base
from collector.store.types import UtcDateTime


class EnrolmentCodeRow(Base):
    __tablename__ = "gateway_enrolment_codes"

    code_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(ID, index=True)
    site_id: Mapped[str] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    redeemed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    redeemed_from: Mapped[str | None] = mapped_column(String(64))
    redeemed_hostname: Mapped[str | None] = mapped_column(String(200))


class EnrolmentEventRow(Base):
    __tablename__ = "gateway_enrolment_events"
    __table_args__ = (Index("ix_gateway_enrolment_events_gateway_at", "gateway_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: created | redeemed | refused | revoked
    event: Mapped[str] = mapped_column(String(16))
    gateway_id: Mapped[str | None] = mapped_column(ID)
    site_id: Mapped[str | None] = mapped_column(ID)
    #: why a redemption was refused (unknown_code, expired, already_used, ...)
    reason: Mapped[str | None] = mapped_column(String(64))
    remote: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(500))


class GatewayConfigRow(Base):
    __tablename__ = "gateway_configs"

    gateway_id: Mapped[str] = mapped_column(ID, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the configuration document as canonical JSON (sorted keys)
    document: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(String(500))


class GatewayKeyRow(Base):
    """The key that authenticates the server's configs and commands to one gateway.

    Issued at enrolment (sent once, over TLS) and kept here because the server signs with it;
    ``revoked_at`` is set when the gateway is revoked.
    """

    __tablename__ = "gateway_keys"

    gateway_id: Mapped[str] = mapped_column(ID, primary_key=True)
    command_key: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class GatewayDiagnosticsRow(Base):
    """One diagnostics request to a gateway and, when it answered, its bundle.

    ``received_at`` and ``bundle`` stay NULL when the gateway did not answer in time (the
    request is kept: an operator sees that it was asked and stayed silent).
    """

    __tablename__ = "gateway_diagnostics"
    __table_args__ = (
        Index("ix_gateway_diagnostics_gateway_requested", "gateway_id", "requested_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gateway_id: Mapped[str] = mapped_column(ID)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: the operator's e-mail address (portal) or ``--by`` (``zonnewijk gateways diagnose``)
    requested_by: Mapped[str] = mapped_column(String(320))
    #: the DiagnosticsBundle as the gateway sent it (JSON)
    bundle: Mapped[str | None] = mapped_column(Text)
