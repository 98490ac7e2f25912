"""The wire format: one definition, strict validation, generated schema kept in sync."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from zonnewijk_wire import (
    GatewayStatus,
    MeterBatch,
    MeterReading,
    Reading,
    ReadingsBatch,
    WireError,
    decode_batch,
    decode_meter_batch,
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


def _meter_batch(**reading: object) -> MeterBatch:
    fields: dict[str, object] = {
        "device_id": "zw012-p1",
        "ts": T,
        "source": "p1",
        "interval_s": 300,
        "import_energy_wh": 1_234_567.0,
        "export_energy_wh": 89_000.0,
        "phases": [{"phase": "L1", "voltage_v": 230.5}],
        "gas": {"ts": T, "gas_m3": 1234.567},
    }
    fields.update(reading)
    return MeterBatch(
        gateway_id="zw012", seq=3, sent_at=T, readings=(MeterReading.model_validate(fields),)
    )


def test_meter_batch_round_trip_and_schema() -> None:
    payload = encode_batch(_meter_batch())
    decoded = decode_meter_batch(payload, topic_gateway_id="zw012")
    reading = decoded.readings[0]
    assert (reading.import_energy_wh, reading.source, reading.interval_s) == (
        1_234_567.0,
        "p1",
        300,
    )
    assert reading.gas is not None and reading.gas.gas_m3 == 1234.567
    jsonschema.validate(json.loads(payload), json_schema())
    # a meter message is not a readings message, nor the other way round
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            json.loads(payload), {**json_schema(), "oneOf": [{"$ref": "#/$defs/ReadingsBatch"}]}
        )
    assert decode_batch(payload).rejected[0].reason == "invalid_source"


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"import_energy_wh": -1.0}, "invalid_import_energy_wh"),
        ({"meter_id_hash": "4530303335303033"}, None),  # a hash: hex, allowed
        ({"meter_id_hash": "E0035003371"}, "invalid_meter_id_hash"),  # not a hash: refused
        ({"source": "modbus"}, "invalid_source"),
        ({"tariff": 3}, "invalid_tariff"),
        ({"phases": [{"phase": "L4"}]}, "invalid_phases"),
    ],
)
def test_bad_meter_readings_are_refused_one_by_one(
    patch: dict[str, object], reason: str | None
) -> None:
    good = json.loads(encode_batch(_meter_batch()))
    bad = {**good["readings"][0], **patch}
    payload = json.dumps({**good, "readings": [good["readings"][0], bad]}).encode()
    decoded = decode_meter_batch(payload)
    if reason is None:
        assert len(decoded.readings) == 2 and decoded.rejected == ()
    else:
        assert len(decoded.readings) == 1
        assert [(r.index, r.reason) for r in decoded.rejected] == [(1, reason)]
