"""The fast decoder accepts only what the wire models accept, with the same values.

Whatever :func:`collector.ingest.decode.decode_readings` refuses goes to the wire model, which
decides and explains; so the one property that matters is: accepted by the fast decoder implies
accepted by :func:`zonnewijk_wire.decode_batch`, reading for reading equal.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_strategies import wire_readings

from collector.ingest.decode import FastBatch, FastDcInput, FastReading, decode_readings
from collector.ingest.process import process_message, reading_json
from zonnewijk_wire import (
    DcInput,
    Reading,
    ReadingFlag,
    ReadingsBatch,
    WireError,
    decode_batch,
    encode_batch,
)

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

readings = wire_readings()

#: Values a sender might put anywhere: the wrong type, the edge of a type, the wrong shape.
odd_values = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        2**63,
        2**64 + 1,
        -(2**70),
        1.0,
        4.0,
        -0.0,
        1e308,
        "1.5",
        "4",
        "",
        "producing",
        "counter_backwards",
        [],
        {},
        [1],
        {"mppt": 1},
        "2026-11-28T12:00:00Z",
        "2026-11-28T12:00:00.1234567Z",
        "2026-11-28T12:00:00.9999996Z",
        "2026-11-28T12:00:00+01:00",
        "2026-11-28T12:00:00",
        "2026-11-28t12:00:00z",
        "2026-11-28 12:00:00Z",
        "2026-11-28T12:00Z",
        "2026-11-28T12:00:00.5-00:00",
        "2026-11-28T23:59:60Z",
        "2026-02-30T12:00:00Z",
        1764331200,
        "inv-1\n",
        "inv 1",
        "x" * 65,
    ]
)
timestamps = st.from_regex(
    r"20[0-9]{2}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
    r"(\.[0-9]{1,9})?([Zz]|[+-][01][0-9]:[0-5][0-9])",
    fullmatch=True,
)


def as_plain(value: Any) -> Any:
    """Wire model or fast struct as plain Python values, for comparing the two decoders."""
    if isinstance(value, msgspec.Struct):
        return {f: as_plain(getattr(value, f)) for f in value.__struct_fields__}
    if isinstance(value, Reading | DcInput):
        return {f: as_plain(getattr(value, f)) for f in type(value).model_fields}
    if isinstance(value, tuple | list):
        return [as_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return (value.isoformat(), value.utcoffset())
    return value


def assert_same_as_wire(payload: bytes, gateway: str | None = "gw-1") -> FastBatch | None:
    """If the fast decoder takes ``payload``, the wire model takes it too, with equal values."""
    fast = decode_readings(payload, gateway)
    if fast is None:
        return None
    try:
        wire = decode_batch(payload, topic_gateway_id=gateway)
    except WireError as exc:  # pragma: no cover - the failure this test exists to show
        raise AssertionError(f"fast decoder accepted what the wire model refuses: {exc}") from exc
    assert wire.rejected == ()
    assert (fast.gateway_id, fast.seq, fast.sent_at) == (wire.gateway_id, wire.seq, wire.sent_at)
    assert as_plain(fast.readings) == as_plain(wire.readings)
    return fast


def batch_json(items: list[Reading]) -> dict[str, Any]:
    batch = ReadingsBatch(gateway_id="gw-1", seq=3, sent_at=NOW, readings=tuple(items))
    return json.loads(encode_batch(batch))  # type: ignore[no-any-return]


def test_structs_mirror_the_wire_models_field_for_field() -> None:
    for fast, model in ((FastReading, Reading), (FastDcInput, DcInput)):
        assert fast.__struct_fields__ == tuple(model.model_fields)
        fast_defaults = {
            f.name: f.default_factory() if f.default is msgspec.NODEFAULT else f.default
            for f in msgspec.structs.fields(fast)
            if f.default is not msgspec.NODEFAULT or f.default_factory is not msgspec.NODEFAULT
        }
        model_defaults = {
            name: field.get_default(call_default_factory=True)
            for name, field in model.model_fields.items()
            if not field.is_required()
        }
        assert fast_defaults == model_defaults
    assert FastBatch.__struct_fields__ == tuple(ReadingsBatch.model_fields)


@SETTINGS
@given(st.lists(readings, min_size=1, max_size=4))
def test_valid_batches_take_the_fast_path_with_equal_values(items: list[Reading]) -> None:
    payload = encode_batch(
        ReadingsBatch(gateway_id="gw-1", seq=3, sent_at=NOW, readings=tuple(items))
    )
    fast = assert_same_as_wire(payload)
    # The one valid message the fast path leaves to the wire model: seven digits followed by
    # a character that may end a time's fraction, anywhere (see fast_decode).
    looks_sub_microsecond = re.search(rb"[0-9]{7}[Zz+-]", payload) is not None
    assert (fast is not None) != looks_sub_microsecond


@SETTINGS
@given(
    st.lists(readings, min_size=1, max_size=3),
    st.data(),
)
def test_mutated_batches_are_never_accepted_differently(
    items: list[Reading], data: st.DataObject
) -> None:
    message = batch_json(items)
    where = data.draw(st.sampled_from(["envelope", "reading", "dc", "raw"]))
    value = data.draw(odd_values | timestamps | readings.map(lambda r: r.model_dump(mode="json")))
    if where == "envelope":
        key = data.draw(st.sampled_from(["v", "gateway_id", "seq", "sent_at", "readings", "x"]))
        message[key] = value
    elif where == "reading":
        target = message["readings"][data.draw(st.integers(0, len(items) - 1))]
        key = data.draw(st.sampled_from([*Reading.model_fields, "surprise"]))
        target[key] = value
    elif where == "dc":
        target = message["readings"][0]
        target["dc"] = [
            {"mppt": 1, data.draw(st.sampled_from([*DcInput.model_fields, "x"])): value}
        ]
    else:
        message["readings"][0]["raw"] = {"k": value}
    assert_same_as_wire(json.dumps(message).encode())


@SETTINGS
@given(timestamps)
def test_timestamp_texts_are_read_as_the_wire_model_reads_them(text: str) -> None:
    message = batch_json([Reading(device_id="inv-1", ts=NOW)])
    message["readings"][0]["ts"] = text
    message["sent_at"] = text
    assert_same_as_wire(json.dumps(message).encode())


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T12:00:00.1234567Z",  # msgspec would round to ...123457, pydantic truncates
        "2026-11-28T12:00:00.9999996Z",  # msgspec would round up to the next second
        "2026-11-28T12:00:00.9999996+00:00",
        "2026-11-28T12:00:00.123456789z",
    ],
)
def test_more_than_six_fractional_digits_take_the_wire_path(text: str) -> None:
    message = batch_json([Reading(device_id="inv-1", ts=NOW)])
    message["readings"][0]["ts"] = text
    payload = json.dumps(message).encode()
    assert decode_readings(payload, "gw-1") is None
    (reading,) = decode_batch(payload, topic_gateway_id="gw-1").readings
    assert reading.ts.microsecond == int(text.split(".")[1][:6])  # truncated, not rounded


@pytest.mark.parametrize(
    ("key", "value", "outcome"),
    [
        ("ts", "2026-11-28T13:00:00+01:00", "invalid_ts"),  # the same instant, not in UTC
        ("ac_power_w", "1500", "ac_power_w=1500.0"),  # the wire model coerces; msgspec never
        ("vendor_state", 4.0, "vendor_state=4i"),
        ("vendor_state", True, "vendor_state=1i"),
        ("ac_power_w", "<1e999>", "invalid_ac_power_w"),  # JSON text 1e999: infinity
        ("device_id", "inv-1\n", "invalid_device_id"),
        ("mystery", 1, "unknown_field"),
        ("device_id", "inv-1234567-b", "device=inv-1234567-b"),  # looks like 7 fraction digits
    ],
)
def test_anything_unusual_is_decided_by_the_wire_model(
    key: str, value: object, outcome: str
) -> None:
    message = batch_json([Reading(device_id="inv-1", ts=NOW)])
    message["readings"][0][key] = value
    payload = json.dumps(message).replace('"<1e999>"', "1e999").encode()
    assert decode_readings(payload, "gw-1") is None
    result = process_message("zonnewijk/v1/gw-1/readings", payload, now=NOW)
    decided = result.lines[0] if result.lines else result.rejections[0].reason
    assert outcome in decided


def test_gateway_of_the_topic_must_match() -> None:
    payload = json.dumps(batch_json([Reading(device_id="inv-1", ts=NOW)])).encode()
    assert decode_readings(payload, "gw-1") is not None
    assert decode_readings(payload, None) is not None
    assert decode_readings(payload, "gw-2") is None


def test_dead_letter_original_is_the_same_from_either_decoder() -> None:
    item = Reading(
        device_id="inv-1",
        ts=NOW,
        ac_power_w=9e6,  # above any rating: rejected by validation
        dc=(DcInput(mppt=1, dc_power_w=3.0),),
        flags=(ReadingFlag.REPLAYED,),
        raw={"k": 1.0},
    )
    payload = encode_batch(ReadingsBatch(gateway_id="gw-1", seq=1, sent_at=NOW, readings=(item,)))
    fast = decode_readings(payload, "gw-1")
    assert fast is not None
    assert reading_json(fast.readings[0]) == reading_json(item)
    result = process_message("zonnewijk/v1/gw-1/readings", payload, now=NOW)
    assert [r.reason for r in result.rejections] == ["power_above_rating"]
    assert result.rejections[0].original == item.model_dump(mode="json", exclude_none=True)
