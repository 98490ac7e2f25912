"""Checks a grid-meter reading must pass before it is stored (P1 smart meters, SunSpec meters).

As for inverters (:mod:`collector.ingest.validate`): the member's consent
(:mod:`collector.ingest.consent`, when the validator has the registry's consents; otherwise
the meter must be registered on the gateway), the clock, physical ranges, and
lifetime counters (import and export apart) that must not go backwards unless the gateway flagged
a meter change. Pure functions returning ``None`` or a :class:`~collector.ingest.validate.Problem`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from collector.ingest.consent import check_consent
from collector.ingest.directory import DeviceRecord
from collector.ingest.validate import (
    Problem,
    ReadingValidator,
    ValidationLimits,
    check_installed,
    check_range,
    check_timestamp,
    remember_counter,
)
from zonnewijk_wire import MeterFlag, MeterReading

__all__ = ["METER_RANGES", "check_meter_counter", "check_meter_reading", "validate_meter_readings"]

#: Physical ranges of a home's grid connection, inclusive [field unit]. 3 x 80 A at 230 V is
#: 55 kW; a small business connection stays below 1 MW.
METER_RANGES: dict[str, tuple[float, float]] = {
    "import_energy_wh": (0.0, 1e12),
    "export_energy_wh": (0.0, 1e12),
    "import_energy_t1_wh": (0.0, 1e12),
    "import_energy_t2_wh": (0.0, 1e12),
    "export_energy_t1_wh": (0.0, 1e12),
    "export_energy_t2_wh": (0.0, 1e12),
    "import_power_w": (0.0, 1_000_000.0),
    "export_power_w": (0.0, 1_000_000.0),
    "net_power_min_w": (-1_000_000.0, 1_000_000.0),
    "net_power_max_w": (-1_000_000.0, 1_000_000.0),
    "voltage_v": (0.0, 300.0),
    "current_a": (-200.0, 200.0),
}

#: The lifetime counters compared with the meter's previous reading, and their memory keys.
COUNTERS = ("import_energy_wh", "export_energy_wh")


def counter_key(device_id: str, counter: str) -> str:
    """The counter memory's device key of one of a meter's counters."""
    return f"{device_id}#{counter}"


def check_meter_counter(
    previous: tuple[datetime, float] | None,
    ts: datetime,
    name: str,
    value_wh: float,
    flags: Iterable[MeterFlag],
) -> Problem | None:
    """Refuse a lifetime counter lower than the meter's previous one, unless a change is flagged.

    Parameters
    ----------
    previous
        Time [UTC] and counter [Wh] of the latest stored reading of this counter, or None.
    ts
        Time of this reading [UTC].
    name
        The counter (``import_energy_wh`` or ``export_energy_wh``).
    value_wh
        This reading's counter [Wh].
    flags
        The gateway's flags; ``meter_changed`` admits a new series.
    """
    if previous is None:
        return None
    prev_ts, prev_wh = previous
    if ts <= prev_ts or value_wh >= prev_wh or MeterFlag.METER_CHANGED in flags:
        return None
    return Problem(
        "counter_backwards",
        f"{name} fell from {prev_wh:g} Wh ({prev_ts.isoformat()}) to {value_wh:g} Wh without "
        "the meter_changed flag: a bad telegram, or a swapped meter the gateway did not notice",
    )


def check_meter_reading(
    reading: MeterReading,
    *,
    now: datetime,
    record: DeviceRecord | None,
    previous: dict[str, tuple[datetime, float] | None],
    limits: ValidationLimits,
) -> Problem | None:
    """All checks of one meter reading; the first problem found, or None.

    Parameters
    ----------
    reading
        The decoded reading.
    now
        The collector's clock [UTC].
    record
        The registry's record of the meter (None: not registered on this gateway).
    previous
        Per counter name, the time [UTC] and value [Wh] of its latest stored reading.
    limits
        Clock tolerance and window.
    """
    if record is None:
        return Problem(
            "unknown_device",
            f"meter {reading.device_id!r} is not registered on this gateway: register it with "
            "the member's consent (or fix the gateway's configuration)",
        )
    if MeterFlag.TIME_UNKNOWN in reading.flags:
        return Problem(
            "time_unknown",
            "the gateway polled this meter reading while its clock was not synchronised, in a "
            "boot that ended before it synced: its time is unknown, so it is kept out of the "
            "meter series (the dead letter keeps the original; docs/clock.md)",
        )
    problem = check_timestamp(reading.ts, now, limits) or check_installed(
        reading.ts, record.installed_on
    )
    if problem:
        return problem
    for name, (low, high) in METER_RANGES.items():
        value = getattr(reading, name, None)
        if value is not None and (problem := check_range(name, value, low, high)):
            return problem
    for phase in reading.phases:
        for name in ("import_power_w", "export_power_w", "voltage_v", "current_a"):
            value = getattr(phase, name)
            if value is not None and (problem := check_range(name, value, *METER_RANGES[name])):
                return Problem(problem.reason, f"{phase.phase}: {problem.detail}")
    for name in COUNTERS:
        value = getattr(reading, name)
        if value is not None:
            problem = check_meter_counter(
                previous.get(name), reading.ts, name, value, reading.flags
            )
            if problem:
                return problem
    return None


def validate_meter_readings(
    validator: ReadingValidator,
    gateway_id: str,
    readings: Iterable[MeterReading],
    now: datetime,
) -> tuple[list[MeterReading], list[tuple[int, MeterReading, Problem]]]:
    """Split meter readings into good ones and (index, reading, problem) for the rest.

    Uses the validator's registry, limits and counter memory (each meter counter under its own
    key), so a meter's counters are compared across messages as an inverter's are.
    """
    good: list[MeterReading] = []
    bad: list[tuple[int, MeterReading, Problem]] = []
    consents = validator.consents
    with validator.counters.locked() as last:
        for index, reading in enumerate(readings):
            if consents is not None:  # a meter is registered by its member's consent
                allowed, problem = check_consent(
                    reading, consents.meter_consent(gateway_id, reading.device_id), now=now
                )
                if allowed is None:
                    assert problem is not None
                    bad.append((index, reading, problem))
                    continue
                reading = allowed
                record: DeviceRecord | None = DeviceRecord(gateway_id, reading.device_id)
            else:
                record = validator.directory.device(gateway_id, reading.device_id)
            keys = {name: (gateway_id, counter_key(reading.device_id, name)) for name in COUNTERS}
            problem = check_meter_reading(
                reading,
                now=now,
                record=record,
                previous={name: last.get(key) for name, key in keys.items()},
                limits=validator.limits,
            )
            if problem is not None:
                bad.append((index, reading, problem))
                continue
            good.append(reading)
            for name, key in keys.items():
                value = getattr(reading, name)
                if value is not None:
                    remember_counter(last, key, reading.ts, value)
    return good, bad
