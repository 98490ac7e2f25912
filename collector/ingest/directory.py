"""Where the collector looks up gateways and devices: the registry, or a stand-in.

:class:`DeviceDirectory` is what validation asks (is this gateway known, which device is
this and what is its AC rating); :class:`OpenDirectory` accepts everything (demo, fresh
install), :class:`StaticDirectory` a fixed set, :class:`CachedDirectory` wraps the registry
(:class:`collector.ingest.store_directory.StoreDirectory`) so the database is asked once a
minute per device, not once per reading. :class:`ConsentDirectory` answers for members'
meters (:mod:`collector.ingest.consent`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

__all__ = [
    "CachedDirectory",
    "ConsentDirectory",
    "ConsentRecord",
    "DeviceDirectory",
    "DeviceRecord",
    "OpenDirectory",
    "StaticDirectory",
]


@dataclass(frozen=True)
class DeviceRecord:
    """What the collector needs to know about a registered device."""

    gateway_id: str
    device_id: str
    rated_ac_power_w: float | None = None
    #: the registry's installation (commissioning) date, a local date in the Netherlands;
    #: readings stamped before it are refused (None: not known, not checked)
    installed_on: date | None = None


class DeviceDirectory(Protocol):
    """Where the collector looks up gateways and devices (the registry, or a stand-in)."""

    def gateway_known(self, gateway_id: str) -> bool:
        """True when the gateway is registered and active."""
        ...

    def device(self, gateway_id: str, device_id: str) -> DeviceRecord | None:
        """The device behind ``gateway_id``, or None when it is not registered there."""
        ...


@dataclass(frozen=True)
class ConsentRecord:
    """The member's consent for one meter, as recorded in the registry."""

    member_id: str
    given_at: datetime
    withdrawn_at: datetime | None
    electricity: bool
    gas: bool
    #: the shortest interval of a stored reading the member allows [s]
    granularity_s: int


class ConsentDirectory(Protocol):
    """Where the collector looks up a meter's consent."""

    def meter_consent(self, gateway_id: str, device_id: str) -> ConsentRecord | None:
        """The newest consent for the meter ``device_id`` behind ``gateway_id``, or None."""
        ...


class OpenDirectory:
    """Accepts every gateway and device, without ratings: for the demo and a fresh install."""

    def gateway_known(self, gateway_id: str) -> bool:
        return True

    def device(self, gateway_id: str, device_id: str) -> DeviceRecord | None:
        return DeviceRecord(gateway_id, device_id)


@dataclass
class StaticDirectory:
    """A fixed set of devices, e.g. from a file or a test."""

    devices: Mapping[tuple[str, str], DeviceRecord]
    extra_gateways: frozenset[str] = frozenset()

    @classmethod
    def of(cls, records: Iterable[DeviceRecord]) -> StaticDirectory:
        return cls({(r.gateway_id, r.device_id): r for r in records})

    def gateway_known(self, gateway_id: str) -> bool:
        return gateway_id in self.extra_gateways or any(g == gateway_id for g, _ in self.devices)

    def device(self, gateway_id: str, device_id: str) -> DeviceRecord | None:
        return self.devices.get((gateway_id, device_id))


@dataclass
class CachedDirectory:
    """Caches another directory's answers for ``ttl_s`` seconds (the registry is a database)."""

    inner: DeviceDirectory
    ttl_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _gateways: dict[str, tuple[float, bool]] = field(default_factory=dict, repr=False)
    _devices: dict[tuple[str, str], tuple[float, DeviceRecord | None]] = field(
        default_factory=dict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def gateway_known(self, gateway_id: str) -> bool:
        now = self.clock()
        with self._lock:
            hit = self._gateways.get(gateway_id)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        known = self.inner.gateway_known(gateway_id)
        with self._lock:
            self._gateways[gateway_id] = (now, known)
        return known

    def device(self, gateway_id: str, device_id: str) -> DeviceRecord | None:
        now = self.clock()
        key = (gateway_id, device_id)
        with self._lock:
            hit = self._devices.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        record = self.inner.device(gateway_id, device_id)
        with self._lock:
            self._devices[key] = (now, record)
        return record
