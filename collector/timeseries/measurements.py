"""How the collector's data is stored in InfluxDB: measurement names and the mapping of readings.

Measurement ``inverter`` (tags ``gateway``, ``device``) carries the AC side, the state and the
flags; measurement ``dc`` (tags ``gateway``, ``device``, ``mppt``) carries each MPPT input;
``gateway_seen`` and ``gateway_status`` (tag ``gateway``) what is known of each gateway;
``rejected_reading`` the readings refused for an impossible value
(``docs/influxdb-schema.md``).
The key of a point is measurement + tags + timestamp, so a replayed reading overwrites itself.
Field types are fixed here once: InfluxDB keeps the type a field was first written with.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from collector.timeseries.influx import FieldValue, Point
from zonnewijk_wire import MeterReading, ReadingFlag, ReadingView

INVERTER_MEASUREMENT = "inverter"
DC_MEASUREMENT = "dc"
#: Readings the gateway flagged ``time_unknown`` (polled in a boot whose clock never synced,
#: docs/clock.md): the same fields, stored apart so settlement and dashboards, which read
#: ``inverter`` and ``dc``, never take their (wrong) times for true.
TIME_UNKNOWN_INVERTER_MEASUREMENT = "inverter_time_unknown"
TIME_UNKNOWN_DC_MEASUREMENT = "dc_time_unknown"
#: One point per stored readings message: when each gateway was last heard from.
GATEWAY_SEEN_MEASUREMENT = "gateway_seen"
#: The gateways' own status messages (online/offline, spool depth).
GATEWAY_STATUS_MEASUREMENT = "gateway_status"
#: Spans of imported counters (``zonnewijk import readings``): tags ``gateway``, ``device``, at
#: the span's first reading; a new counter begins there and after its end (``end_ms``).
IMPORTED_COUNTER_MEASUREMENT = "imported_counter"
#: An imported counter's readings are stored under ``gateway=<gateway>~imported``: never the
#: series of a real counter (``~`` is not in a gateway id), flagged ``counter_origin``.
IMPORTED_GATEWAY_SUFFIX = "~imported"


def imported_gateway_tag(gateway_id: str) -> str:
    """The ``gateway`` tag of a device's imported counter readings."""
    return gateway_id + IMPORTED_GATEWAY_SUFFIX


#: Readings the collector refused for a value no inverter produces (out of its physical range,
#: above the device's rating): one point per refused reading (tags ``gateway``, ``device``,
#: ``reason``; field ``count``), so the fault detectors see the glitch the store does not hold.
REJECTED_MEASUREMENT = "rejected_reading"

#: Float fields of the ``inverter`` measurement, by wire name.
INVERTER_FLOAT_FIELDS: tuple[str, ...] = (
    "ac_power_w",
    "ac_energy_wh",
    "ac_voltage_v",
    "grid_frequency_hz",
    "cabinet_temp_c",
)
DC_FLOAT_FIELDS: tuple[str, ...] = ("dc_voltage_v", "dc_current_a", "dc_power_w")


def reading_points(gateway_id: str, reading: ReadingView) -> Iterator[Point]:
    """The points that store one reading: one ``inverter`` point and one ``dc`` per MPPT."""
    tags = {"gateway": gateway_id, "device": reading.device_id}
    fields: dict[str, FieldValue] = {"state": reading.state.value}
    for name in INVERTER_FLOAT_FIELDS:
        value = getattr(reading, name)
        if value is not None:
            fields[name] = float(value)
    if reading.vendor_state is not None:
        fields["vendor_state"] = int(reading.vendor_state)
    if reading.vendor_events is not None:
        fields["vendor_events"] = int(reading.vendor_events)
    if reading.events:
        fields["events"] = ",".join(reading.events)
    if reading.flags:
        fields["flags"] = ",".join(flag.value for flag in reading.flags)
    for key, raw in reading.raw.items():
        fields[f"raw_{key}"] = float(raw)
    inverter, dc_name = INVERTER_MEASUREMENT, DC_MEASUREMENT
    if ReadingFlag.TIME_UNKNOWN in reading.flags:
        inverter, dc_name = TIME_UNKNOWN_INVERTER_MEASUREMENT, TIME_UNKNOWN_DC_MEASUREMENT
    yield Point(inverter, tags, fields, reading.ts)
    for dc in reading.dc:
        dc_fields: dict[str, FieldValue] = {
            name: float(value)
            for name in DC_FLOAT_FIELDS
            if (value := getattr(dc, name)) is not None
        }
        if dc_fields:
            yield Point(dc_name, {**tags, "mppt": str(dc.mppt)}, dc_fields, reading.ts)


#: Grid meters (P1 smart meters, SunSpec meters): tags ``gateway``, ``device``, ``source``.
METER_MEASUREMENT = "grid_meter"
#: One point per phase of a meter reading: tags as above plus ``phase`` (L1, L2, L3).
METER_PHASE_MEASUREMENT = "grid_phase"
#: The gas meter behind a P1 meter, at the gas meter's own time: tags ``gateway``, ``device``.
GAS_MEASUREMENT = "gas_meter"
#: One metered home's energy balance per local day (collector/dashboards/daily_self_consumption.py):
#: personal data, kept after the raw meter readings' retention, deleted on withdrawal.
HOUSEHOLD_DAILY_MEASUREMENT = "household_energy_daily"

#: Float fields of the ``grid_meter`` measurement, by wire name [Wh, W].
METER_FLOAT_FIELDS: tuple[str, ...] = (
    "import_energy_wh",
    "export_energy_wh",
    "import_energy_t1_wh",
    "import_energy_t2_wh",
    "export_energy_t1_wh",
    "export_energy_t2_wh",
    "import_power_w",
    "export_power_w",
    "net_power_min_w",
    "net_power_max_w",
)
#: Integer fields of the ``grid_meter`` measurement [s, count, tariff number].
METER_INT_FIELDS: tuple[str, ...] = ("interval_s", "samples", "tariff")
PHASE_FLOAT_FIELDS: tuple[str, ...] = ("import_power_w", "export_power_w", "voltage_v", "current_a")


def meter_points(gateway_id: str, reading: MeterReading) -> Iterator[Point]:
    """The points that store one meter reading: ``grid_meter``, one ``grid_phase`` per phase,
    and ``gas_meter`` when the reading carries the gas meter."""
    tags = {"gateway": gateway_id, "device": reading.device_id, "source": reading.source.value}
    fields: dict[str, FieldValue] = {}
    for name in METER_FLOAT_FIELDS:
        value = getattr(reading, name)
        if value is not None:
            fields[name] = float(value)
    for name in METER_INT_FIELDS:
        value = getattr(reading, name)
        if value is not None:
            fields[name] = int(value)
    if reading.meter_id_hash:
        fields["meter_id_hash"] = reading.meter_id_hash
    if reading.protocol:
        fields["protocol"] = reading.protocol.replace("\n", " ")
    if reading.flags:
        fields["flags"] = ",".join(flag.value for flag in reading.flags)
    yield Point(METER_MEASUREMENT, tags, fields, reading.ts)
    for phase in reading.phases:
        phase_fields: dict[str, FieldValue] = {
            name: float(value)
            for name in PHASE_FLOAT_FIELDS
            if (value := getattr(phase, name)) is not None
        }
        if phase_fields:
            yield Point(
                METER_PHASE_MEASUREMENT, {**tags, "phase": phase.phase}, phase_fields, reading.ts
            )
    if reading.gas is not None:
        gas_tags = {"gateway": gateway_id, "device": reading.device_id}
        yield Point(
            GAS_MEASUREMENT, gas_tags, {"gas_m3": float(reading.gas.gas_m3)}, reading.gas.ts
        )


def rejected_point(gateway_id: str, device_id: str, reason: str, ts: datetime) -> Point:
    """The ``rejected_reading`` point of one refused reading (see :data:`REJECTED_MEASUREMENT`)."""
    return Point(
        REJECTED_MEASUREMENT,
        {"gateway": gateway_id, "device": device_id, "reason": reason},
        {"count": 1},
        ts,
    )
