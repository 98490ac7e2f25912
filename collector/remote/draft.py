"""A first configuration for a gateway, drafted from the registry's devices of its site.

The registry knows each inverter's family and rating but not where it answers; the operator
gives that (a Modbus TCP address or the RS-485 adapter). Devices at one address get unit ids
counting up from ``first_unit``, in the order they were installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.remote.profiles import PROFILE_OF_FAMILY
from collector.store.models import DeviceRow, SiteRow


class DraftError(ValueError):
    """No configuration can be drafted; the message says what is missing."""


@dataclass(frozen=True, kw_only=True)
class Transport:
    """Where the site's inverters answer: ``host`` (Modbus TCP) or ``serial_port`` (RTU)."""

    host: str | None = None
    port: int = 502
    serial_port: str | None = None
    baudrate: int = 9600
    first_unit: int = 1
    interval_s: float = 10.0


def draft_settings(session: Session, site_id: str, transport: Transport) -> dict[str, Any]:
    """Settings (for :func:`collector.remote.configs.save_config`) for the site's gateway."""
    site = session.get(SiteRow, site_id)
    if site is None:
        raise DraftError(f"site {site_id!r} is not in the registry")
    devices = session.scalars(
        select(DeviceRow)
        .where(DeviceRow.site_id == site_id, DeviceRow.removed_on.is_(None))
        .order_by(DeviceRow.installed_on, DeviceRow.device_id)
    ).all()
    if not devices:
        raise DraftError(f"site {site_id!r} has no device in service in the registry")
    entries = []
    for i, device in enumerate(devices):
        profile = PROFILE_OF_FAMILY.get(device.family)
        if profile is None:
            raise DraftError(f"device {device.device_id}: no gateway profile for {device.family!r}")
        entry: dict[str, Any] = {
            "device_id": device.device_id,
            "profile": profile,
            "unit": transport.first_unit + i,
            "interval_s": transport.interval_s,
            "rated_power_w": float(device.ac_rating_w),
        }
        if transport.host is not None:
            entry |= {"host": transport.host, "port": transport.port}
        elif transport.serial_port is not None:
            entry |= {"serial_port": transport.serial_port, "baudrate": transport.baudrate}
        else:
            raise DraftError("give the inverters' address: a host or a serial port")
        entries.append(entry)
    return {"devices": entries}
