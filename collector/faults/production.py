"""No production in daylight while the neighbours produce; the fleet reference it uses."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from collector.faults.model import STATE_CODE, Detection, FaultKind, FleetSeries, FloatArray
from collector.faults.temporal import hysteresis
from zonnewijk_wire import InverterState


def fleet_specific_power_w_per_kwp(ac_power_w: FloatArray, kwp: FloatArray) -> FloatArray:
    """Median AC power per installed kWp over the devices that reported, per step.

    Parameters
    ----------
    ac_power_w
        Shape (D, T), NaN where missing [W].
    kwp
        Shape (D,) [kWp].

    Returns
    -------
    numpy.ndarray
        Shape (T,), NaN where no device reported [W/kWp].
    """
    specific = ac_power_w / kwp[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as wanted
        return np.asarray(np.nanmedian(specific, axis=0), dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class NoProductionParams:
    """Parameters of :func:`detect_no_production`.

    Attributes
    ----------
    min_elevation_deg
        Only judge when the sun is at least this high [deg].
    min_fleet_w_per_kwp
        The neighbours must produce at least this much (median) [W/kWp].
    max_fraction
        A device producing less than this fraction of the fleet median is "not producing".
    clear_fraction
        A device above this fraction of the fleet median is producing again.
    raise_after_s, clear_after_s
        Persistence of the condition before raising / clearing [s].
    min_peers
        The fleet median needs at least this many reporting devices.
    """

    min_elevation_deg: float = 12.0
    min_fleet_w_per_kwp: float = 60.0
    max_fraction: float = 0.05
    clear_fraction: float = 0.2
    raise_after_s: int = 15 * 60
    clear_after_s: int = 10 * 60
    min_peers: int = 5


def detect_no_production(
    series: FleetSeries, params: NoProductionParams | None = None
) -> Detection:
    """Inverters that report but produce (almost) nothing while their neighbours produce.

    Devices in the ``fault`` state are left to the fault-state detector (one alert per fault).

    Parameters
    ----------
    series
        The fleet's readings.
    params
        Thresholds.

    Returns
    -------
    Detection
        Evidence ``device_w_per_kwp`` and ``fleet_w_per_kwp`` [W/kWp].
    """
    p = params or NoProductionParams()
    fleet = fleet_specific_power_w_per_kwp(series.ac_power_w, series.kwp)
    peers = np.sum(np.isfinite(series.ac_power_w), axis=0)
    judge = (
        (series.sun_elevation_deg >= p.min_elevation_deg)
        & (fleet >= p.min_fleet_w_per_kwp)
        & (peers >= p.min_peers)
    )[None, :]
    device = series.ac_power_w / series.kwp[:, None]
    in_fault = series.state == STATE_CODE[InverterState.FAULT]
    reporting = np.isfinite(device)
    raise_cond = judge & reporting & ~in_fault & (device < p.max_fraction * fleet[None, :])
    clear_cond = (reporting & (device >= p.clear_fraction * fleet[None, :]) & judge) | in_fault
    n_on = max(1, -(-p.raise_after_s // series.step_s))
    n_off = max(1, -(-p.clear_after_s // series.step_s))
    active = hysteresis(raise_cond, clear_cond, n_on, n_off)
    fleet_2d = np.broadcast_to(fleet[None, :], device.shape)
    return Detection(
        FaultKind.NO_PRODUCTION,
        active,
        {"device_w_per_kwp": device, "fleet_w_per_kwp": np.asarray(fleet_2d, dtype=np.float64)},
    )
