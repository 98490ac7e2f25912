"""Wire format v1: the one definition of what travels from gateway to collector over MQTT.

The gateway encodes with :func:`encode_batch`; the collector decodes with
:func:`decode_batch`. A message is a *batch* of readings so a replayed week is a few hundred
messages, not sixty thousand. ``docs/wire-format.md`` documents it and ``docs/wire-format.schema.json``
is generated from these models (``zonnewijk-gateway wire-schema``).

Topics (all under ``zonnewijk/v1/<gateway_id>/``):

- ``readings``: :class:`ReadingsBatch`, QoS 1, not retained;
- ``status``: :class:`GatewayStatus`, QoS 1, retained, also the last will (``offline``);
- ``devices/<device_id>/info``: :class:`DeviceInfo`, QoS 1, retained.

Timestamps are UTC. A reading's key is (gateway_id, device_id, ts): replaying it overwrites the
stored point instead of adding a second one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

WIRE_VERSION: Literal[1] = 1
TOPIC_ROOT = "zonnewijk/v1"
#: Largest batch a gateway may send; keeps one MQTT message well below broker limits.
MAX_READINGS_PER_BATCH = 2000
#: Largest payload the collector will try to parse [bytes].
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class InverterState(StrEnum):
    """Normalised inverter state; the vendor's raw code travels beside it."""

    OFF = "off"
    SLEEPING = "sleeping"
    STARTING = "starting"
    PRODUCING = "producing"
    THROTTLED = "throttled"
    SHUTTING_DOWN = "shutting_down"
    FAULT = "fault"
    STANDBY = "standby"
    UNKNOWN = "unknown"


class ReadingFlag(StrEnum):
    """Quality flags a gateway sets on a reading; values are never silently "fixed"."""

    #: A value was the device's "not implemented"/invalid sentinel and was left out.
    SENTINEL = "sentinel"
    #: The lifetime counter is lower than the previous reading's.
    COUNTER_BACKWARDS = "counter_backwards"
    #: The counter rose by more than the AC rating allows in the elapsed time.
    COUNTER_JUMP = "counter_jump"
    #: A scale factor outside -10..10 made a value unusable.
    BAD_SCALE_FACTOR = "bad_scale_factor"
    #: The reading was replayed from the gateway's spool after an outage.
    REPLAYED = "replayed"


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(
            "timestamp must be UTC with an explicit offset (e.g. 2026-11-28T12:00:00Z)"
        )
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DcInput(_Strict):
    """One MPPT input (string) of an inverter."""

    mppt: Annotated[int, Field(ge=1, le=32, description="MPPT number, 1-based")]
    dc_voltage_v: FiniteFloat | None = Field(default=None, description="DC voltage [V]")
    dc_current_a: FiniteFloat | None = Field(default=None, description="DC current [A]")
    dc_power_w: FiniteFloat | None = Field(default=None, description="DC power [W]")


class Reading(_Strict):
    """One poll of one inverter."""

    device_id: Identifier
    ts: UtcDatetime = Field(description="time of the poll, UTC")
    ac_power_w: FiniteFloat | None = Field(default=None, description="AC active power [W]")
    ac_energy_wh: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        default=None, description="lifetime AC energy counter [Wh]"
    )
    ac_voltage_v: FiniteFloat | None = Field(default=None, description="AC voltage, phase A [V]")
    grid_frequency_hz: FiniteFloat | None = Field(default=None, description="grid frequency [Hz]")
    cabinet_temp_c: FiniteFloat | None = Field(default=None, description="cabinet temperature [°C]")
    dc: tuple[DcInput, ...] = Field(default=(), description="per-MPPT DC values")
    state: InverterState = InverterState.UNKNOWN
    vendor_state: int | None = Field(default=None, description="the vendor's raw state code")
    events: tuple[str, ...] = Field(default=(), description="normalised event names")
    vendor_events: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="the vendor's raw event bitfield"
    )
    flags: tuple[ReadingFlag, ...] = Field(default=(), description="quality flags")
    raw: dict[str, FiniteFloat] = Field(
        default_factory=dict, description="raw register values kept for flagged fields"
    )


class DcView(Protocol):
    """The read-only shape of one MPPT input (:class:`DcInput` or a faster decoder's)."""

    @property
    def mppt(self) -> int: ...
    @property
    def dc_voltage_v(self) -> float | None: ...
    @property
    def dc_current_a(self) -> float | None: ...
    @property
    def dc_power_w(self) -> float | None: ...


class ReadingView(Protocol):
    """The read-only shape of a reading: :class:`Reading` and any faster decoder's struct.

    The server reads readings through this protocol, so a decoder other than pydantic (the
    collector's msgspec structs) can stand in for the model; units as in :class:`Reading`.
    """

    @property
    def device_id(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def ac_power_w(self) -> float | None: ...
    @property
    def ac_energy_wh(self) -> float | None: ...
    @property
    def ac_voltage_v(self) -> float | None: ...
    @property
    def grid_frequency_hz(self) -> float | None: ...
    @property
    def cabinet_temp_c(self) -> float | None: ...
    @property
    def dc(self) -> Sequence[DcView]: ...
    @property
    def state(self) -> InverterState: ...
    @property
    def vendor_state(self) -> int | None: ...
    @property
    def events(self) -> Sequence[str]: ...
    @property
    def vendor_events(self) -> int | None: ...
    @property
    def flags(self) -> Sequence[ReadingFlag]: ...
    @property
    def raw(self) -> Mapping[str, float]: ...


class ReadingsBatch(_Strict):
    """A message on ``zonnewijk/v1/<gateway_id>/readings``."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    seq: Annotated[int, Field(ge=0, description="per-gateway sequence number")]
    sent_at: UtcDatetime
    readings: Annotated[tuple[Reading, ...], Field(min_length=1, max_length=MAX_READINGS_PER_BATCH)]


class GatewayStatus(_Strict):
    """Retained message on ``zonnewijk/v1/<gateway_id>/status`` (also the last will)."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    state: Literal["online", "offline"]
    ts: UtcDatetime | None = None
    firmware_version: str | None = None
    spool_depth: Annotated[int, Field(ge=0)] | None = None
    spool_dropped: Annotated[int, Field(ge=0)] | None = None
    last_poll: str | None = Field(default=None, description="outcome of the last poll")


class DeviceInfo(_Strict):
    """Retained message on ``zonnewijk/v1/<gateway_id>/devices/<device_id>/info``."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    device_id: Identifier
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    profile: str | None = Field(
        default=None, description="register map used (sunspec, huawei, ...)"
    )
    sunspec_models: tuple[int, ...] = ()


# --- topics -----------------------------------------------------------------------------------


def readings_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/readings"


def status_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/status"


def device_info_topic(gateway_id: str, device_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/devices/{device_id}/info"


READINGS_FILTER = f"{TOPIC_ROOT}/+/readings"
STATUS_FILTER = f"{TOPIC_ROOT}/+/status"
DEVICE_INFO_FILTER = f"{TOPIC_ROOT}/+/devices/+/info"
DEADLETTER_TOPIC = f"{TOPIC_ROOT}/_deadletter"


def gateway_id_from_topic(topic: str) -> str | None:
    """The gateway id a topic is under, or None when the topic is not ours."""
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        return None
    return parts[2]


# --- encoding ---------------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return format_ts(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def format_ts(value: datetime) -> str:
    """ISO 8601 UTC with millisecond precision and a ``Z`` suffix."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def to_wire_dict(model: BaseModel) -> dict[str, Any]:
    """The JSON-ready dict of a wire model, leaving out unset optional values."""
    data = model.model_dump(mode="python", exclude_none=True, exclude_defaults=False)
    return json.loads(json.dumps(data, default=_json_default, allow_nan=False))  # type: ignore[no-any-return]


def encode(model: BaseModel) -> bytes:
    """Compact UTF-8 JSON of any wire model."""
    data = model.model_dump(mode="python", exclude_none=True)
    return json.dumps(data, default=_json_default, separators=(",", ":"), allow_nan=False).encode()


def encode_batch(batch: ReadingsBatch) -> bytes:
    return encode(batch)


# --- decoding ---------------------------------------------------------------------------------


class WireError(ValueError):
    """A message that cannot be used at all; ``reason`` is short and stable (a metric label)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RejectedReading:
    """A reading of an otherwise valid batch that failed validation."""

    index: int
    reason: str
    detail: str
    original: object


@dataclass(frozen=True)
class DecodedBatch:
    gateway_id: str
    seq: int
    sent_at: datetime
    readings: tuple[Reading, ...]
    rejected: tuple[RejectedReading, ...] = field(default=())


def _describe(error: ValidationError) -> str:
    parts = []
    for err in error.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{loc}: {err['msg']}")
    more = error.error_count() - 5
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = first["loc"][0] if first["loc"] else "message"
    return f"invalid_{loc}"


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not valid JSON")


def decode_batch(payload: bytes, *, topic_gateway_id: str | None = None) -> DecodedBatch:
    """Parse a readings message.

    The envelope (version, gateway id, sequence, timestamp) must be valid or the whole message
    is refused with :class:`WireError`. Each reading is then validated on its own: bad ones are
    returned in ``rejected`` with a reason, good ones still get through.
    ``topic_gateway_id``, when given, must equal the payload's gateway id.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError("too_large", f"{len(payload)} bytes, limit {MAX_PAYLOAD_BYTES}")
    # Fast path for the normal case, a wholly valid batch: one validation call in pydantic-core
    # (about 2x faster). Anything it refuses goes through the reading-by-reading path below,
    # which gives the reasons; both accept exactly the same messages (tested).
    try:
        whole = _WholeBatch.model_validate_json(payload)
    except ValidationError:
        pass
    else:
        if topic_gateway_id is None or whole.gateway_id == topic_gateway_id:
            return DecodedBatch(whole.gateway_id, whole.seq, whole.sent_at, whole.readings)
    return _decode_each(payload, topic_gateway_id)


def _decode_each(payload: bytes, topic_gateway_id: str | None) -> DecodedBatch:
    """:func:`decode_batch` reading by reading, with a reason for each refusal."""
    try:
        data = json.loads(payload, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError("not_json", str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise WireError("not_an_object", f"top level is {type(data).__name__}, expected an object")
    version = data.get("v")
    if version != WIRE_VERSION:
        raise WireError(
            "unsupported_version", f"v={version!r}, this collector reads v={WIRE_VERSION}"
        )
    raw_readings = data.get("readings")
    if not isinstance(raw_readings, list) or not raw_readings:
        raise WireError("no_readings", "'readings' must be a non-empty list")
    if len(raw_readings) > MAX_READINGS_PER_BATCH:
        raise WireError(
            "too_many_readings", f"{len(raw_readings)} readings, limit {MAX_READINGS_PER_BATCH}"
        )
    envelope = {k: v for k, v in data.items() if k != "readings"}
    try:
        header = _Envelope.model_validate(envelope)
    except ValidationError as exc:
        raise WireError(_reason(exc), _describe(exc)) from None
    if topic_gateway_id is not None and header.gateway_id != topic_gateway_id:
        raise WireError(
            "gateway_mismatch",
            f"payload says gateway {header.gateway_id!r} but was published under {topic_gateway_id!r}",
        )
    good: list[Reading] = []
    rejected: list[RejectedReading] = []
    for index, item in enumerate(raw_readings):
        try:
            good.append(Reading.model_validate(item))
        except ValidationError as exc:
            rejected.append(RejectedReading(index, _reason(exc), _describe(exc), item))
    return DecodedBatch(header.gateway_id, header.seq, header.sent_at, tuple(good), tuple(rejected))


class _Envelope(_Strict):
    v: Literal[1]
    gateway_id: Identifier
    seq: Annotated[int, Field(ge=0)]
    sent_at: UtcDatetime


class _WholeBatch(_Envelope):
    readings: Annotated[tuple[Reading, ...], Field(min_length=1, max_length=MAX_READINGS_PER_BATCH)]


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of every message, generated from the models."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Zonnewijk wire format v1",
        "oneOf": [
            {"$ref": "#/$defs/ReadingsBatch"},
            {"$ref": "#/$defs/GatewayStatus"},
            {"$ref": "#/$defs/DeviceInfo"},
        ],
        "$defs": _collect_defs(ReadingsBatch, GatewayStatus, DeviceInfo),
    }


def _collect_defs(*models: type[BaseModel]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/$defs/{model}", mode="validation")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    return defs
