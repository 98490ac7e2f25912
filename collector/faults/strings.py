"""String (MPPT) imbalance: one input far below its siblings on the same inverter."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from collector.faults.model import Detection, FaultKind, FleetSeries
from collector.faults.temporal import hysteresis


@dataclass(frozen=True, kw_only=True)
class ImbalanceParams:
    """Parameters of :func:`detect_string_imbalance`.

    Attributes
    ----------
    min_elevation_deg
        Judge only with the sun this high: at a low sun an east string legitimately sees
        little while its west sibling is lit [deg].
    min_sibling_w_per_kwp
        The best sibling must deliver at least this per kWp of the inverter, per input [W/kWp].
    max_ratio
        An input below this fraction of its best sibling is "far below".
    clear_ratio
        An input above this fraction of its best sibling is fine.
    raise_after_s, clear_after_s
        Persistence of the condition before raising / clearing [s].
    """

    min_elevation_deg: float = 8.0
    min_sibling_w_per_kwp: float = 40.0
    max_ratio: float = 0.1
    clear_ratio: float = 0.3
    raise_after_s: int = 60 * 60
    clear_after_s: int = 20 * 60


def detect_string_imbalance(
    series: FleetSeries, params: ImbalanceParams | None = None
) -> Detection:
    """Inverters with an MPPT input delivering far less than their best other input.

    Inputs of one inverter are assumed to carry the same configuration (the registry's
    ``mppt_count`` with equal strings); inverters with a single input are skipped (the peer
    comparison catches their losses).

    Parameters
    ----------
    series
        The fleet's readings; uses ``dc_power_w`` (D, M, T).
    params
        Thresholds.

    Returns
    -------
    Detection
        Evidence ``weakest_ratio`` (weakest input / best input) and ``best_input_w`` [W].
    """
    p = params or ImbalanceParams()
    dc = series.dc_power_w
    inputs = np.sum(np.any(np.isfinite(dc), axis=2), axis=1)  # inputs seen per device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = np.nanmax(dc, axis=1)
        weakest = np.nanmin(dc, axis=1)
        ratio = weakest / np.where(best > 0, best, np.nan)
    per_input_kwp = series.kwp / np.maximum(inputs, 1)
    judge = (
        (series.sun_elevation_deg >= p.min_elevation_deg)[None, :]
        & (inputs >= 2)[:, None]
        & (best >= p.min_sibling_w_per_kwp * per_input_kwp[:, None])
        & np.isfinite(ratio)
    )
    raise_cond = judge & (ratio < p.max_ratio)
    clear_cond = judge & (ratio >= p.clear_ratio)
    n_on = max(1, -(-p.raise_after_s // series.step_s))
    n_off = max(1, -(-p.clear_after_s // series.step_s))
    active = hysteresis(raise_cond, clear_cond, n_on, n_off)
    return Detection(
        FaultKind.STRING_IMBALANCE,
        active,
        {"weakest_ratio": ratio, "best_input_w": best},
    )
