"""Checks a decoded reading must pass before it is stored, each with a reason a person can act on.

The wire decoder (:func:`zonnewijk_wire.decode_batch`) already refuses what is not the
wire format (JSON, types, required fields, UTC timestamps). This module adds what the format
cannot know: physical ranges, the device's rating, the clock, the registry of gateways and
devices, and lifetime counters that must not go backwards unless the gateway flagged it.

Every check is a pure function returning ``None`` (fine) or a :class:`Problem` with a short,
stable ``reason`` (used as a metric label) and a ``detail`` for the operator. Late data (hours
or days old, replayed from a gateway's spool) is normal and passes; only readings older than
:attr:`ValidationLimits.max_age_s` are refused.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from collector.ingest.directory import (
    ConsentDirectory,
    DeviceDirectory,
    DeviceRecord,
    OpenDirectory,
)
from zonnewijk_wire import ReadingFlag, ReadingView

#: A decoded reading: the wire model or the collector's fast struct.
R = TypeVar("R", bound=ReadingView)


@dataclass(frozen=True)
class Problem:
    """Why a message or a reading is not stored."""

    reason: str
    detail: str


# --- limits -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationLimits:
    """Configurable bounds; the defaults suit Dutch residential and small commercial roofs."""

    #: How far a reading may lie in the future (gateway clock drift) [s].
    future_tolerance_s: float = 300.0
    #: How old a reading may be; older ones are refused (a gateway clock reset to 1970) [s].
    max_age_s: float = 90 * 86400.0
    #: Power may exceed the device's rating by this factor (short overload, meter tolerance) [-].
    rating_overload_factor: float = 1.2
    #: Plus this much, so tiny inverters are not refused for rounding [W].
    rating_slack_w: float = 50.0
    #: Night-time consumption an inverter may report as negative power [W].
    min_ac_power_w: float = -500.0
    #: Absolute bound when the device's rating is unknown [W].
    max_ac_power_w: float = 1_000_000.0
    #: Physical ranges per field, inclusive [field unit].
    ranges: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "ac_energy_wh": (0.0, 1e12),
            "ac_voltage_v": (0.0, 300.0),
            "grid_frequency_hz": (0.0, 70.0),
            "cabinet_temp_c": (-40.0, 125.0),
            "dc_voltage_v": (0.0, 1500.0),
            "dc_current_a": (-1.0, 100.0),
            "dc_power_w": (-500.0, 1_000_000.0),
        }
    )


# --- pure checks --------------------------------------------------------------------------------


def is_implausible_value(reason: str) -> bool:
    """Whether a rejection says a value is one no inverter produces (range, rating).

    Such refusals are stored as ``rejected_reading`` points for the fault detectors
    (``implausible_value``); refusals for the clock, the registry or the counter are not.
    """
    return reason == "power_above_rating" or reason.startswith("out_of_range_")


def check_timestamp(ts: datetime, now: datetime, limits: ValidationLimits) -> Problem | None:
    """Refuse readings from the future (beyond the tolerance) or older than the window.

    Parameters
    ----------
    ts
        Time of the reading, timezone-aware [UTC].
    now
        The collector's clock, timezone-aware [UTC].
    limits
        The tolerance and the window [s].
    """
    ahead_s = (ts - now).total_seconds()
    if ahead_s > limits.future_tolerance_s:
        return Problem(
            "future_timestamp",
            f"ts {ts.isoformat()} is {ahead_s:.0f} s ahead of the collector's clock "
            f"(tolerance {limits.future_tolerance_s:.0f} s): check the gateway's NTP sync",
        )
    age_s = -ahead_s
    if age_s > limits.max_age_s:
        return Problem(
            "too_old",
            f"ts {ts.isoformat()} is {timedelta(seconds=int(age_s))} old, window is "
            f"{timedelta(seconds=int(limits.max_age_s))}: a gateway clock reset, or raise "
            "--max-age if this backlog is real",
        )
    return None


#: Installation dates in the registry are local dates.
_LOCAL = ZoneInfo("Europe/Amsterdam")


def installation_start(installed_on: date) -> datetime:
    """The first moment of the installation day, local midnight in the Netherlands [UTC-aware]."""
    return datetime.combine(installed_on, time(0), tzinfo=_LOCAL)


def check_installed(ts: datetime, installed_on: date | None) -> Problem | None:
    """Refuse a reading stamped before its device was installed (a gateway clock at 1970 or
    at a stale fake-hwclock time, or a wrong date in the registry).

    Parameters
    ----------
    ts
        Time of the reading [UTC].
    installed_on
        The registry's installation date (local), None when unknown.
    """
    if installed_on is None or ts >= installation_start(installed_on):
        return None
    return Problem(
        "before_installation",
        f"ts {ts.isoformat()} is before the device's installation on {installed_on.isoformat()}: "
        "a gateway clock that was not synchronised, or a wrong installed_on in the registry",
    )


def is_time_unknown(flags: Iterable[ReadingFlag]) -> bool:
    """Whether the gateway says the reading's time is unknown (polled in a boot whose clock
    never synced): it is stored apart, never judged by its time, never billed."""
    return ReadingFlag.TIME_UNKNOWN in flags


def check_range(name: str, value: float, low: float, high: float) -> Problem | None:
    """Refuse a value outside its physical range.

    Parameters
    ----------
    name
        Field name, carrying its unit (``ac_voltage_v``).
    value
        The value [field unit].
    low, high
        Inclusive bounds [field unit].
    """
    if not math.isfinite(value) or value < low or value > high:
        return Problem(
            f"out_of_range_{name}",
            f"{name}={value!r} outside the plausible range [{low:g}, {high:g}]",
        )
    return None


def max_ac_power_w(rated_ac_power_w: float | None, limits: ValidationLimits) -> float:
    """The highest AC power accepted from a device.

    Parameters
    ----------
    rated_ac_power_w
        The device's AC rating from the registry, None when unknown [W].
    limits
        Overload factor [-] and slack [W].
    """
    if rated_ac_power_w is None or rated_ac_power_w <= 0:
        return limits.max_ac_power_w
    return rated_ac_power_w * limits.rating_overload_factor + limits.rating_slack_w


def check_ac_power(
    ac_power_w: float, rated_ac_power_w: float | None, limits: ValidationLimits
) -> Problem | None:
    """Refuse AC power beyond the device's rating (with margin) or implausibly negative.

    Parameters
    ----------
    ac_power_w
        Reported AC active power [W].
    rated_ac_power_w
        The device's rating, None when unknown [W].
    limits
        Margins [W], [-].
    """
    if not math.isfinite(ac_power_w):
        return Problem("out_of_range_ac_power_w", f"ac_power_w={ac_power_w!r} is not finite")
    high = max_ac_power_w(rated_ac_power_w, limits)
    if ac_power_w > high:
        rating = f"rating {rated_ac_power_w:g} W" if rated_ac_power_w else "no rating known"
        return Problem(
            "power_above_rating",
            f"ac_power_w={ac_power_w:g} exceeds {high:g} W ({rating}): a bad read or a wrong "
            "rating in the registry",
        )
    if ac_power_w < limits.min_ac_power_w:
        return Problem(
            "out_of_range_ac_power_w",
            f"ac_power_w={ac_power_w:g} below {limits.min_ac_power_w:g} W",
        )
    return None


def check_counter(
    previous: tuple[datetime, float] | None,
    ts: datetime,
    ac_energy_wh: float,
    flags: Iterable[ReadingFlag],
) -> Problem | None:
    """Refuse a lifetime counter lower than the device's previous one, unless flagged.

    Only readings later than the previous one are compared; a late reading from a spool is
    not judged against a newer one.

    Parameters
    ----------
    previous
        Time [UTC] and counter [Wh] of the latest stored reading of this device, or None.
    ts
        Time of this reading [UTC].
    ac_energy_wh
        This reading's lifetime counter [Wh].
    flags
        The gateway's quality flags; ``counter_backwards`` admits a known step back.
    """
    if previous is None:
        return None
    prev_ts, prev_wh = previous
    if ts <= prev_ts or ac_energy_wh >= prev_wh:
        return None
    if ReadingFlag.COUNTER_BACKWARDS in flags:
        return None
    return Problem(
        "counter_backwards",
        f"ac_energy_wh fell from {prev_wh:g} Wh ({prev_ts.isoformat()}) to {ac_energy_wh:g} Wh "
        "without the counter_backwards flag: a bad read, or a replaced/reset inverter "
        "(register the replacement)",
    )


def check_reading(
    reading: ReadingView,
    *,
    now: datetime,
    record: DeviceRecord | None,
    previous_counter: tuple[datetime, float] | None,
    limits: ValidationLimits,
) -> Problem | None:
    """All checks of one decoded reading; the first problem found, or None.

    Parameters
    ----------
    reading
        The decoded reading.
    now
        The collector's clock [UTC].
    record
        The registry's record of the device (None: unknown device).
    previous_counter
        Time [UTC] and counter [Wh] of the device's latest stored reading.
    limits
        Bounds.
    """
    if record is None:
        return Problem(
            "unknown_device",
            f"device {reading.device_id!r} is not registered on this gateway: "
            "add it to the registry (or fix the gateway's configuration)",
        )
    time_unknown = is_time_unknown(reading.flags)
    if not time_unknown:  # a time known to be unknown is neither in the future nor too old
        problem = check_timestamp(reading.ts, now, limits) or check_installed(
            reading.ts, record.installed_on
        )
        if problem:
            return problem
    if reading.ac_power_w is not None:
        problem = check_ac_power(reading.ac_power_w, record.rated_ac_power_w, limits)
        if problem:
            return problem
    ranges = limits.ranges
    for name in ("ac_energy_wh", "ac_voltage_v", "grid_frequency_hz", "cabinet_temp_c"):
        value = getattr(reading, name)
        if value is not None and name in ranges:
            problem = check_range(name, value, *ranges[name])
            if problem:
                return problem
    for dc in reading.dc:
        for name in ("dc_voltage_v", "dc_current_a", "dc_power_w"):
            value = getattr(dc, name)
            if value is not None and name in ranges:
                problem = check_range(name, value, *ranges[name])
                if problem:
                    return Problem(problem.reason, f"mppt {dc.mppt}: {problem.detail}")
    if reading.ac_energy_wh is not None and not time_unknown:
        problem = check_counter(previous_counter, reading.ts, reading.ac_energy_wh, reading.flags)
        if problem:
            return problem
    return None


_LARGEST = sys.float_info.max


@dataclass(frozen=True)
class QuickBounds:
    """:class:`ValidationLimits` flattened for :func:`quick_accept` [field units, s]."""

    future_tolerance_s: float
    max_age_s: float
    min_ac_power_w: float
    ac_energy_wh: tuple[float, float]
    ac_voltage_v: tuple[float, float]
    grid_frequency_hz: tuple[float, float]
    cabinet_temp_c: tuple[float, float]
    dc_voltage_v: tuple[float, float]
    dc_current_a: tuple[float, float]
    dc_power_w: tuple[float, float]

    @classmethod
    def of(cls, limits: ValidationLimits) -> QuickBounds:
        def finite(name: str) -> tuple[float, float]:
            # A field without a range accepts any finite value here (the reference does not
            # look at it); infinite bounds are narrowed so infinity is never waved through.
            low, high = limits.ranges.get(name, (-_LARGEST, _LARGEST))
            return max(low, -_LARGEST), min(high, _LARGEST)

        return cls(
            limits.future_tolerance_s,
            limits.max_age_s,
            max(limits.min_ac_power_w, -_LARGEST),
            *(
                finite(name)
                for name in (
                    "ac_energy_wh",
                    "ac_voltage_v",
                    "grid_frequency_hz",
                    "cabinet_temp_c",
                    "dc_voltage_v",
                    "dc_current_a",
                    "dc_power_w",
                )
            ),
        )


def quick_accept(
    reading: ReadingView,
    now: datetime,
    previous_counter: tuple[datetime, float] | None,
    max_power_w: float,
    bounds: QuickBounds,
    installed_from: datetime | None = None,
) -> bool:
    """True only for a reading :func:`check_reading` accepts: the common case in few steps.

    False means "ask :func:`check_reading`", which decides and gives the reason; it is never
    the only judge of a refusal. Comparisons are written so NaN fails them.

    Parameters
    ----------
    reading
        A reading of a registered device.
    now
        The collector's clock [UTC].
    previous_counter
        Time [UTC] and counter [Wh] of the device's latest stored reading, or None.
    max_power_w
        :func:`max_ac_power_w` of the device [W].
    bounds
        The limits [field units, s].
    installed_from
        :func:`installation_start` of the device, None when unknown [UTC].
    """
    r = reading
    ahead_s = (r.ts - now).total_seconds()  # the formula of check_timestamp
    if ahead_s > bounds.future_tolerance_s or -ahead_s > bounds.max_age_s:
        return False
    if r.flags and ReadingFlag.TIME_UNKNOWN in r.flags:
        return False  # check_reading skips the time checks for it
    if installed_from is not None and r.ts < installed_from:
        return False
    p = r.ac_power_w
    # min(): an infinite rating must not wave infinite power through.
    if p is not None and not bounds.min_ac_power_w <= p <= min(max_power_w, _LARGEST):
        return False
    energy_wh = r.ac_energy_wh
    if energy_wh is not None:
        low, high = bounds.ac_energy_wh
        if not low <= energy_wh <= high:
            return False
        if (
            previous_counter is not None
            and r.ts > previous_counter[0]
            and energy_wh < previous_counter[1]
        ):
            return False  # check_counter decides (the counter_backwards flag)
    for value, (low, high) in (
        (r.ac_voltage_v, bounds.ac_voltage_v),
        (r.grid_frequency_hz, bounds.grid_frequency_hz),
        (r.cabinet_temp_c, bounds.cabinet_temp_c),
    ):
        if value is not None and not low <= value <= high:
            return False
    for dc in r.dc:
        for value, (low, high) in (
            (dc.dc_voltage_v, bounds.dc_voltage_v),
            (dc.dc_current_a, bounds.dc_current_a),
            (dc.dc_power_w, bounds.dc_power_w),
        ):
            if value is not None and not low <= value <= high:
                return False
    return True


@dataclass
class CounterMemory:
    """The latest lifetime counter seen per (gateway, device), for :func:`check_counter`.

    Thread-safe. Seeded from InfluxDB at start so a restart does not forget.
    """

    _last: dict[tuple[str, str], tuple[datetime, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, gateway_id: str, device_id: str) -> tuple[datetime, float] | None:
        with self._lock:
            return self._last.get((gateway_id, device_id))

    def update(self, gateway_id: str, device_id: str, ts: datetime, ac_energy_wh: float) -> None:
        """Remember a stored counter if it is the device's latest."""
        with self._lock:
            remember_counter(self._last, (gateway_id, device_id), ts, ac_energy_wh)

    def __len__(self) -> int:
        with self._lock:
            return len(self._last)

    @contextmanager
    def locked(self) -> Iterator[dict[tuple[str, str], tuple[datetime, float]]]:
        """The memory itself, locked for a whole batch (one lock instead of two per reading);
        update it with :func:`remember_counter`."""
        with self._lock:
            yield self._last


def remember_counter(
    last: dict[tuple[str, str], tuple[datetime, float]],
    key: tuple[str, str],
    ts: datetime,
    ac_energy_wh: float,
) -> None:
    """Keep (ts, counter) for ``key`` if it is the device's latest [UTC, Wh]."""
    current = last.get(key)
    if current is None or ts >= current[0]:
        last[key] = (ts, ac_energy_wh)


@dataclass
class ReadingValidator:
    """Applies :func:`check_reading` to decoded readings, with the registry and counter memory."""

    directory: DeviceDirectory = field(default_factory=OpenDirectory)
    limits: ValidationLimits = field(default_factory=ValidationLimits)
    counters: CounterMemory = field(default_factory=CounterMemory)
    #: Members' consents for their meters (issue 17): with it, a meter reading is stored only
    #: under a recorded opt-in (:mod:`collector.ingest.consent`); without it (demo, tests) a
    #: meter only has to be registered in ``directory``.
    consents: ConsentDirectory | None = None

    def check_gateway(self, gateway_id: str) -> Problem | None:
        if self.directory.gateway_known(gateway_id):
            return None
        return Problem(
            "unknown_gateway",
            f"gateway {gateway_id!r} is not in the registry: register it "
            "(zonnewijk gateways add) or revoke its broker credentials",
        )

    def validate(
        self, gateway_id: str, readings: Iterable[R], now: datetime
    ) -> tuple[list[R], list[tuple[int, R, Problem]]]:
        """Split readings into good ones and (index, reading, problem) for the rest.

        Good readings' counters are remembered at once, so the next reading of the same device,
        in this batch or a later one, is compared with them. Each device is looked up once per
        call; :func:`quick_accept` passes the common reading, :func:`check_reading` judges the
        rest.
        """
        limits = self.limits
        bounds = QuickBounds.of(limits)
        devices: dict[str, tuple[DeviceRecord | None, float, datetime | None]] = {}
        good: list[R] = []
        bad: list[tuple[int, R, Problem]] = []
        with self.counters.locked() as last:
            for index, reading in enumerate(readings):
                device_id = reading.device_id
                known = devices.get(device_id)
                if known is None:
                    record = self.directory.device(gateway_id, device_id)
                    rated = record.rated_ac_power_w if record is not None else None
                    installed = record.installed_on if record is not None else None
                    known = devices[device_id] = (
                        record,
                        max_ac_power_w(rated, limits),
                        None if installed is None else installation_start(installed),
                    )
                record, max_power_w, installed_from = known
                key = (gateway_id, device_id)
                previous = last.get(key)
                if record is None or not quick_accept(
                    reading, now, previous, max_power_w, bounds, installed_from
                ):
                    problem = check_reading(
                        reading,
                        now=now,
                        record=record,
                        previous_counter=previous,
                        limits=limits,
                    )
                    if problem is not None:
                        bad.append((index, reading, problem))
                        continue
                good.append(reading)
                if reading.ac_energy_wh is not None and not is_time_unknown(reading.flags):
                    remember_counter(last, key, reading.ts, reading.ac_energy_wh)
        return good, bad
