"""Encoding any wire model to JSON, and decoding readings messages with a reason per refusal."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from zonnewijk_wire.common import (
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_BATCH,
    WIRE_VERSION,
    Identifier,
    Strict,
    UtcDatetime,
)
from zonnewijk_wire.meter import MeterBatch, MeterReading
from zonnewijk_wire.readings import Reading, ReadingsBatch

#: The item of a batch: an inverter's or a meter's reading.
Item = TypeVar("Item", Reading, MeterReading)


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


def encode_batch(batch: ReadingsBatch | MeterBatch) -> bytes:
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
class DecodedBatch(Generic[Item]):
    """A batch's envelope, its valid readings and the refused ones with their reasons."""

    gateway_id: str
    seq: int
    sent_at: datetime
    readings: tuple[Item, ...]
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


def decode_batch(payload: bytes, *, topic_gateway_id: str | None = None) -> DecodedBatch[Reading]:
    """Parse a readings message.

    The envelope (version, gateway id, sequence, timestamp) must be valid or the whole message
    is refused with :class:`WireError`. Each reading is then validated on its own: bad ones are
    returned in ``rejected`` with a reason, good ones still get through.
    ``topic_gateway_id``, when given, must equal the payload's gateway id.
    """
    return _decode(payload, topic_gateway_id, Reading, _WholeBatch[Reading])


def decode_meter_batch(
    payload: bytes, *, topic_gateway_id: str | None = None
) -> DecodedBatch[MeterReading]:
    """Parse a meter message (:class:`MeterBatch`), as :func:`decode_batch` does readings."""
    return _decode(payload, topic_gateway_id, MeterReading, _WholeBatch[MeterReading])


def _decode(
    payload: bytes,
    topic_gateway_id: str | None,
    item_model: type[Item],
    whole_model: type[_WholeBatch[Item]],
) -> DecodedBatch[Item]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError("too_large", f"{len(payload)} bytes, limit {MAX_PAYLOAD_BYTES}")
    # Fast path for the normal case, a wholly valid batch: one validation call in pydantic-core
    # (about 2x faster). Anything it refuses goes through the reading-by-reading path below,
    # which gives the reasons; both accept exactly the same messages (tested).
    try:
        whole = whole_model.model_validate_json(payload)
    except ValidationError:
        pass
    else:
        if topic_gateway_id is None or whole.gateway_id == topic_gateway_id:
            readings = whole.readings
            return DecodedBatch(whole.gateway_id, whole.seq, whole.sent_at, readings)
    return _decode_each(payload, topic_gateway_id, item_model)


def _decode_each(
    payload: bytes, topic_gateway_id: str | None, item_model: type[Item]
) -> DecodedBatch[Item]:
    """A batch reading by reading, with a reason for each refusal."""
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
    good: list[Item] = []
    rejected: list[RejectedReading] = []
    for index, item in enumerate(raw_readings):
        try:
            good.append(item_model.model_validate(item))
        except ValidationError as exc:
            rejected.append(RejectedReading(index, _reason(exc), _describe(exc), item))
    return DecodedBatch(header.gateway_id, header.seq, header.sent_at, tuple(good), tuple(rejected))


class _Envelope(Strict):
    v: Literal[1]
    gateway_id: Identifier
    seq: Annotated[int, Field(ge=0)]
    sent_at: UtcDatetime


class _WholeBatch(_Envelope, Generic[Item]):
    readings: Annotated[tuple[Item, ...], Field(min_length=1, max_length=MAX_READINGS_PER_BATCH)]
