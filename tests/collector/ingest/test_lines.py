"""The hot-path shortcuts give exactly what the reference definitions give."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_strategies import ids, wire_readings

import zonnewijk_wire as wire
from collector.ingest.lines import reading_lines
from collector.ingest.process import process_message
from collector.timeseries.measurements import reading_points
from zonnewijk_wire import (
    Reading,
    ReadingsBatch,
    WireError,
    encode_batch,
)
from zonnewijk_wire.codec import _decode_each

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
readings = wire_readings(line_safe=True)


@SETTINGS
@given(ids, readings)
def test_reading_lines_equal_points_to_line(gateway: str, reading: Reading) -> None:
    expected = [p.to_line("ms") for p in reading_points(gateway, reading)]
    assert reading_lines(gateway, reading) == expected


def test_unwritable_raw_key_is_rejected_not_crashing() -> None:
    reading = Reading(device_id="inv-1", ts=datetime.now(UTC), raw={"bad\nkey": 1.0})
    batch = ReadingsBatch(gateway_id="gw-1", seq=1, sent_at=datetime.now(UTC), readings=(reading,))
    result = process_message("zonnewijk/v1/gw-1/readings", encode_batch(batch))
    assert result.lines == []
    assert [r.reason for r in result.rejections] == ["unstorable_value"]


def _decoded(payload: bytes, slow: bool) -> object:
    try:
        if slow:
            return _decode_each(payload, "gw-1", Reading)
        return wire.decode_batch(payload, topic_gateway_id="gw-1")
    except WireError as exc:
        return ("error", exc.reason, exc.detail)


@SETTINGS
@given(
    st.lists(readings, min_size=1, max_size=4),
    st.sampled_from(["none", "drop_v", "extra", "bad_reading", "gateway"]),
)
def test_decode_fast_path_accepts_exactly_what_the_slow_path_accepts(
    items: list[Reading], mutation: str
) -> None:
    batch = ReadingsBatch(
        gateway_id="gw-1", seq=3, sent_at=datetime.now(UTC), readings=tuple(items)
    )
    data = json.loads(encode_batch(batch))
    if mutation == "drop_v":
        del data["v"]
    elif mutation == "extra":
        data["readings"][0]["surprise"] = 1
    elif mutation == "bad_reading":
        data["readings"][-1]["ts"] = "not a time"
    elif mutation == "gateway":
        data["gateway_id"] = "gw-2"
    payload = json.dumps(data).encode()
    assert _decoded(payload, slow=False) == _decoded(payload, slow=True)
