"""One simulated reading as a wire-format :class:`~zonnewijk_wire.Reading` object.

The bulk paths (files, MQTT) format text directly (:mod:`collector.simulator.jsonl`); this is
the slow, obviously-correct path used by the live Modbus mode and by tests that compare the
two.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from collector.simulator.engine import (
    FLAG_COUNTER_BACKWARDS,
    FLAG_COUNTER_JUMP,
    FLAG_REPLAYED,
    FLAG_SENTINEL,
    RAW_VALUES,
    STATES,
    Chunk,
)
from collector.simulator.faults import FAULT_EVENTS
from zonnewijk_wire import DcInput, Reading, ReadingFlag

_FLAG_BITS = (
    (ReadingFlag.SENTINEL, FLAG_SENTINEL),
    (ReadingFlag.COUNTER_BACKWARDS, FLAG_COUNTER_BACKWARDS),
    (ReadingFlag.COUNTER_JUMP, FLAG_COUNTER_JUMP),
    (ReadingFlag.REPLAYED, FLAG_REPLAYED),
)


def _value(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def chunk_reading(chunk: Chunk, t: int, s: int, device_id: str) -> Reading:
    """The reading of site ``s`` at time index ``t`` of a chunk."""
    dc: list[DcInput] = []
    if chunk.dc_present[t, s]:
        for m in range(chunk.dc_voltage_v.shape[2]):
            volts = chunk.dc_voltage_v[t, s, m]
            if np.isnan(volts):
                continue
            dc.append(
                DcInput(
                    mppt=m + 1,
                    dc_voltage_v=float(volts),
                    dc_current_a=float(chunk.dc_current_a[t, s, m]),
                    dc_power_w=float(chunk.dc_power_w[t, s, m]),
                )
            )
    event = int(chunk.event[t, s])
    vendor_events = int(chunk.vendor_events[t, s])
    flags = int(chunk.flags[t, s])
    return Reading(
        device_id=device_id,
        ts=datetime.fromtimestamp(int(chunk.epoch_s[t]), tz=UTC),
        ac_power_w=_value(chunk.ac_power_w[t, s]),
        ac_energy_wh=_value(chunk.ac_energy_wh[t, s]),
        ac_voltage_v=_value(chunk.ac_voltage_v[t, s]),
        grid_frequency_hz=_value(chunk.grid_frequency_hz[t, s]),
        cabinet_temp_c=_value(chunk.cabinet_temp_c[t, s]),
        dc=tuple(dc),
        state=STATES[int(chunk.state[t, s])],
        vendor_state=int(chunk.vendor_state[t, s]),
        events=(FAULT_EVENTS[event - 1][1],) if event > 0 else (),
        vendor_events=vendor_events if vendor_events >= 0 else None,
        flags=tuple(flag for flag, bit in _FLAG_BITS if flags & bit),
        raw=dict(RAW_VALUES[int(chunk.raw[t, s])]),
    )
