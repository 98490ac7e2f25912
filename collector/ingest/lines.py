"""Line protocol of a reading, written directly: the collector's hot path.

Produces exactly what ``[p.to_line("ms") for p in collector.timeseries.measurements.reading_points(...)]`` gives
(tags and fields sorted, the same escaping and number formats) in a fraction of the time:
no intermediate :class:`collector.timeseries.influx.Point` objects, the escaped tags of a device built once
and remembered, fields emitted in their sorted order without sorting. ``collector.timeseries.measurements``
stays the one definition of the schema; ``tests/collector/ingest/test_lines.py`` checks the
two agree on generated readings, so a change there that is not made here fails the tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from collector.timeseries.influx import escape_key, format_field_value
from collector.timeseries.measurements import (
    DC_MEASUREMENT,
    INVERTER_MEASUREMENT,
    TIME_UNKNOWN_DC_MEASUREMENT,
    TIME_UNKNOWN_INVERTER_MEASUREMENT,
)
from zonnewijk_wire import ReadingFlag, ReadingView

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@lru_cache(maxsize=65536)
def _series_tags(gateway_id: str, device_id: str) -> str:
    """``device=...,gateway=...``, escaped (the sorted tag set of both measurements)."""
    return f"device={escape_key(device_id)},gateway={escape_key(gateway_id)}"


def reading_lines(gateway_id: str, reading: ReadingView) -> list[str]:
    """The lines that store one reading (``inverter`` plus one ``dc`` line per MPPT).

    Raises ValueError when a value cannot be written (e.g. a raw key with a newline).
    """
    r = reading
    ts_ms = (r.ts - _EPOCH) // _MS  # floor, as collector.timeseries.influx.timestamp_in
    tags = _series_tags(gateway_id, r.device_id)
    # Field keys in sorted order: ac_energy_wh, ac_power_w, ac_voltage_v, cabinet_temp_c,
    # events, flags, grid_frequency_hz, raw_*, state, vendor_events, vendor_state.
    fields: list[str] = []
    if r.ac_energy_wh is not None:
        fields.append(f"ac_energy_wh={r.ac_energy_wh!r}")
    if r.ac_power_w is not None:
        fields.append(f"ac_power_w={r.ac_power_w!r}")
    if r.ac_voltage_v is not None:
        fields.append(f"ac_voltage_v={r.ac_voltage_v!r}")
    if r.cabinet_temp_c is not None:
        fields.append(f"cabinet_temp_c={r.cabinet_temp_c!r}")
    if r.events:
        fields.append("events=" + format_field_value(",".join(r.events)))
    if r.flags:
        fields.append("flags=" + format_field_value(",".join(f.value for f in r.flags)))
    if r.grid_frequency_hz is not None:
        fields.append(f"grid_frequency_hz={r.grid_frequency_hz!r}")
    if r.raw:
        for key in sorted(r.raw):
            fields.append(f"{escape_key('raw_' + key)}={format_field_value(float(r.raw[key]))}")
    fields.append(f'state="{r.state}"')  # a StrEnum formats as its value
    if r.vendor_events is not None:
        fields.append(f"vendor_events={r.vendor_events}i")
    if r.vendor_state is not None:
        fields.append(f"vendor_state={r.vendor_state}i")
    inverter, dc_name = INVERTER_MEASUREMENT, DC_MEASUREMENT
    if r.flags and ReadingFlag.TIME_UNKNOWN in r.flags:  # stored apart (docs/clock.md)
        inverter, dc_name = TIME_UNKNOWN_INVERTER_MEASUREMENT, TIME_UNKNOWN_DC_MEASUREMENT
    lines = [f"{inverter},{tags} {','.join(fields)} {ts_ms}"]
    for dc in r.dc:
        dc_fields = []
        if dc.dc_current_a is not None:
            dc_fields.append(f"dc_current_a={dc.dc_current_a!r}")
        if dc.dc_power_w is not None:
            dc_fields.append(f"dc_power_w={dc.dc_power_w!r}")
        if dc.dc_voltage_v is not None:
            dc_fields.append(f"dc_voltage_v={dc.dc_voltage_v!r}")
        if dc_fields:
            lines.append(f"{dc_name},{tags},mppt={dc.mppt} {','.join(dc_fields)} {ts_ms}")
    return lines
