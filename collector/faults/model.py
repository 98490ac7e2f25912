"""Data the fault detectors work on and what they find.

The detectors are pure functions over :class:`FleetSeries` (a window of readings of the whole
fleet on a regular time grid, as numpy arrays) or :class:`FleetDaily` (daily energy per device).
Both are built at the edges: from InfluxDB (:mod:`collector.faults.influx_source`) in the
server, straight from the simulator's arrays in ``bench/faults.py``.

A detector returns a :class:`Detection`: for every device and time step whether its condition
holds, plus the numbers that show why (evidence). :func:`collector.faults.episodes.findings`
turns that into :class:`Finding` objects, which the alert lifecycle (:mod:`collector.faults.alerts`)
opens, keeps and resolves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

import numpy as np
import numpy.typing as npt

from zonnewijk_wire import InverterState

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


class FaultKind(StrEnum):
    """What a finding is about; an alert is unique per (device, kind) while open."""

    GATEWAY_OFFLINE = "gateway_offline"
    DEVICE_OFFLINE = "device_offline"
    NO_PRODUCTION = "no_production"
    FAULT_STATE = "fault_state"
    UNDERPERFORMANCE = "underperformance"
    STRING_IMBALANCE = "string_imbalance"
    FROZEN_VALUE = "frozen_value"
    COUNTER_ANOMALY = "counter_anomaly"
    IMPLAUSIBLE_VALUE = "implausible_value"
    #: Found in files by ``faults check`` (:mod:`collector.faults.series_checks`).
    GAP = "gap"
    OUTLIER = "outlier"
    CLIPPING = "clipping"
    NIGHT_PRODUCTION = "night_production"


class Severity(IntEnum):
    """How urgent an alert is; higher is worse."""

    INFO = 10
    WARNING = 20
    CRITICAL = 30


#: Default severity per kind: losing production entirely is critical, losing part is a warning.
DEFAULT_SEVERITY: dict[FaultKind, Severity] = {
    FaultKind.GATEWAY_OFFLINE: Severity.CRITICAL,
    FaultKind.DEVICE_OFFLINE: Severity.CRITICAL,
    FaultKind.NO_PRODUCTION: Severity.CRITICAL,
    FaultKind.FAULT_STATE: Severity.CRITICAL,
    FaultKind.UNDERPERFORMANCE: Severity.WARNING,
    FaultKind.STRING_IMBALANCE: Severity.WARNING,
    FaultKind.FROZEN_VALUE: Severity.WARNING,
    FaultKind.COUNTER_ANOMALY: Severity.INFO,
    FaultKind.IMPLAUSIBLE_VALUE: Severity.INFO,
    FaultKind.GAP: Severity.WARNING,
    FaultKind.OUTLIER: Severity.INFO,
    FaultKind.CLIPPING: Severity.INFO,
    FaultKind.NIGHT_PRODUCTION: Severity.WARNING,
}

#: Inverter states in a fixed order; ``FleetSeries.state`` holds indexes into it (-1: missing).
STATE_ORDER: tuple[InverterState, ...] = tuple(InverterState)
STATE_CODE: dict[InverterState, int] = {s: i for i, s in enumerate(STATE_ORDER)}
MISSING_STATE = -1

#: Normalised event names in SunSpec Evt1 bit order (``gateway_firmware/sunspec/glossary.py``);
#: ``FleetSeries.event_bits`` holds them as a bitmask, whatever the inverter family.
EVENT_NAMES: tuple[str, ...] = (
    "ground_fault",
    "dc_over_voltage",
    "ac_disconnect",
    "dc_disconnect",
    "grid_disconnect",
    "cabinet_open",
    "manual_shutdown",
    "over_temperature",
    "over_frequency",
    "under_frequency",
    "ac_over_voltage",
    "ac_under_voltage",
    "blown_string_fuse",
    "under_temperature",
    "memory_loss",
    "hardware_test_failure",
)
EVENT_BIT: dict[str, int] = {name: 1 << i for i, name in enumerate(EVENT_NAMES)}


def event_mask(names: tuple[str, ...] | list[str]) -> int:
    """The bitmask of normalised event names; unknown names are ignored (counted by callers)."""
    mask = 0
    for name in names:
        mask |= EVENT_BIT.get(name, 0)
    return mask


def event_names(mask: int) -> tuple[str, ...]:
    """The normalised event names set in a bitmask."""
    return tuple(name for name, bit in EVENT_BIT.items() if mask & bit)


@dataclass(frozen=True)
class FleetSeries:
    """A window of the fleet's readings on a regular time grid.

    Parameters
    ----------
    times
        Start of each time step, UTC, ``datetime64[s]``, shape (T,), strictly increasing.
    step_s
        Length of a time step [s].
    device_ids, gateway_ids
        One entry per device (D); the gateway each device is read through.
    kwp
        Installed peak power per device, shape (D,) [kWp].
    ac_rating_w
        AC rating per device, shape (D,) [W].
    ac_power_w
        AC power, shape (D, T), NaN where no reading arrived [W].
    ac_energy_wh
        Lifetime AC energy counter, shape (D, T), NaN where missing [Wh].
    state
        Index into :data:`STATE_ORDER`, shape (D, T), -1 where missing.
    event_bits
        Bitmask of :data:`EVENT_NAMES`, shape (D, T), 0 where none or missing.
    dc_power_w
        Per-MPPT DC power, shape (D, M, T), NaN where missing or the MPPT does not exist [W].
    gateway_seen
        Whether anything (reading or status heartbeat) arrived from each device's gateway in
        the step, shape (D, T). Lets the offline detector tell a dead gateway from a dead
        inverter behind a live one.
    sun_elevation_deg
        Apparent solar elevation over the district at the middle of each step, shape (T,) [deg].
    expected
        Whether each device should report at each step (installed and not yet removed, from the
        registry), shape (D, T); None: always.
    ac_voltage_v
        AC voltage, shape (D, T), NaN where missing; optional. Stale registers repeat it
        exactly, a live grid never does, which makes frozen values unmistakable [V].
    rejected
        Whether a reading of the device arrived in the step but the collector refused it for
        a value no inverter produces (out of range, above the rating; stored as
        ``rejected_reading``), shape (D, T); optional. Such a reading is missing from the
        other arrays, as it is from the store.
    """

    times: npt.NDArray[np.datetime64]
    step_s: int
    device_ids: tuple[str, ...]
    gateway_ids: tuple[str, ...]
    kwp: FloatArray
    ac_rating_w: FloatArray
    ac_power_w: FloatArray
    ac_energy_wh: FloatArray
    state: IntArray
    event_bits: IntArray
    dc_power_w: FloatArray
    gateway_seen: BoolArray
    sun_elevation_deg: FloatArray
    expected: BoolArray | None = None
    ac_voltage_v: FloatArray | None = None
    rejected: BoolArray | None = None

    def __post_init__(self) -> None:
        d, t = len(self.device_ids), len(self.times)
        if len(self.gateway_ids) != d:
            raise ValueError(f"gateway_ids has {len(self.gateway_ids)} entries for {d} devices")
        for name in ("kwp", "ac_rating_w"):
            if getattr(self, name).shape != (d,):
                raise ValueError(f"{name} must have shape ({d},), got {getattr(self, name).shape}")
        for name in ("ac_power_w", "ac_energy_wh", "state", "event_bits", "gateway_seen"):
            if getattr(self, name).shape != (d, t):
                raise ValueError(
                    f"{name} must have shape ({d}, {t}), got {getattr(self, name).shape}"
                )
        if self.dc_power_w.ndim != 3 or self.dc_power_w.shape[::2] != (d, t):
            raise ValueError(
                f"dc_power_w must have shape ({d}, M, {t}), got {self.dc_power_w.shape}"
            )
        for name in ("expected", "ac_voltage_v", "rejected"):
            value = getattr(self, name)
            if value is not None and value.shape != (d, t):
                raise ValueError(f"{name} must have shape ({d}, {t}), got {value.shape}")
        if self.sun_elevation_deg.shape != (t,):
            raise ValueError(f"sun_elevation_deg must have shape ({t},)")
        if self.step_s <= 0:
            raise ValueError("step_s must be positive")
        if np.any(self.kwp <= 0):
            raise ValueError("every device needs a positive kwp")

    @property
    def present(self) -> BoolArray:
        """Whether a reading of each device arrived in each step, shape (D, T)."""
        return np.asarray(self.state != MISSING_STATE, dtype=np.bool_)

    def time_at(self, index: int) -> datetime:
        """The UTC datetime of time step ``index``."""
        seconds = int(self.times[index].astype("datetime64[s]").astype(np.int64))
        return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class FleetDaily:
    """Daily energy per device (from counter differences), for the daily peer comparison.

    Parameters
    ----------
    days
        The Europe/Amsterdam calendar days, ``datetime64[D]``, shape (N,).
    device_ids
        One per device (D).
    kwp
        Installed peak power per device, shape (D,) [kWp].
    energy_wh
        Energy produced per device and day, shape (D, N), NaN when unknown
        (device offline part of the day, counter anomaly, not yet installed) [Wh].
    clear_sky_kwh_per_kwp
        What each roof's geometry gives on a clear day (tilt, azimuth; see
        :func:`collector.faults.solar.clear_sky_daily_kwh_per_kwp`), shape (D, N); optional.
        With it the peer comparison follows the seasons of east/west roofs [kWh/kWp].
    groups
        A label per device for roofs facing alike (e.g. from :func:`orientation_group`);
        optional. A morning fog hits every east roof at once: the comparison takes out what a
        whole group shares on a day.
    """

    days: npt.NDArray[np.datetime64]
    device_ids: tuple[str, ...]
    kwp: FloatArray
    energy_wh: FloatArray
    clear_sky_kwh_per_kwp: FloatArray | None = None
    groups: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.energy_wh.shape != (len(self.device_ids), len(self.days)):
            raise ValueError(
                f"energy_wh must have shape ({len(self.device_ids)}, {len(self.days)}), "
                f"got {self.energy_wh.shape}"
            )
        if self.kwp.shape != (len(self.device_ids),) or np.any(self.kwp <= 0):
            raise ValueError("kwp needs one positive value per device")
        if (
            self.clear_sky_kwh_per_kwp is not None
            and self.clear_sky_kwh_per_kwp.shape != self.energy_wh.shape
        ):
            raise ValueError("clear_sky_kwh_per_kwp must have the shape of energy_wh")
        if self.groups is not None and len(self.groups) != len(self.device_ids):
            raise ValueError("groups needs one label per device")

    @property
    def specific_yield_kwh_per_kwp(self) -> FloatArray:
        """Energy per installed kWp, shape (D, N) [kWh/kWp]."""
        return self.energy_wh / 1000.0 / self.kwp[:, None]


def orientation_group(azimuth_deg: float, tilt_deg: float) -> str:
    """A label for roofs that see the day alike: flat, or the compass sector faced.

    Parameters
    ----------
    azimuth_deg
        Panel azimuth, 0 north, 90 east, 180 south [deg].
    tilt_deg
        Panel tilt [deg].
    """
    if tilt_deg < 10:
        return "flat"
    sectors = (
        "north",
        "north-east",
        "east",
        "south-east",
        "south",
        "south-west",
        "west",
        "north-west",
    )
    return sectors[int(((azimuth_deg % 360) + 22.5) // 45) % 8]


@dataclass(frozen=True)
class Detection:
    """Where a detector's condition holds, with the numbers behind it.

    ``active`` has shape (D, T) (or (D, N) days for daily detectors); each ``evidence`` array
    has the same shape and is reported at the step a finding starts and at the latest step.
    """

    kind: FaultKind
    active: BoolArray
    evidence: dict[str, FloatArray] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One episode of a condition on one device: the input of the alert lifecycle.

    ``ongoing`` is True when the condition still holds at the end of the evaluated window;
    an alert whose finding is no longer ongoing resolves.
    """

    kind: FaultKind
    device_id: str
    gateway_id: str
    start: datetime
    last: datetime
    ongoing: bool
    severity: Severity
    evidence: dict[str, float | int | str]
    message: str
