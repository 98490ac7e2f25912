"""Offline detection: a dead gateway versus a dead inverter behind a live gateway."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collector.faults.model import Detection, FaultKind, FleetSeries
from collector.faults.temporal import hysteresis


@dataclass(frozen=True, kw_only=True)
class OfflineParams:
    """Parameters of :func:`detect_offline`.

    Attributes
    ----------
    gateway_timeout_s
        Silence of a gateway (no reading, no status heartbeat) before it is offline [s].
    device_timeout_s
        Silence of an inverter behind a live gateway before it is offline [s].
    device_min_elevation_deg
        Some inverters (or their dataloggers) switch their Modbus interface off at night:
        set this to 0 for such a fleet, and below this solar elevation a silent inverter
        neither raises nor clears the alarm. The default judges around the clock (every
        family the gateway reads answers at night, sleeping) [deg].
    """

    gateway_timeout_s: int = 15 * 60
    device_timeout_s: int = 15 * 60
    device_min_elevation_deg: float = -90.0


def _steps(seconds: int, step_s: int) -> int:
    return max(1, -(-seconds // step_s))


def detect_offline(
    series: FleetSeries, params: OfflineParams | None = None
) -> tuple[Detection, Detection]:
    """Which gateways and which inverters have gone silent.

    A gateway is offline when nothing arrived from it for ``gateway_timeout_s``; its inverters
    then get ``gateway_offline`` and not ``device_offline``. An inverter is offline when its
    gateway is heard from but the inverter's readings stay away for ``device_timeout_s`` in
    daylight. Devices the registry does not expect (not installed yet, removed) are never
    offline.

    Parameters
    ----------
    series
        The fleet's readings; uses ``present``, ``gateway_seen`` and ``sun_elevation_deg``.
    params
        Thresholds.

    Returns
    -------
    (Detection, Detection)
        ``gateway_offline`` and ``device_offline``, each with evidence ``silent_s`` (how long
        nothing arrived, at each step) [s].
    """
    p = params or OfflineParams()
    present = series.present
    seen = series.gateway_seen | present
    silent_steps = _silence_steps(present)
    gw_silent_steps = _silence_steps(seen)
    expected = series.expected if series.expected is not None else np.ones_like(present)
    gateway = hysteresis(
        ~seen & expected, seen | ~expected, _steps(p.gateway_timeout_s, series.step_s), 1
    )
    day = (series.sun_elevation_deg >= p.device_min_elevation_deg)[None, :]
    device_raise = ~present & seen & day & expected
    device = hysteresis(
        device_raise, present | ~expected, _steps(p.device_timeout_s, series.step_s), 1
    )
    device &= ~gateway
    step = float(series.step_s)
    return (
        Detection(FaultKind.GATEWAY_OFFLINE, gateway, {"silent_s": gw_silent_steps * step}),
        Detection(FaultKind.DEVICE_OFFLINE, device, {"silent_s": silent_steps * step}),
    )


def _silence_steps(present: np.ndarray) -> np.ndarray:
    """Steps since the last step with something present (inclusive of the current one)."""
    t = present.shape[1]
    idx = np.where(present, np.arange(t)[None, :], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    return np.asarray(np.arange(t)[None, :] - idx, dtype=np.float64)
