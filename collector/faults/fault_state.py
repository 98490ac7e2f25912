"""Faults the inverter reports itself: the fault state and fault event bits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collector.faults.model import (
    STATE_CODE,
    Detection,
    FaultKind,
    FleetSeries,
    event_mask,
)
from collector.faults.temporal import hysteresis
from zonnewijk_wire import InverterState

#: Events that mean the inverter itself is faulty. Grid events (grid_disconnect, over/under
#: frequency and voltage) are the grid's doing and clear on their own; manual_shutdown and
#: cabinet_open are people at work.
DEFAULT_FAULT_EVENTS: tuple[str, ...] = (
    "ground_fault",
    "dc_over_voltage",
    "over_temperature",
    "blown_string_fuse",
    "memory_loss",
    "hardware_test_failure",
)


@dataclass(frozen=True, kw_only=True)
class FaultStateParams:
    """Parameters of :func:`detect_fault_state`.

    Attributes
    ----------
    fault_events
        Normalised event names that count as a fault.
    raise_after_s, clear_after_s
        Persistence before raising / clearing; a fault flashed for one poll at dawn is not
        an alert [s].
    """

    fault_events: tuple[str, ...] = DEFAULT_FAULT_EVENTS
    raise_after_s: int = 10 * 60
    clear_after_s: int = 15 * 60


def detect_fault_state(series: FleetSeries, params: FaultStateParams | None = None) -> Detection:
    """Inverters in the ``fault`` state or reporting a fault event.

    Parameters
    ----------
    series
        The fleet's readings; uses ``state`` and ``event_bits``.
    params
        Thresholds.

    Returns
    -------
    Detection
        Evidence ``state_code`` (index into STATE_ORDER) and ``event_bits``.
    """
    p = params or FaultStateParams()
    mask = event_mask(p.fault_events)
    in_fault = (series.state == STATE_CODE[InverterState.FAULT]) | ((series.event_bits & mask) != 0)
    ok = series.present & ~in_fault
    n_on = max(1, -(-p.raise_after_s // series.step_s))
    n_off = max(1, -(-p.clear_after_s // series.step_s))
    active = hysteresis(in_fault, ok, n_on, n_off)
    return Detection(
        FaultKind.FAULT_STATE,
        active,
        {
            "state_code": series.state.astype(np.float64),
            "event_bits": series.event_bits.astype(np.float64),
        },
    )
