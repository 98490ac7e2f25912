"""Data that cannot be true: frozen values and energy counter anomalies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collector.faults.model import BoolArray, Detection, FaultKind, FleetSeries
from collector.faults.temporal import forward_fill, hold, hysteresis


@dataclass(frozen=True, kw_only=True)
class FrozenParams:
    """Parameters of :func:`detect_frozen`.

    Attributes
    ----------
    min_elevation_deg
        Judge only in daylight, when real power fluctuates [deg].
    min_power_w
        A frozen zero is "no production", not a frozen value [W].
    clip_margin
        Power within this fraction of the AC rating is clipping, legitimately flat.
    frozen_after_s
        Power exactly unchanged this long is frozen [s].
    counter_window_s, counter_min_expected_wh
        A counter that does not move over this window while the reported power says at least
        this much energy was produced is frozen [s], [Wh].
    """

    min_elevation_deg: float = 10.0
    min_power_w: float = 20.0
    clip_margin: float = 0.02
    frozen_after_s: int = 30 * 60
    counter_window_s: int = 60 * 60
    counter_min_expected_wh: float = 1500.0


def detect_frozen(series: FleetSeries, params: FrozenParams | None = None) -> Detection:
    """Inverters whose power stays exactly the same, or whose counter stalls while producing.

    Where the AC voltage is known it must repeat as well: a steady overcast can hold the
    power on the same watt for half an hour, but never the grid voltage too.

    Parameters
    ----------
    series
        The fleet's readings.
    params
        Thresholds.

    Returns
    -------
    Detection
        Evidence ``ac_power_w`` [W] and ``ac_energy_wh`` [Wh].
    """
    p = params or FrozenParams()
    power = series.ac_power_w
    prev = np.full_like(power, np.nan)
    prev[:, 1:] = power[:, :-1]
    day = (series.sun_elevation_deg >= p.min_elevation_deg)[None, :]
    clipping = power >= (1.0 - p.clip_margin) * series.ac_rating_w[:, None]
    same_power = np.isfinite(power) & (power == prev) & (power >= p.min_power_w) & day
    if series.ac_voltage_v is not None:
        volts = series.ac_voltage_v
        prev_v = np.full_like(volts, np.nan)
        prev_v[:, 1:] = volts[:, :-1]
        known_v = np.isfinite(volts) & np.isfinite(prev_v)
        # a live grid voltage never repeats for long: where it is known and repeats with the
        # power, even a clipping plateau is stale; where it moves, the readings are live
        same_v = known_v & (volts == prev_v)
        same = (same_power & ~known_v & ~clipping) | (
            same_v & np.isfinite(power) & (power == prev) & day
        )
        live = np.isfinite(power) & ((np.isfinite(prev) & (power != prev)) | (known_v & ~same_v))
    else:
        same = same_power & ~clipping
        live = np.isfinite(power) & ((np.isfinite(prev) & (power != prev)) | clipping)
    moving = live
    n_frozen = max(2, -(-p.frozen_after_s // series.step_s))
    power_frozen = hysteresis(same, moving, n_frozen - 1, 2)

    window = max(2, -(-p.counter_window_s // series.step_s))
    energy = forward_fill(series.ac_energy_wh)
    power0 = np.nan_to_num(power, nan=0.0)
    cumulative_wh = np.cumsum(power0, axis=1) * series.step_s / 3600.0
    expected_wh = np.full_like(cumulative_wh, np.nan)
    expected_wh[:, window:] = cumulative_wh[:, window:] - cumulative_wh[:, :-window]
    delta_wh = np.full_like(energy, np.nan)
    delta_wh[:, window:] = energy[:, window:] - energy[:, :-window]
    stalled = (delta_wh == 0) & (expected_wh >= p.counter_min_expected_wh) & series.present
    counting = np.isfinite(delta_wh) & (delta_wh > 0)
    counter_frozen = hysteresis(stalled, counting, 1, 1)
    return Detection(
        FaultKind.FROZEN_VALUE,
        power_frozen | counter_frozen,
        {"ac_power_w": power, "ac_energy_wh": series.ac_energy_wh},
    )


@dataclass(frozen=True, kw_only=True)
class CounterParams:
    """Parameters of :func:`detect_counter_anomalies`.

    Attributes
    ----------
    backwards_tolerance_wh
        Steps back smaller than this are rounding, not anomalies [Wh].
    jump_factor
        A rise of more than ``jump_factor`` × AC rating × elapsed time is implausible.
    jump_slack_wh
        Added to the plausible rise (counter resolution, e.g. Sungrow's whole kWh) [Wh].
    hold_s
        How long an anomaly keeps its alert open before it resolves on its own [s].
    """

    backwards_tolerance_wh: float = 1.0
    jump_factor: float = 1.5
    jump_slack_wh: float = 1000.0
    hold_s: int = 6 * 3600


def counter_events(
    series: FleetSeries,
    params: CounterParams | None = None,
    known_resets: BoolArray | None = None,
) -> tuple[BoolArray, BoolArray, np.ndarray]:
    """Steps where the lifetime counter went backwards or jumped implausibly.

    Each reading is compared with the last valid reading before it, however long ago; the
    plausible rise is the AC rating times the elapsed time.

    Parameters
    ----------
    series
        The fleet's readings.
    params
        Thresholds.
    known_resets
        Shape (D, T): steps where the registry records a reset or replacement; not anomalies.

    Returns
    -------
    (backwards, jump, delta_wh)
        Boolean arrays (D, T) and the counter change at each step [Wh].
    """
    p = params or CounterParams()
    energy = series.ac_energy_wh
    valid = np.isfinite(energy)
    filled = forward_fill(energy)
    last = np.full_like(filled, np.nan)
    last[:, 1:] = filled[:, :-1]
    t = energy.shape[1]
    idx = np.where(valid, np.arange(t)[None, :], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    last_idx = np.full_like(idx, -1)
    last_idx[:, 1:] = idx[:, :-1]
    elapsed_h = (np.arange(t)[None, :] - last_idx) * series.step_s / 3600.0
    delta = energy - last
    comparable = valid & np.isfinite(last)
    backwards = comparable & (delta < -p.backwards_tolerance_wh)
    plausible = p.jump_factor * series.ac_rating_w[:, None] * elapsed_h + p.jump_slack_wh
    jump = comparable & (delta > plausible)
    if known_resets is not None:
        backwards &= ~known_resets
        jump &= ~known_resets
    return backwards, jump, delta


def detect_counter_anomalies(
    series: FleetSeries,
    params: CounterParams | None = None,
    known_resets: BoolArray | None = None,
) -> Detection:
    """Energy counters that go backwards or jump further than the inverter could produce.

    Parameters
    ----------
    series
        The fleet's readings.
    params
        Thresholds.
    known_resets
        Shape (D, T): recorded resets/replacements to leave out.

    Returns
    -------
    Detection
        Active for ``hold_s`` after each anomaly; evidence ``delta_wh`` [Wh] and
        ``ac_energy_wh`` [Wh].
    """
    p = params or CounterParams()
    backwards, jump, delta = counter_events(series, p, known_resets)
    events = backwards | jump
    active = hold(events, max(1, -(-p.hold_s // series.step_s)))
    delta_at_event = np.where(events, delta, np.nan)
    return Detection(
        FaultKind.COUNTER_ANOMALY,
        active,
        {"delta_wh": forward_fill(delta_at_event), "ac_energy_wh": series.ac_energy_wh},
    )


@dataclass(frozen=True, kw_only=True)
class ImplausibleParams:
    """Parameters of :func:`detect_implausible_power`.

    Attributes
    ----------
    max_factor
        Power above ``max_factor`` × the AC rating, or below ``-min_w``, cannot be real.
    min_w
        Tolerated negative power (night consumption of the inverter) [W].
    hold_s
        How long a glitch keeps its alert open [s].
    """

    max_factor: float = 1.2
    min_w: float = 100.0
    hold_s: int = 6 * 3600


def detect_implausible_power(
    series: FleetSeries, params: ImplausibleParams | None = None
) -> Detection:
    """Readings with values the inverter cannot produce (65535 W spikes, garbage words).

    Either the collector refused the reading for it (``series.rejected``: out of range, above
    the rating), or a stored power lies beyond ``max_factor`` x the rating or below ``-min_w``.

    Parameters
    ----------
    series
        The fleet's readings.
    params
        Thresholds.

    Returns
    -------
    Detection
        Active for ``hold_s`` after each implausible reading; evidence ``ac_power_w`` at the
        glitch [W].
    """
    p = params or ImplausibleParams()
    power = series.ac_power_w
    bad = np.isfinite(power) & (
        (power > p.max_factor * series.ac_rating_w[:, None]) | (power < -p.min_w)
    )
    if series.rejected is not None:
        bad |= series.rejected
    active = hold(bad, max(1, -(-p.hold_s // series.step_s)))
    return Detection(
        FaultKind.IMPLAUSIBLE_VALUE,
        active,
        {"ac_power_w": forward_fill(np.where(bad, power, np.nan))},
    )
