"""Enrolment: an operator makes a code for a site, a Pi redeems it once for everything it needs.

:meth:`EnrolmentService.create_code` checks the site, makes sure the site's gateway has a
configuration (drafting one from the registry when the operator says where the inverters
answer), stores the code's hash and logs it. :meth:`EnrolmentService.redeem` claims the code
(once, before it expires), issues the gateway's broker credentials (a new password in
Mosquitto's password file and the gateway's ACL block, then a broker reload), a fresh key
for its configs and commands, and returns them with the configuration. Every refusal is
counted by reason and logged with the caller's address; a failure to issue credentials
leaves the code unused so the Pi can simply try again.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from collector.broker.reload import reload_broker
from collector.broker.security import BrokerSecurityError, add_gateway, remove_user
from collector.enrolment import codes
from collector.remote.configs import ConfigRefusedError, latest_config, save_config
from collector.remote.draft import Transport, draft_settings
from collector.remote.profiles import profile_names
from collector.settings import Settings
from collector.store.gateway_models import EnrolmentCodeRow, GatewayKeyRow
from collector.store.models import SiteRow
from zonnewijk_wire.enrolment import (
    BrokerAccess,
    EnrolmentGrant,
    EnrolmentRequest,
    display_code,
    normalise_code,
)

log = logging.getLogger(__name__)


class EnrolmentError(ValueError):
    """A code cannot be made (unknown site, no configuration); the message says why."""


class EnrolmentRefusedError(Exception):
    """A redemption was refused; ``refusal`` has the reason and the HTTP status."""

    def __init__(self, refusal: codes.Refusal) -> None:
        self.refusal = refusal
        super().__init__(refusal.message)


@dataclass(frozen=True, kw_only=True)
class BrokerSetup:
    """The broker as gateways reach it, and the files that grant them access."""

    host: str
    port: int
    password_file: Path
    acl_file: Path
    ca_file: Path | None = None
    reload_command: str = ""
    protocol: str = "5"

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerSetup | None:
        """From ``ZONNEWIJK_GATEWAY_BROKER_*`` and ``ZONNEWIJK_MQTT_*``; None when
        ``ZONNEWIJK_GATEWAY_BROKER_HOST`` is not set (enrolment switched off)."""
        if not settings.gateway_broker_host:
            return None
        return cls(
            host=settings.gateway_broker_host,
            port=settings.gateway_broker_port,
            password_file=settings.mqtt_password_file,
            acl_file=settings.mqtt_acl_file,
            ca_file=settings.gateway_broker_ca,
            reload_command=settings.mqtt_reload_command,
        )


@dataclass(frozen=True)
class CreatedCode:
    code: str
    site_id: str
    gateway_id: str
    expires_at: datetime
    config_version: int

    @property
    def display(self) -> str:
        return display_code(self.code)


class EnrolmentService:
    """Codes and redemptions against one store and one broker."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        broker: BrokerSetup,
        *,
        profiles: frozenset[str] | None = None,
        clock: Any = None,
    ) -> None:
        self.sessions = sessions
        self.broker = broker
        self.profiles = profiles if profiles is not None else profile_names()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.refused: Counter[str] = Counter()
        self.enrolled = 0

    # --- the operator's side ----------------------------------------------------------------

    def create_code(
        self,
        site_id: str,
        *,
        created_by: str,
        lifetime: timedelta = codes.DEFAULT_CODE_LIFETIME,
        transport: Transport | None = None,
        settings: dict[str, Any] | None = None,
    ) -> CreatedCode:
        """A new one-time code for ``site_id``'s gateway.

        The gateway's configuration is the newest stored version, or a new version from
        ``settings`` or, failing both, drafted from the registry with ``transport``.
        """
        if not timedelta(minutes=5) <= lifetime <= codes.MAX_CODE_LIFETIME:
            raise EnrolmentError(
                f"a code lives between 5 minutes and {codes.MAX_CODE_LIFETIME.days} days"
            )
        now = self._clock()
        with self.sessions() as session, session.begin():
            site = session.get(SiteRow, site_id)
            if site is None:
                raise EnrolmentError(
                    f"site {site_id!r} is not in the registry (zonnewijk registry load FILE)"
                )
            gateway_id = site.gateway_id
            if settings is None and transport is not None:
                settings = draft_settings(session, site_id, transport)
            if settings is not None:
                try:
                    stored, _ = save_config(
                        session,
                        gateway_id,
                        settings,
                        created_by=created_by,
                        comment=f"enrolment of site {site_id}",
                        profiles=self.profiles,
                        now=now,
                    )
                except ConfigRefusedError as exc:
                    raise EnrolmentError(str(exc)) from None
            else:
                found = latest_config(session, gateway_id)
                if found is None:
                    raise EnrolmentError(
                        f"gateway {gateway_id} has no configuration yet: say where the site's "
                        "inverters answer (--host ADDRESS or --serial DEVICE) to draft one "
                        "from the registry, or give --config FILE"
                    )
                stored = found
            code = codes.new_code()
            session.add(
                EnrolmentCodeRow(
                    code_sha256=codes.code_sha256(code),
                    gateway_id=gateway_id,
                    site_id=site_id,
                    created_at=now,
                    expires_at=now + lifetime,
                    created_by=created_by,
                )
            )
            codes.log_event(
                session,
                "created",
                at=now,
                gateway_id=gateway_id,
                site_id=site_id,
                detail=f"by {created_by}, valid until {(now + lifetime).isoformat()}, "
                f"config version {stored.config.version}",
            )
        log.info("enrolment code made for site %s (gateway %s)", site_id, gateway_id)
        return CreatedCode(code, site_id, gateway_id, now + lifetime, stored.config.version)

    def revoke(self, gateway_id: str, *, by: str, reason: str | None = None) -> bool:
        """Take a gateway's access away at once (a stolen or broken Pi).

        Its broker user and ACL block go and the broker is reloaded, its command key is marked
        revoked (no config or command is signed for it again) and unused codes for it stop
        working. True when there was something to revoke; BrokerSecurityError when the broker
        cannot be reloaded (the files are changed already: reload it by hand).
        """
        now = self._clock()
        removed = remove_user(
            gateway_id, password_file=self.broker.password_file, acl_file=self.broker.acl_file
        )
        with self.sessions() as session, session.begin():
            key = session.get(GatewayKeyRow, gateway_id)
            if key is not None and key.revoked_at is None:
                key.revoked_at = now
                removed = True
            session.execute(
                update(EnrolmentCodeRow)
                .where(EnrolmentCodeRow.gateway_id == gateway_id)
                .where(EnrolmentCodeRow.redeemed_at.is_(None))
                .values(expires_at=now)
            )
            codes.log_event(
                session, "revoked", at=now, gateway_id=gateway_id,
                detail="; ".join(p for p in (f"by {by}", reason) if p),
            )  # fmt: skip
        reload_broker(self.broker.reload_command)
        log.warning("gateway %s revoked by %s", gateway_id, by)
        return removed

    # --- the Pi's side ----------------------------------------------------------------------

    def redeem(self, request: EnrolmentRequest, *, remote: str | None) -> EnrolmentGrant:
        """Trade a code for the gateway's grant, or raise :class:`EnrolmentRefusedError`."""
        now = self._clock()
        code = normalise_code(request.code)
        if code is None:
            self._refuse(codes.Refusal("malformed_code", 400, _MALFORMED), remote, request)
        assert code is not None
        digest = codes.code_sha256(code)
        with self.sessions() as session:
            row = session.get(EnrolmentCodeRow, digest)
            refusal = codes.check_code(row, now)
            if refusal is not None:
                session.rollback()
                self._refuse(refusal, remote, request, row)
            assert row is not None
            gateway_id, site_id = row.gateway_id, row.site_id
            if not codes.claim_code(
                session, digest, now=now, remote=remote, hostname=request.hostname
            ):
                session.rollback()
                self._refuse(codes.USED, remote, request, row)
            stored = latest_config(session, gateway_id)
            if stored is None:
                session.rollback()
                self._refuse(_NO_CONFIG, remote, request, row)
            assert stored is not None
            try:
                grant = self._grant(session, gateway_id, site_id, stored.config, now)
            except (BrokerSecurityError, OSError) as exc:
                session.rollback()
                log.error("enrolment of %s: cannot issue broker credentials: %s", gateway_id, exc)
                self._refuse(_NO_CREDENTIALS, remote, request, row, detail=str(exc))
            codes.log_event(
                session,
                "redeemed",
                at=now,
                gateway_id=gateway_id,
                site_id=site_id,
                remote=remote,
                detail=_who(request),
            )
            session.commit()
        self.enrolled += 1
        log.info("gateway %s (site %s) enrolled from %s", gateway_id, site_id, remote)
        return grant

    def _grant(
        self, session: Session, gateway_id: str, site_id: str, config: Any, now: datetime
    ) -> EnrolmentGrant:
        creds = add_gateway(
            gateway_id,
            password_file=self.broker.password_file,
            acl_file=self.broker.acl_file,
        )
        reload_broker(self.broker.reload_command)
        key = secrets.token_hex(32)
        existing = session.get(GatewayKeyRow, gateway_id)
        if existing is None:
            session.add(GatewayKeyRow(gateway_id=gateway_id, command_key=key, issued_at=now))
        else:
            existing.command_key, existing.issued_at, existing.revoked_at = key, now, None
        ca_pem = self.broker.ca_file.read_text() if self.broker.ca_file is not None else None
        return EnrolmentGrant(
            gateway_id=gateway_id,
            site_id=site_id,
            broker=BrokerAccess(
                host=self.broker.host,
                port=self.broker.port,
                username=creds.username,
                password=creds.password,
                ca_pem=ca_pem,
                protocol="3.1.1" if self.broker.protocol == "3.1.1" else "5",
            ),
            config=config,
            command_key=key,
        )

    def _refuse(
        self,
        refusal: codes.Refusal,
        remote: str | None,
        request: EnrolmentRequest,
        row: EnrolmentCodeRow | None = None,
        *,
        detail: str | None = None,
    ) -> None:
        self.refused[refusal.reason] += 1
        log.warning(
            "enrolment refused (%s) from %s%s",
            refusal.reason,
            remote,
            f" for gateway {row.gateway_id}" if row is not None else "",
        )
        with self.sessions() as session, session.begin():
            codes.log_event(
                session,
                "refused",
                at=self._clock(),
                gateway_id=row.gateway_id if row is not None else None,
                site_id=row.site_id if row is not None else None,
                reason=refusal.reason,
                remote=remote,
                detail="; ".join(p for p in (_who(request), detail) if p),
            )
        raise EnrolmentRefusedError(refusal)


_MALFORMED = (
    "an enrolment code has 16 letters and digits, e.g. 7KQ4-M2XD-9V0C-HT3R; check for typos"
)
_NO_CONFIG = codes.Refusal(
    "no_config", 503, "the server has no configuration for this gateway; ask an operator"
)
_NO_CREDENTIALS = codes.Refusal(
    "credentials_unavailable",
    503,
    "the server cannot issue broker credentials right now; the code stays valid, try again",
)


def _who(request: EnrolmentRequest) -> str:
    parts = []
    if request.hostname:
        parts.append(f"host {request.hostname}")
    if request.firmware_version:
        parts.append(f"firmware {request.firmware_version}")
    return ", ".join(parts)
