"""Persistence and hysteresis over (device, time) boolean arrays: how conditions become alarms.

A condition must hold for ``n_on`` consecutive counted steps to raise, and its clearing
condition for ``n_off`` to clear; steps where neither is known (night for a production
detector, a dark day for the peer comparison) leave both counts as they were. This is what
keeps one cloudy hour or one bad reading from opening an alert, and a flickering
condition from opening and closing one every few minutes.
"""

from __future__ import annotations

import numpy as np

from collector.faults.model import BoolArray, FloatArray


def hysteresis(raise_cond: BoolArray, clear_cond: BoolArray, n_on: int, n_off: int) -> BoolArray:
    """Alarm state per device and step from raising and clearing conditions.

    Parameters
    ----------
    raise_cond
        Shape (D, T): the fault condition holds at this step.
    clear_cond
        Shape (D, T): the device is demonstrably fine at this step. Where both are False the
        step is neutral: counts are kept. Where both are True, raising wins.
    n_on
        Consecutive raising steps needed to raise (neutral steps do not break the run) [steps].
    n_off
        Consecutive clearing steps needed to clear [steps].

    Returns
    -------
    numpy.ndarray
        Shape (D, T), True where the alarm is active (from the step it is raised on).
    """
    if raise_cond.shape != clear_cond.shape or raise_cond.ndim != 2:
        raise ValueError("raise_cond and clear_cond must be 2-D arrays of the same shape")
    if n_on < 1 or n_off < 1:
        raise ValueError("n_on and n_off must be at least 1")
    d, t = raise_cond.shape
    out = np.zeros((d, t), dtype=bool)
    on = np.zeros(d, dtype=np.int64)
    off = np.zeros(d, dtype=np.int64)
    active = np.zeros(d, dtype=bool)
    clear_only = clear_cond & ~raise_cond
    for j in range(t):
        r = raise_cond[:, j]
        c = clear_only[:, j]
        on = np.where(r, on + 1, np.where(c, 0, on))
        off = np.where(c, off + 1, np.where(r, 0, off))
        active = np.where(active, off < n_off, on >= n_on)
        out[:, j] = active
    return out


def hold(events: BoolArray, hold_steps: int) -> BoolArray:
    """Keep a one-step event active for ``hold_steps`` steps after it (inclusive).

    Parameters
    ----------
    events
        Shape (D, T): an event happened at this step.
    hold_steps
        How long each event stays active [steps].
    """
    if hold_steps < 1:
        raise ValueError("hold_steps must be at least 1")
    counts = np.cumsum(events, axis=1, dtype=np.int64)
    shifted = np.zeros_like(counts)
    if hold_steps < events.shape[1]:
        shifted[:, hold_steps:] = counts[:, :-hold_steps]
    return np.asarray((counts - shifted) > 0)


def forward_fill(values: FloatArray) -> FloatArray:
    """Replace NaN by the last finite value before it along the time axis (axis 1)."""
    d, t = values.shape
    valid = np.isfinite(values)
    idx = np.where(valid, np.arange(t)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = values[np.arange(d)[:, None], idx]
    # before the first valid value there is nothing to fill with
    first_valid = np.maximum.accumulate(valid, axis=1)
    return np.where(first_valid, filled, np.nan)


def rolling_all(cond: BoolArray, window: int) -> BoolArray:
    """True where ``cond`` held at this step and the ``window - 1`` steps before it."""
    if window < 1:
        raise ValueError("window must be at least 1")
    counts = np.cumsum(~cond, axis=1, dtype=np.int64)
    lagged = np.zeros_like(counts)
    if window < cond.shape[1]:
        lagged[:, window:] = counts[:, :-window]
    full = np.arange(cond.shape[1])[None, :] >= window - 1
    return np.asarray(((counts - lagged) == 0) & full)
