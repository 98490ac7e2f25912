"""Wire format v1: the one definition of what travels from gateway to server over MQTT.

The contract between the two sides, imported by both and owned by neither (it imports
neither). The gateway encodes with :func:`encode_batch`; the collector decodes with
:func:`decode_batch` and :func:`decode_meter_batch`. A message is a *batch* of readings, so a
replayed week is a few hundred messages, not sixty thousand. ``docs/wire-format.md`` documents
it and ``docs/wire-format.schema.json`` is generated from these models
(``zonnewijk-gateway wire-schema``).

Topics (all under ``zonnewijk/v1/<gateway_id>/``):

- ``readings``: :class:`ReadingsBatch` (inverters), QoS 1, not retained;
- ``meter``: :class:`MeterBatch` (grid meters: P1 smart meters, SunSpec meters), QoS 1, not
  retained;
- ``status``: :class:`GatewayStatus`, QoS 1, retained, also the last will (``offline``);
- ``devices/<device_id>/info``: :class:`DeviceInfo`, QoS 1, retained.

Timestamps are UTC. A reading's key is (gateway_id, device_id, ts): replaying it overwrites the
stored point instead of adding a second one.

Modules: :mod:`~zonnewijk_wire.common` (version, limits, ids, UTC times),
:mod:`~zonnewijk_wire.readings` (inverters), :mod:`~zonnewijk_wire.meter` (grid meters),
:mod:`~zonnewijk_wire.gateway` (status, device info), :mod:`~zonnewijk_wire.topics`,
:mod:`~zonnewijk_wire.codec` (JSON in and out, with reasons), :mod:`~zonnewijk_wire.schema`.
Everything public is importable from the package itself.
"""

from __future__ import annotations

from zonnewijk_wire.codec import (
    DecodedBatch,
    RejectedReading,
    WireError,
    decode_batch,
    decode_meter_batch,
    encode,
    encode_batch,
    format_ts,
    to_wire_dict,
)
from zonnewijk_wire.common import (
    ID_PATTERN,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_BATCH,
    TOPIC_ROOT,
    WIRE_REVISION,
    WIRE_VERSION,
    Strict,
)
from zonnewijk_wire.gateway import (
    DeviceInfo,
    GatewayStatus,
)
from zonnewijk_wire.meter import (
    GasReading,
    MeterBatch,
    MeterFlag,
    MeterReading,
    MeterSource,
    PhaseValues,
)
from zonnewijk_wire.readings import (
    DcInput,
    DcView,
    InverterState,
    Reading,
    ReadingFlag,
    ReadingsBatch,
    ReadingView,
)
from zonnewijk_wire.schema import (
    json_schema,
)
from zonnewijk_wire.topics import (
    DEADLETTER_TOPIC,
    DEVICE_INFO_FILTER,
    METER_FILTER,
    READINGS_FILTER,
    STATUS_FILTER,
    device_info_topic,
    gateway_id_from_topic,
    meter_topic,
    readings_topic,
    status_topic,
)

__all__ = [
    "DEADLETTER_TOPIC",
    "DEVICE_INFO_FILTER",
    "ID_PATTERN",
    "MAX_PAYLOAD_BYTES",
    "MAX_READINGS_PER_BATCH",
    "METER_FILTER",
    "READINGS_FILTER",
    "STATUS_FILTER",
    "TOPIC_ROOT",
    "WIRE_REVISION",
    "WIRE_VERSION",
    "DcInput",
    "DcView",
    "DecodedBatch",
    "DeviceInfo",
    "GasReading",
    "GatewayStatus",
    "InverterState",
    "MeterBatch",
    "MeterFlag",
    "MeterReading",
    "MeterSource",
    "PhaseValues",
    "Reading",
    "ReadingFlag",
    "ReadingView",
    "ReadingsBatch",
    "RejectedReading",
    "Strict",
    "WireError",
    "decode_batch",
    "decode_meter_batch",
    "device_info_topic",
    "encode",
    "encode_batch",
    "format_ts",
    "gateway_id_from_topic",
    "json_schema",
    "meter_topic",
    "readings_topic",
    "status_topic",
    "to_wire_dict",
]
