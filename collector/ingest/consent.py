"""Consent for a member's smart meter, as the collector asks it (issue 17).

A grid meter's readings are personal data. The collector stores a meter reading only when the
registry holds the member's opt-in for that meter (``meter_consents``,
:mod:`collector.registry.consents`): given before the reading's time, not withdrawn, covering
electricity, at the granularity the member allowed. The gas meter's values are stored only
when the consent covers gas too; otherwise they are taken out of the reading before it is
stored. Refusals carry a reason (:data:`CONSENT_REASONS`), are counted like every other, and
their dead letters leave the reading out (it is exactly what may not be kept).

:class:`StaticConsents` serves tests; the store's answer
(:class:`collector.ingest.store_directory.StoreConsents`) is cached for
:data:`CONSENT_CACHE_S` seconds, which bounds how long after a withdrawal readings are still
taken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from collector.ingest.directory import ConsentDirectory, ConsentRecord
from collector.ingest.validate import Problem
from zonnewijk_wire import MeterFlag, MeterReading

__all__ = [
    "CONSENT_CACHE_S",
    "CONSENT_REASONS",
    "CachedConsents",
    "ConsentDirectory",
    "ConsentRecord",
    "StaticConsents",
    "check_consent",
]

#: How long the collector keeps an answer of the registry about a consent [s]: collection stops
#: at most this long after a withdrawal.
CONSENT_CACHE_S = 30.0

#: Reasons a meter reading is refused for want of consent (their dead letters carry no reading).
CONSENT_REASONS = frozenset(
    {"no_consent", "before_consent", "consent_withdrawn", "finer_than_consent", "not_in_scope"}
)


@dataclass
class StaticConsents:
    """A fixed set of consents (tests)."""

    consents: Mapping[tuple[str, str], ConsentRecord]

    @classmethod
    def of(cls, entries: Iterable[tuple[str, str, ConsentRecord]]) -> StaticConsents:
        return cls({(g, d): c for g, d, c in entries})

    def meter_consent(self, gateway_id: str, device_id: str) -> ConsentRecord | None:
        return self.consents.get((gateway_id, device_id))


@dataclass
class CachedConsents:
    """Caches another consent directory's answers for ``ttl_s`` seconds."""

    inner: ConsentDirectory
    ttl_s: float = CONSENT_CACHE_S
    clock: Callable[[], float] = time.monotonic
    _cache: dict[tuple[str, str], tuple[float, ConsentRecord | None]] = field(
        default_factory=dict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def meter_consent(self, gateway_id: str, device_id: str) -> ConsentRecord | None:
        now = self.clock()
        key = (gateway_id, device_id)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        record = self.inner.meter_consent(gateway_id, device_id)
        with self._lock:
            self._cache[key] = (now, record)
        return record


def check_consent(
    reading: MeterReading, consent: ConsentRecord | None, *, now: datetime
) -> tuple[MeterReading | None, Problem | None]:
    """The reading as it may be stored (gas left out where not consented), or a problem.

    Parameters
    ----------
    reading
        The decoded meter reading.
    consent
        The meter's newest consent, or None when the member never opted in.
    now
        The collector's clock [UTC]: a withdrawal counts from its moment, whatever time the
        reading itself carries (a gateway's spool replayed later).
    """
    if consent is None:
        return None, Problem(
            "no_consent",
            f"meter {reading.device_id!r} has no recorded consent: nothing of it is stored until "
            "the member opts in (zonnewijk consent give); switch the gateway's p1 section off",
        )
    if consent.withdrawn_at is not None and now >= consent.withdrawn_at:
        return None, Problem(
            "consent_withdrawn",
            f"the member withdrew consent for meter {reading.device_id!r} on "
            f"{consent.withdrawn_at.isoformat()}: switch the gateway's p1 section off",
        )
    if reading.ts < consent.given_at:
        return None, Problem(
            "before_consent",
            f"a reading of {reading.ts.isoformat()}, before the consent of "
            f"{consent.given_at.isoformat()}",
        )
    if not consent.electricity:
        return None, Problem(
            "not_in_scope", "the consent does not cover electricity (gas alone is not stored)"
        )
    # a partial interval (a meter swapped mid-interval, a gateway started) is the member's
    # granularity cut short, not a finer one
    partial = MeterFlag.PARTIAL_INTERVAL in reading.flags
    if not partial and (
        0 < reading.interval_s < consent.granularity_s
        or (reading.interval_s == 0 and consent.granularity_s > 0)
    ):
        return None, Problem(
            "finer_than_consent",
            f"a reading of {reading.interval_s} s, finer than the {consent.granularity_s} s the "
            f"member allowed: set the gateway's p1.interval_s to {consent.granularity_s}",
        )
    if reading.gas is not None and not consent.gas:
        reading = reading.model_copy(update={"gas": None})
    return reading, None
