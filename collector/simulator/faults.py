"""Faults injected into the simulation, and the ground truth that records them.

A :class:`FaultSchedule` is drawn from the fleet seed and the simulated window; every fault is
one :class:`Fault` row (site, device, gateway, type, start, end, detail) written to
``ground_truth.csv`` so fault-detection code can be scored against it.

Types and what the simulator does during ``[start, end)``:

``offline``
    The inverter is off (tripped AC breaker): no readings, no production.
``fault_state``
    The inverter reports its vendor fault state (SunSpec St 7) with event bits; it produces
    nothing, the counter holds.
``dead_string``
    One MPPT input carries no current (blown string fuse); AC power drops accordingly.
``degradation``
    Soiling: output falls gradually by up to ``loss`` until cleaned at ``end``.
``frozen``
    The device returns stale registers: every reported value repeats; the true counter keeps
    running, so it jumps when the values thaw.
``comms_glitch``
    One reading is garbage: ``kind`` is ``sentinel`` (NaN/0xFFFF, which the gateway leaves out
    and flags), ``spike_65535`` (power reads 65535 W), or ``counter_spike`` (the counter reads
    100 times too high; the gateway flags ``counter_jump`` and the next reading
    ``counter_backwards``), or ``garbage`` (voltage, frequency and temperature read as
    all-ones registers: 6553.5 V, 655.35 Hz, -3276.8 °C, which no sentinel rule catches).
``counter_reset``
    The inverter is replaced; from ``start`` the same device id reports a new counter that
    starts near 0 (``end`` equals ``start``).
``gateway_outage``
    The gateway loses its uplink; its readings are spooled and arrive at ``end`` flagged
    ``replayed``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from collector.simulator.fleet import Fleet

FAULT_TYPES: tuple[str, ...] = (
    "offline",
    "fault_state",
    "dead_string",
    "degradation",
    "frozen",
    "comms_glitch",
    "counter_reset",
    "gateway_outage",
)
#: Expected faults per site per year, by type.
DEFAULT_RATES_PER_SITE_YEAR: dict[str, float] = {
    "offline": 0.6,
    "fault_state": 0.4,
    "dead_string": 0.15,
    "degradation": 0.25,
    "frozen": 0.8,
    "comms_glitch": 3.0,
    "counter_reset": 0.08,
    "gateway_outage": 0.8,
}
#: SunSpec Evt1 bits a fault can raise, with their normalised names.
FAULT_EVENTS: tuple[tuple[int, str], ...] = (
    (0, "ground_fault"),
    (4, "grid_disconnect"),
    (7, "over_temperature"),
    (10, "ac_over_voltage"),
    (12, "blown_string_fuse"),
)
GLITCH_KINDS: tuple[str, ...] = ("sentinel", "spike_65535", "counter_spike", "garbage")
GROUND_TRUTH_COLUMNS = ("site_id", "device_id", "gateway_id", "type", "start", "end", "detail")


@dataclass(frozen=True)
class Fault:
    """One injected fault; ``start`` inclusive, ``end`` exclusive, UTC."""

    site_id: str
    device_id: str
    gateway_id: str
    type: str
    start: datetime
    end: datetime
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in FAULT_TYPES:
            raise ValueError(f"unknown fault type {self.type!r}; known: {', '.join(FAULT_TYPES)}")
        if self.end < self.start:
            raise ValueError(f"fault {self.type} on {self.device_id} ends before it starts")

    def row(self) -> dict[str, str]:
        return {
            "site_id": self.site_id,
            "device_id": self.device_id,
            "gateway_id": self.gateway_id,
            "type": self.type,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "detail": json.dumps(self.detail, sort_keys=True),
        }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FaultSchedule:
    """All faults of one simulation."""

    faults: tuple[Fault, ...] = ()

    def of_type(self, fault_type: str) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.type == fault_type)

    def for_site(self, site_id: str) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.site_id == site_id)

    def __len__(self) -> int:
        return len(self.faults)


def write_ground_truth(faults: Iterable[Fault], path: Path) -> None:
    """Write the ground truth as CSV (one fault per row, times ISO 8601 UTC)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=GROUND_TRUTH_COLUMNS)
        writer.writeheader()
        for fault in sorted(faults, key=lambda f: (f.start, f.site_id, f.type)):
            writer.writerow(fault.row())


def read_ground_truth(path: Path) -> FaultSchedule:
    """Read a ground-truth CSV written by :func:`write_ground_truth`."""
    faults = []
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                faults.append(
                    Fault(
                        site_id=row["site_id"],
                        device_id=row["device_id"],
                        gateway_id=row["gateway_id"],
                        type=row["type"],
                        start=datetime.fromisoformat(row["start"]),
                        end=datetime.fromisoformat(row["end"]),
                        detail=json.loads(row["detail"] or "{}"),
                    )
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: bad ground-truth row: {exc}") from None
    return FaultSchedule(tuple(faults))


def _daytime(
    rng: np.random.Generator, day_start: datetime, first_hour: float, last_hour: float
) -> datetime:
    """A random time between two UTC hours of a day, on a whole minute."""
    minutes = int(rng.uniform(first_hour, last_hour) * 60)
    return day_start + timedelta(minutes=minutes)


def generate_faults(
    fleet: Fleet,
    start: datetime,
    end: datetime,
    rates_per_site_year: dict[str, float] | None = None,
    types: Sequence[str] = FAULT_TYPES,
    interval_s: int = 60,
) -> FaultSchedule:
    """Draw the faults of a simulated window from the fleet seed.

    Parameters
    ----------
    fleet : Fleet
        The simulated sites [-]
    start, end : datetime
        The simulated window, UTC [-]
    rates_per_site_year : dict, optional
        Expected faults per site per year by type [1/year]
    types : sequence of str
        Fault types to draw [-]
    interval_s : int
        Reading interval; fault boundaries snap to the reading grid [s]
    """
    rates = {**DEFAULT_RATES_PER_SITE_YEAR, **(rates_per_site_year or {})}
    unknown = set(types) - set(FAULT_TYPES)
    if unknown:
        raise ValueError(f"unknown fault types {sorted(unknown)}; known: {', '.join(FAULT_TYPES)}")
    years = (end - start).total_seconds() / (365.0 * 86400.0)
    days = max(int((end - start).total_seconds() // 86400), 1)
    base = datetime(start.year, start.month, start.day, tzinfo=UTC)
    rng = np.random.default_rng([fleet.seed, int(start.timestamp()), int(end.timestamp()), 0xFA17])
    faults: list[Fault] = []
    for site in fleet.sites:
        for fault_type in FAULT_TYPES:
            count = int(rng.poisson(rates.get(fault_type, 0.0) * years))
            if fault_type not in types:
                continue
            if fault_type == "dead_string" and site.mppt_count < 2:
                continue
            for _ in range(count):
                day_start = base + timedelta(days=int(rng.integers(days)))
                fault = _one_fault(rng, fault_type, day_start, site.mppt_count)
                if fault is None:
                    continue
                f_start, f_end, detail = fault
                f_start = _snap(max(f_start, start), start, interval_s)
                if fault_type == "comms_glitch":
                    f_end = f_start + timedelta(seconds=interval_s)
                elif fault_type == "counter_reset":
                    f_end = f_start
                else:
                    f_end = max(
                        _snap(f_end, start, interval_s), f_start + timedelta(seconds=interval_s)
                    )
                if f_start >= end:
                    continue
                faults.append(
                    Fault(
                        site.site_id,
                        site.device_id,
                        site.gateway_id,
                        fault_type,
                        f_start,
                        f_end,
                        detail,
                    )
                )
    faults.sort(key=lambda f: (f.start, f.site_id))
    return FaultSchedule(tuple(faults))


def _snap(value: datetime, origin: datetime, interval_s: int) -> datetime:
    """The first reading time at or after ``value`` on the grid ``origin + k * interval_s``."""
    steps = -(-int((value - origin).total_seconds()) // interval_s)
    return origin + timedelta(seconds=steps * interval_s)


def _one_fault(
    rng: np.random.Generator, fault_type: str, day_start: datetime, mppt_count: int
) -> tuple[datetime, datetime, dict[str, Any]] | None:
    if fault_type == "offline":
        begin = _daytime(rng, day_start, 0.0, 24.0)
        return begin, begin + timedelta(hours=float(rng.uniform(2.0, 72.0))), {}
    if fault_type == "fault_state":
        begin = _daytime(rng, day_start, 8.0, 14.0)
        bit, name = FAULT_EVENTS[int(rng.integers(len(FAULT_EVENTS)))]
        hours = float(rng.uniform(3.0, 96.0))
        return begin, begin + timedelta(hours=hours), {"event": name, "evt1_bit": bit}
    if fault_type == "dead_string":
        begin = _daytime(rng, day_start, 8.0, 14.0)
        mppt = int(rng.integers(1, mppt_count + 1))
        return begin, begin + timedelta(days=float(rng.uniform(10.0, 60.0))), {"mppt": mppt}
    if fault_type == "degradation":
        begin = day_start
        loss = round(float(rng.uniform(0.10, 0.25)), 3)
        return begin, begin + timedelta(days=int(rng.integers(30, 120))), {"loss": loss}
    if fault_type == "frozen":
        begin = _daytime(rng, day_start, 8.5, 12.0)
        return begin, begin + timedelta(minutes=int(rng.integers(60, 240))), {}
    if fault_type == "comms_glitch":
        begin = _daytime(rng, day_start, 9.0, 14.0)
        kind = GLITCH_KINDS[int(rng.integers(len(GLITCH_KINDS)))]
        return begin, begin + timedelta(minutes=1), {"kind": kind}
    if fault_type == "counter_reset":
        begin = _daytime(rng, day_start, 9.0, 14.0)
        return begin, begin, {"new_counter_wh": int(rng.integers(0, 40))}
    if fault_type == "gateway_outage":
        begin = _daytime(rng, day_start, 0.0, 24.0)
        return begin, begin + timedelta(hours=float(rng.uniform(1.0, 48.0))), {}
    return None
