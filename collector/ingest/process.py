"""One MQTT message into line protocol and rejections: decode, validate, build lines (no I/O).

:func:`process_message` is the collector's CPU stage, pure apart from the validator's counter
memory: a readings message is decoded by the fast decoder (:mod:`collector.ingest.decode`), or,
for anything it does not take, by the wire model (:func:`zonnewijk_wire.decode_batch`), which
gives the reasons; its readings are validated (:mod:`collector.ingest.validate`) and turned into
line protocol (:mod:`collector.ingest.lines`). A status message becomes one ``gateway_status``
point. Whatever cannot be stored becomes a :class:`Rejection` with a reason.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from pydantic import ValidationError

from collector.ingest.decode import decode_readings
from collector.ingest.lines import reading_lines
from collector.ingest.meter_checks import validate_meter_readings
from collector.ingest.validate import ReadingValidator, is_implausible_value, is_time_unknown
from collector.timeseries.influx import FieldValue, Point
from collector.timeseries.measurements import (
    GATEWAY_STATUS_MEASUREMENT,
    meter_points,
    reading_points,
    rejected_point,
)
from zonnewijk_wire import (
    GatewayStatus,
    MeterReading,
    Reading,
    ReadingView,
    WireError,
    decode_batch,
    decode_meter_batch,
    gateway_id_from_topic,
)

__all__ = ["ProcessedMessage", "Rejection", "metric_reason", "process_message", "reading_json"]


@dataclass(frozen=True)
class Rejection:
    """Why a message or one of its readings was not stored."""

    topic: str
    reason: str
    detail: str
    original: object
    reading_index: int | None = None


@dataclass
class ProcessedMessage:
    """What one MQTT message turns into: lines to write and rejections to report."""

    lines: list[str]
    readings: int
    rejections: list[Rejection]
    gateway_id: str | None
    is_status: bool = False
    newest_reading: datetime | None = None
    oldest_reading: datetime | None = None
    #: The readings the lines store (``points`` rebuilds them as :class:`Point` objects).
    good: tuple[ReadingView, ...] = ()
    status_point: Point | None = None
    #: The meter readings the lines store (a ``meter`` message).
    good_meter: tuple[MeterReading, ...] = ()
    #: The gateway's message sequence number (readings and meter messages whose envelope
    #: decoded; :mod:`collector.ingest.sequence_gaps` looks for holes in it).
    seq: int | None = None

    @property
    def points(self) -> list[Point]:
        """The stored points as objects (tests, tools); the collector writes ``lines``."""
        if self.status_point is not None:
            return [self.status_point]
        if not self.lines:
            return []
        gateway = self.gateway_id or ""
        return [p for r in self.good for p in reading_points(gateway, r)] + [
            p for r in self.good_meter for p in meter_points(gateway, r)
        ]


#: Reasons the wire decoder may give as ``invalid_<field>``; anything else is a sender's key.
_KNOWN_FIELDS = frozenset(
    {"message", "v", "gateway_id", "seq", "sent_at", "readings"}
    | set(Reading.model_fields)
    | set(MeterReading.model_fields)
    | set(GatewayStatus.model_fields)
)


def metric_reason(reason: str) -> str:
    """Keep reasons a bounded vocabulary (they are metric labels): ``invalid_<unknown key>``
    becomes ``unknown_field``; the detail still names the key."""
    if reason.startswith("invalid_") and reason[len("invalid_") :] not in _KNOWN_FIELDS:
        return "unknown_field"
    return reason


def _is_status_topic(topic: str) -> bool:
    return topic.endswith("/status")


def _is_meter_topic(topic: str) -> bool:
    return topic.endswith("/meter")


def process_message(
    topic: str,
    payload: bytes,
    validator: ReadingValidator | None = None,
    *,
    now: datetime | None = None,
) -> ProcessedMessage:
    """Decode and validate one message into points and rejections (no I/O).

    ``validator`` defaults to one that knows every gateway and device (no registry).
    """
    now = now or datetime.now(UTC)
    if validator is None:
        validator = ReadingValidator()
    gateway_id = gateway_id_from_topic(topic)
    if _is_status_topic(topic):
        return _process_status(topic, payload, gateway_id, now)
    if _is_meter_topic(topic):
        return _process_meter(topic, payload, gateway_id, validator, now)
    readings: Sequence[ReadingView]
    rejections: list[Rejection] = []
    original_index: Sequence[int]
    fast = decode_readings(payload, gateway_id)
    if fast is not None:  # the common case: a wholly valid batch
        batch_gateway = fast.gateway_id
        seq = fast.seq
        readings = fast.readings
        original_index = range(len(readings))
    else:  # the wire model decides, and gives the reasons
        try:
            decoded = decode_batch(payload, topic_gateway_id=gateway_id)
        except WireError as exc:
            return ProcessedMessage(
                [],
                0,
                [Rejection(topic, metric_reason(exc.reason), exc.detail, payload_text(payload))],
                gateway_id,
            )
        batch_gateway = decoded.gateway_id
        seq = decoded.seq
        readings = decoded.readings
        rejections = [
            Rejection(topic, metric_reason(r.reason), r.detail, r.original, reading_index=r.index)
            for r in decoded.rejected
        ]
        rejected_indices = {r.index for r in decoded.rejected}
        original_index = [
            i for i in range(len(readings) + len(rejected_indices)) if i not in rejected_indices
        ]
    problem = validator.check_gateway(batch_gateway)
    if problem is not None:
        return ProcessedMessage(
            [],
            0,
            [Rejection(topic, problem.reason, problem.detail, payload_text(payload))],
            batch_gateway,
        )
    good, bad = validator.validate(batch_gateway, readings, now)
    lines: list[str] = []
    for index, reading, prob in bad:
        if is_implausible_value(prob.reason):
            # the device is registered and the time is valid (those checks come first)
            point = rejected_point(batch_gateway, reading.device_id, prob.reason, reading.ts)
            lines.append(point.to_line("ms"))
        rejections.append(
            Rejection(
                topic,
                prob.reason,
                prob.detail,
                reading_json(reading),
                reading_index=original_index[index],
            )
        )
    stored: list[ReadingView] = []
    for reading in good:
        try:
            lines.extend(reading_lines(batch_gateway, reading))
        except ValueError as exc:  # e.g. a raw key with a newline: not writable
            rejections.append(
                Rejection(
                    topic,
                    "unstorable_value",
                    str(exc)[:300],
                    reading_json(reading),
                    reading_index=original_index[_index_of(readings, reading)],
                )
            )
        else:
            stored.append(reading)
    if rejections:
        rejections.sort(key=lambda r: r.reading_index or 0)
    timed = [r.ts for r in stored if not is_time_unknown(r.flags)]  # docs/clock.md
    newest = max(timed, default=None)
    oldest = min(timed, default=None)
    return ProcessedMessage(
        lines, len(stored), rejections, batch_gateway, False, newest, oldest, tuple(stored),
        seq=seq,
    )  # fmt: skip


def _index_of(readings: Sequence[ReadingView], reading: ReadingView) -> int:
    """Position of this very object in the batch (readings may be equal, never identical)."""
    return next(i for i, r in enumerate(readings) if r is reading)


def reading_json(reading: ReadingView) -> object:
    """A reading as the JSON of wire v1 (the dead letter's ``original``), from either decoder."""
    model = (
        reading
        if isinstance(reading, Reading)
        else Reading.model_validate(msgspec.to_builtins(reading, enc_hook=datetime.isoformat))
    )
    return model.model_dump(mode="json", exclude_none=True)


def _process_meter(
    topic: str,
    payload: bytes,
    gateway_id: str | None,
    validator: ReadingValidator,
    now: datetime,
) -> ProcessedMessage:
    """A ``meter`` message (grid meters): decoded by the wire model, checked, as points."""
    try:
        decoded = decode_meter_batch(payload, topic_gateway_id=gateway_id)
    except WireError as exc:
        return ProcessedMessage(
            [],
            0,
            [Rejection(topic, metric_reason(exc.reason), exc.detail, payload_text(payload))],
            gateway_id,
        )
    rejections = [
        Rejection(topic, metric_reason(r.reason), r.detail, r.original, reading_index=r.index)
        for r in decoded.rejected
    ]
    problem = validator.check_gateway(decoded.gateway_id)
    if problem is not None:
        return ProcessedMessage(
            [],
            0,
            [Rejection(topic, problem.reason, problem.detail, payload_text(payload))],
            decoded.gateway_id,
        )
    rejected_indices = {r.index for r in decoded.rejected}
    original_index = [
        i for i in range(len(decoded.readings) + len(rejected_indices)) if i not in rejected_indices
    ]
    good, bad = validate_meter_readings(validator, decoded.gateway_id, decoded.readings, now)
    for index, reading, prob in bad:
        rejections.append(
            Rejection(
                topic,
                prob.reason,
                prob.detail,
                reading.model_dump(mode="json", exclude_none=True),
                reading_index=original_index[index],
            )
        )
    rejections.sort(key=lambda r: r.reading_index or 0)
    lines = [p.to_line() for r in good for p in meter_points(decoded.gateway_id, r)]
    return ProcessedMessage(
        lines,
        len(good),
        rejections,
        decoded.gateway_id,
        newest_reading=max((r.ts for r in good), default=None),
        oldest_reading=min((r.ts for r in good), default=None),
        good_meter=tuple(good),
        seq=decoded.seq,
    )


def _process_status(
    topic: str, payload: bytes, gateway_id: str | None, now: datetime
) -> ProcessedMessage:
    try:
        status = GatewayStatus.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        return ProcessedMessage(
            [],
            0,
            [Rejection(topic, "invalid_status", f"{where}: {first['msg']}", payload_text(payload))],
            gateway_id,
            is_status=True,
        )
    if gateway_id is not None and status.gateway_id != gateway_id:
        return ProcessedMessage(
            [],
            0,
            [
                Rejection(
                    topic,
                    "gateway_mismatch",
                    f"status says gateway {status.gateway_id!r} but was published under "
                    f"{gateway_id!r}",
                    payload_text(payload),
                )
            ],
            gateway_id,
            is_status=True,
        )
    fields: dict[str, FieldValue] = {"state": status.state}
    if status.spool_depth is not None:
        fields["spool_depth"] = status.spool_depth
    if status.spool_dropped is not None:
        fields["spool_dropped"] = status.spool_dropped
    if status.firmware_version:
        fields["firmware_version"] = status.firmware_version.replace("\n", " ")
    if status.last_poll:
        fields["last_poll"] = status.last_poll.replace("\n", " ")
    # What the fleet runs (issue 21): Grafana's fleet table groups gateways by these.
    if status.config_version is not None:
        fields["config_version"] = status.config_version
    for name in ("config_refused", "package_version", "channel"):
        value = getattr(status, name)
        if value:
            fields[name] = value.replace("\n", " ")
    # The will ("offline") carries no time: it is stored when the broker sent it.
    point = Point(
        GATEWAY_STATUS_MEASUREMENT, {"gateway": status.gateway_id}, fields, status.ts or now
    )
    return ProcessedMessage(
        [point.to_line()], 0, [], status.gateway_id, is_status=True, status_point=point
    )


def payload_text(payload: bytes) -> object:
    """A payload for a dead letter: its text, or base64 when it is not UTF-8."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(payload).decode()}
