"""Each gateway's configuration, versioned in the store (``gateway_configs``).

A version is never changed: :func:`save_config` validates the new settings with the wire
model the gateway uses (:class:`zonnewijk_wire.RemoteConfig`) plus what only the server can
check (profiles that exist, devices of the registry that belong to this gateway), and writes
them as the next version, unless they equal the newest version, which is then returned as
it is. :func:`latest_config` is what a gateway should run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.store.gateway_models import GatewayConfigRow
from collector.store.models import DeviceRow, SiteRow
from zonnewijk_wire.remote_config import RemoteConfig, canonical_json


class ConfigRefusedError(ValueError):
    """A configuration that cannot be sent; ``problems`` lists each by its field."""

    def __init__(self, gateway_id: str, problems: list[str]) -> None:
        self.gateway_id = gateway_id
        self.problems = problems
        super().__init__(
            f"configuration for {gateway_id} refused:\n" + "\n".join(f"  {p}" for p in problems)
        )


@dataclass(frozen=True)
class StoredConfig:
    config: RemoteConfig
    created_at: datetime
    created_by: str
    comment: str | None


def _describe(error: ValidationError) -> list[str]:
    problems = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(document)"
        problems.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return problems


def validate_settings(
    gateway_id: str,
    settings: Mapping[str, Any],
    *,
    version: int,
    profiles: Iterable[str] | None = None,
    known_devices: Mapping[str, str | None] | None = None,
    now: datetime | None = None,
) -> RemoteConfig:
    """A :class:`RemoteConfig` from ``settings`` (``devices``, ``status_interval_s``,
    ``log_level``), or :class:`ConfigRefusedError` naming every problem.

    Parameters
    ----------
    profiles
        Profile names the gateway has (``sunspec`` and the files in ``config/devices``); None
        skips the check.
    known_devices
        Registry device id → its gateway id; None skips the check. A device must be in the
        registry and not be assigned to another gateway.
    """
    extra = set(settings) - {"devices", "status_interval_s", "log_level"}
    if extra:
        raise ConfigRefusedError(
            gateway_id, [f"{key}: not a setting the server sends" for key in sorted(extra)]
        )
    try:
        config = RemoteConfig.model_validate(
            {
                **settings,
                "gateway_id": gateway_id,
                "version": version,
                "issued_at": now or datetime.now(UTC),
            }
        )
    except ValidationError as exc:
        raise ConfigRefusedError(gateway_id, _describe(exc)) from None
    problems = []
    allowed = set(profiles) if profiles is not None else None
    for i, device in enumerate(config.devices):
        if allowed is not None and device.profile not in allowed:
            problems.append(
                f"devices.{i}.profile: {device.profile!r} is not a profile the gateway has "
                f"({', '.join(sorted(allowed))})"
            )
        if known_devices is not None:
            if device.device_id not in known_devices:
                problems.append(f"devices.{i}.device_id: {device.device_id!r} is not registered")
            elif (owner := known_devices[device.device_id]) not in (None, gateway_id):
                problems.append(
                    f"devices.{i}.device_id: {device.device_id!r} belongs to gateway {owner}"
                )
    if problems:
        raise ConfigRefusedError(gateway_id, problems)
    return config


def registry_devices(session: Session) -> dict[str, str | None]:
    """Every registry device id → the gateway that reads it (the device's, else its site's)."""
    rows = session.execute(
        select(DeviceRow.device_id, DeviceRow.gateway_id, SiteRow.gateway_id).join(
            SiteRow, DeviceRow.site_id == SiteRow.site_id
        )
    )
    return {device_id: own or site_gw for device_id, own, site_gw in rows}


def latest_config(session: Session, gateway_id: str) -> StoredConfig | None:
    row = session.scalars(
        select(GatewayConfigRow)
        .where(GatewayConfigRow.gateway_id == gateway_id)
        .order_by(GatewayConfigRow.version.desc())
        .limit(1)
    ).first()
    return None if row is None else _stored(row)


def config_version(session: Session, gateway_id: str, version: int) -> StoredConfig | None:
    row = session.get(GatewayConfigRow, (gateway_id, version))
    return None if row is None else _stored(row)


def config_history(session: Session, gateway_id: str) -> list[StoredConfig]:
    rows = session.scalars(
        select(GatewayConfigRow)
        .where(GatewayConfigRow.gateway_id == gateway_id)
        .order_by(GatewayConfigRow.version)
    )
    return [_stored(r) for r in rows]


def _stored(row: GatewayConfigRow) -> StoredConfig:
    return StoredConfig(
        config=RemoteConfig.model_validate_json(row.document),
        created_at=row.created_at,
        created_by=row.created_by,
        comment=row.comment,
    )


def save_config(
    session: Session,
    gateway_id: str,
    settings: Mapping[str, Any],
    *,
    created_by: str,
    comment: str | None = None,
    profiles: Iterable[str] | None = None,
    check_registry: bool = True,
    now: datetime | None = None,
) -> tuple[StoredConfig, bool]:
    """Validate ``settings`` and store them as the gateway's next version.

    Returns the stored version and whether it is new (False: the settings equal the newest
    version, which is returned unchanged). The caller commits.
    """
    now = now or datetime.now(UTC)
    newest = session.scalar(
        select(func.max(GatewayConfigRow.version)).where(GatewayConfigRow.gateway_id == gateway_id)
    )
    config = validate_settings(
        gateway_id,
        settings,
        version=(newest or 0) + 1,
        profiles=profiles,
        known_devices=registry_devices(session) if check_registry else None,
        now=now,
    )
    if newest is not None:
        current = config_version(session, gateway_id, newest)
        assert current is not None
        if current.config.digest() == config.digest():
            return current, False
    document = canonical_json(config.model_dump(mode="json"))
    session.add(
        GatewayConfigRow(
            gateway_id=gateway_id,
            version=config.version,
            document=document,
            sha256=hashlib.sha256(document.encode()).hexdigest(),
            created_at=now,
            created_by=created_by,
            comment=comment,
        )
    )
    session.flush()
    return StoredConfig(config, now, created_by, comment), True


def settings_of(config: RemoteConfig) -> dict[str, Any]:
    """The settings part of a stored config (what :func:`save_config` takes)."""
    body = config.body()
    body.pop("v", None)
    body.pop("gateway_id", None)
    return body
