"""Property-based tests: arbitrary and mutated payloads never crash the decoder or the collector,
never get a failing value stored, and every refusal carries a reason."""

from __future__ import annotations

import json
import math
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.services import Mosquitto
from collector.ingest.directory import DeviceRecord, StaticDirectory
from collector.ingest.pipeline import Collector, MqttConnection
from collector.ingest.process import ProcessedMessage, process_message
from collector.ingest.validate import ReadingValidator, ValidationLimits
from collector.timeseries.influx import InfluxClient, Point
from zonnewijk_wire import (
    InverterState,
    Reading,
    ReadingFlag,
    ReadingsBatch,
    WireError,
    decode_batch,
    encode_batch,
    readings_topic,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = ValidationLimits()
RATING_W = 4000.0
DIRECTORY = StaticDirectory.of(
    [DeviceRecord("gw-1", f"inv-{i}", rated_ac_power_w=RATING_W) for i in range(3)]
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)

readings = st.builds(
    Reading,
    device_id=st.sampled_from(["inv-0", "inv-1", "inv-2", "inv-x"]),
    ts=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
    ),
    ac_power_w=st.none() | st.floats(-1e4, 1e7, allow_nan=False),
    ac_energy_wh=st.none() | st.floats(0, 1e13, allow_nan=False),
    ac_voltage_v=st.none() | st.floats(-10, 1000, allow_nan=False),
    grid_frequency_hz=st.none() | st.floats(-1, 100, allow_nan=False),
    cabinet_temp_c=st.none() | st.floats(-100, 200, allow_nan=False),
    state=st.sampled_from(InverterState),
    flags=st.lists(st.sampled_from(ReadingFlag), max_size=2, unique=True).map(tuple),
)
batches = st.builds(
    ReadingsBatch,
    gateway_id=st.just("gw-1"),
    seq=st.integers(0, 10**9),
    sent_at=st.just(NOW),
    readings=st.lists(readings, min_size=1, max_size=8).map(tuple),
)


def check_outcome(result: ProcessedMessage, sent_readings: int | None) -> None:
    """What must hold for any message: reasons given, nothing invalid stored, all accounted."""
    for rejection in result.rejections:
        assert re.fullmatch(r"[a-z][a-z0-9_]{2,40}", rejection.reason), rejection.reason
        assert rejection.detail
    if not result.points:
        assert result.readings == 0
    if sent_readings is not None and not any(r.reading_index is None for r in result.rejections):
        assert result.readings + len(result.rejections) == sent_readings
    for point in result.points:
        assert_valid_point(point)


def assert_valid_point(point: Point) -> None:
    """An independent oracle: the stored values obey the limits the validator enforces."""
    age_s = (NOW - point.time).total_seconds()
    if not point.measurement.endswith("_time_unknown"):  # a time known to be unknown is
        # stored apart whatever it says (docs/clock.md)
        assert -LIMITS.future_tolerance_s <= age_s <= LIMITS.max_age_s
    for name, value in point.fields.items():
        if isinstance(value, float):
            assert math.isfinite(value)
        if name == "ac_power_w":
            assert isinstance(value, float)
            assert LIMITS.min_ac_power_w <= value <= RATING_W * 1.2 + 50
        elif name in LIMITS.ranges:
            low, high = LIMITS.ranges[name]
            assert isinstance(value, float) and low <= value <= high, (name, value)
    if point.measurement in ("inverter", "inverter_time_unknown"):
        assert point.tags["device"] in {"inv-0", "inv-1", "inv-2"}


def validator() -> ReadingValidator:
    return ReadingValidator(directory=DIRECTORY, limits=LIMITS)


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(payload: bytes) -> None:
    try:
        decode_batch(payload)
    except WireError as exc:
        assert exc.reason and exc.detail
    result = process_message(readings_topic("gw-1"), payload, validator(), now=NOW)
    check_outcome(result, None)


@FUZZ
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    payload = json.dumps(value).encode()
    check_outcome(process_message(readings_topic("gw-1"), payload, validator(), now=NOW), None)


@FUZZ
@given(batches)
def test_generated_batches_are_stored_only_when_valid(batch: ReadingsBatch) -> None:
    result = process_message(readings_topic("gw-1"), encode_batch(batch), validator(), now=NOW)
    check_outcome(result, len(batch.readings))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, int | None]:
    """A valid batch with one field of one reading (or the envelope) replaced or removed."""
    batch = draw(batches)
    data = json.loads(encode_batch(batch))
    target: dict[str, Any] = (
        data if draw(st.booleans()) and len(data) else draw(st.sampled_from(data["readings"]))
    )
    key = draw(st.sampled_from([*target.keys(), "extra_key"]))
    count: int | None = None if target is data and key == "readings" else len(batch.readings)
    action = draw(st.sampled_from(["replace", "delete"]))
    if action == "delete":
        target.pop(key, None)
    else:
        target[key] = draw(json_values)
    text = json.dumps(data)
    if draw(st.booleans()):  # and sometimes a flipped byte
        position = draw(st.integers(0, len(text) - 1))
        text = text[:position] + draw(st.characters()) + text[position + 1 :]
    return text.encode("utf-8", errors="surrogatepass"), count


@FUZZ
@given(mutated())
def test_mutated_batches(case: tuple[bytes, int | None]) -> None:
    payload, count = case
    result = process_message(readings_topic("gw-1"), payload, validator(), now=NOW)
    check_outcome(result, count)


def _mutations(seed: int, n: int) -> list[bytes]:
    """Deterministic mutated payloads for the live test (hypothesis drives the pure ones)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out: list[bytes] = []
    for i in range(n):
        reading = {
            "device_id": f"inv-{rng.randrange(3)}",
            "ts": (now - timedelta(seconds=rng.randrange(1, 10_000))).isoformat(),
            "ac_power_w": rng.uniform(-1000, 10_000),
            "ac_voltage_v": rng.uniform(0, 400),
            "ac_energy_wh": 1_000_000.0 + i,
        }
        data: dict[str, Any] = {
            "v": 1,
            "gateway_id": "gw-1",
            "seq": i,
            "sent_at": now.isoformat(),
            "readings": [reading],
        }
        choice = rng.randrange(5)
        if choice == 0:
            reading[rng.choice(list(reading))] = rng.choice([None, "x", [], {}, -1e300, True])
        elif choice == 1:
            del data[rng.choice(["v", "gateway_id", "seq", "sent_at"])]
        text = json.dumps(data)
        if choice == 2:
            p = rng.randrange(len(text))
            text = text[:p] + chr(rng.randrange(32, 0x3000)) + text[p + 1 :]
        out.append(text.encode())
    return out


def test_live_collector_survives_mutations_and_dead_letters_each_refusal(
    mosquitto: Mosquitto, influx: InfluxClient
) -> None:
    payloads = _mutations(seed=5, n=150)
    dead: list[dict[str, Any]] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzz-dl")
    watcher.on_message = lambda c, u, m: dead.append(json.loads(m.payload))
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe("zonnewijk/v1/_deadletter", qos=1)
    watcher.loop_start()
    with Collector(
        mqtt_connection=MqttConnection(port=mosquitto.port, client_id="fuzz-collector"),
        influx=influx,
        validator=ReadingValidator(directory=DIRECTORY),
        batch_max_wait_s=0.02,
    ) as collector:
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzz-pub")
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        for info in [pub.publish(readings_topic("gw-1"), p, qos=1) for p in payloads]:
            info.wait_for_publish(10)
        assert collector.wait_idle(20)
        pub.loop_stop()
    watcher.loop_stop()
    stats = collector.stats
    assert stats.messages == len(payloads)  # every message acknowledged, none lost or stuck
    assert stats.readings_stored + stats.rejected_total() == len(payloads)  # one reading each
    assert stats.rejected_total() > 10 and stats.readings_stored > 10  # the mix was real
    assert len(dead) == stats.rejected_total()
    assert all(d["reason"] and d["detail"] and "original" in d for d in dead)
    rows = influx.query_records('SELECT "ac_power_w", "ac_voltage_v" FROM "inverter"')
    assert len(rows) == stats.readings_stored
    for row in rows:  # a value may be absent (a mutation set it to null), never out of range
        assert row["ac_power_w"] is None or -500 <= row["ac_power_w"] <= RATING_W * 1.2 + 50
        assert row["ac_voltage_v"] is None or 0 <= row["ac_voltage_v"] <= 300
