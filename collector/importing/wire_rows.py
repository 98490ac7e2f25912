"""A file's rows in the collector's wire form: an interval of energy as a reading of its mean
power, an imported counter's point as a reading, and a row's original for its dead letter."""

from __future__ import annotations

from collector.importing.rows import RowInterval, RowReading
from collector.importing.synthetic import CounterPoint
from zonnewijk_wire import DcInput, InverterState, Reading, format_ts


def number_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def original_row(row: RowReading | RowInterval) -> object:
    if isinstance(row, RowReading):
        return row.wire
    return {
        "device_id": row.device_id,
        "start": format_ts(row.start),
        "end": format_ts(row.end),
        "energy_wh": row.energy_wh,
    }


def interval_wire(iv: RowInterval) -> dict[str, object]:
    wire: dict[str, object] = dict(iv.extra or {})
    wire["device_id"] = iv.device_id
    wire["ts"] = format_ts(iv.end)
    wire["ac_power_w"] = iv.mean_power_w
    return wire


def counter_point_json(point: CounterPoint) -> object:
    return {
        "device_id": point.device_id,
        "ts": format_ts(point.ts),
        "ac_energy_wh": point.counter_wh,
        "ac_power_w": point.mean_power_w,
    }


def counter_point_reading(point: CounterPoint) -> Reading:
    """The imported counter's reading (its values were checked as the interval's)."""
    extra = point.extra or {}
    dc_inputs = extra.get("dc")
    dc = tuple(
        DcInput.model_construct(**d)
        for d in (dc_inputs if isinstance(dc_inputs, list) else [])
        if isinstance(d, dict)
    )
    state = extra.get("state")
    return Reading.model_construct(
        device_id=point.device_id,
        ts=point.ts,
        ac_power_w=point.mean_power_w,
        ac_energy_wh=point.counter_wh,
        ac_voltage_v=number_or_none(extra.get("ac_voltage_v")),
        grid_frequency_hz=number_or_none(extra.get("grid_frequency_hz")),
        cabinet_temp_c=number_or_none(extra.get("cabinet_temp_c")),
        dc=dc,
        state=InverterState(state) if isinstance(state, str) else InverterState.UNKNOWN,
    )
