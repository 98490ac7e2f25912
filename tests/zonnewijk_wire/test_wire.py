"""The wire format: one definition, strict validation, generated schema kept in sync."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from zonnewijk_wire import (
    GatewayStatus,
    Reading,
    ReadingsBatch,
    WireError,
    decode_batch,
    encode,
    encode_batch,
    json_schema,
)

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2026, 3, 29, 0, 59, 59, 999000, tzinfo=UTC)


def _batch(**reading: object) -> ReadingsBatch:
    fields: dict[str, object] = {"device_id": "inv-1", "ts": T, "ac_energy_wh": 12.5}
    fields.update(reading)
    return ReadingsBatch(gateway_id="gw-1", seq=7, sent_at=T, readings=(Reading(**fields),))  # type: ignore[arg-type]


def test_round_trip_keeps_values_and_utc_milliseconds() -> None:
    payload = encode_batch(_batch(ac_power_w=-3.5))
    decoded = decode_batch(payload)
    assert decoded.gateway_id == "gw-1" and decoded.seq == 7
    assert decoded.readings[0].ts == T
    assert decoded.readings[0].ac_power_w == -3.5
    assert b'"ts":"2026-03-29T00:59:59.999Z"' in payload


def test_committed_schema_is_generated_from_the_models() -> None:
    committed = json.loads((ROOT / "docs/wire-format.schema.json").read_text())
    assert committed == json_schema(), (
        "run: zonnewijk-gateway wire-schema > docs/wire-format.schema.json"
    )


def test_encoded_messages_validate_against_the_schema() -> None:
    schema = json_schema()
    jsonschema.validate(json.loads(encode_batch(_batch())), schema)
    status = GatewayStatus(gateway_id="gw-1", state="offline")
    jsonschema.validate(json.loads(encode(status)), schema)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not_json"),
        (b"[1,2]", "not_an_object"),
        (b'{"v":2,"readings":[{}]}', "unsupported_version"),
        (
            b'{"v":1,"gateway_id":"gw-1","seq":1,"sent_at":"2026-01-01T00:00:00Z","readings":[]}',
            "no_readings",
        ),
        (
            b'{"v":1,"gateway_id":"a b","seq":1,"sent_at":"2026-01-01T00:00:00Z","readings":[{}]}',
            "invalid_gateway_id",
        ),
        (
            b'{"v":1,"gateway_id":"g","seq":-1,"sent_at":"2026-01-01T00:00:00Z","readings":[{}]}',
            "invalid_seq",
        ),
        (
            b'{"v":1,"gateway_id":"g","seq":1,"sent_at":"2026-01-01T00:00:00","readings":[{}]}',
            "invalid_sent_at",
        ),
        (
            b'{"v":1,"gateway_id":"g","seq":1,"sent_at":"2026-01-01T00:00:00Z","readings":[{}],"x":1}',
            "invalid_x",
        ),
    ],
)
def test_unusable_messages_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode_batch(payload)
    assert info.value.reason == reason
    assert info.value.detail


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"ts": "2026-03-29T02:30:00+02:00"}, "invalid_ts"),
        ({"ac_energy_wh": -1}, "invalid_ac_energy_wh"),
        ({"ac_power_w": "NaN"}, "invalid_ac_power_w"),
        ({"state": "exploded"}, "invalid_state"),
        ({"watts": 5}, "invalid_watts"),
        ({"dc": [{"mppt": 0}]}, "invalid_dc"),
    ],
)
def test_bad_readings_are_refused_one_by_one(patch: dict[str, object], reason: str) -> None:
    message = json.loads(encode_batch(_batch()))
    message["readings"].append(dict(message["readings"][0], **patch))
    decoded = decode_batch(json.dumps(message).encode())
    assert len(decoded.readings) == 1
    assert [r.reason for r in decoded.rejected] == [reason]
    assert decoded.rejected[0].index == 1


def test_json_nan_literal_is_refused() -> None:
    message = encode_batch(_batch()).replace(b'"ac_energy_wh":12.5', b'"ac_energy_wh":NaN')
    with pytest.raises(WireError, match="not_json"):
        decode_batch(message)
