"""Validation rules: each refuses what it should, with a reason, and lets normal data pass."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.ingest.decode import FastDcInput, FastReading
from collector.ingest.directory import CachedDirectory, DeviceRecord, StaticDirectory
from collector.ingest.process import process_message
from collector.ingest.validate import (
    CounterMemory,
    QuickBounds,
    ReadingValidator,
    ValidationLimits,
    check_ac_power,
    check_counter,
    check_range,
    check_reading,
    check_timestamp,
    max_ac_power_w,
    quick_accept,
)
from zonnewijk_wire import (
    DcInput,
    Reading,
    ReadingFlag,
    ReadingsBatch,
    encode_batch,
    readings_topic,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = ValidationLimits()
RECORD = DeviceRecord("gw-1", "inv-1", rated_ac_power_w=3000.0)


def reading(**kw: object) -> Reading:
    base: dict[str, object] = {
        "device_id": "inv-1",
        "ts": NOW - timedelta(minutes=1),
        "ac_power_w": 1500.0,
        "ac_energy_wh": 10_000.0,
    }
    base.update(kw)
    return Reading.model_validate(base)


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (timedelta(seconds=299), None),
        (timedelta(seconds=301), "future_timestamp"),
        (-timedelta(days=3), None),  # late data from a spool is normal
        (-timedelta(days=89), None),
        (-timedelta(days=91), "too_old"),
        (-timedelta(days=20_000), "too_old"),  # a Pi booted at 1970
    ],
)
def test_timestamp_window(offset: timedelta, reason: str | None) -> None:
    problem = check_timestamp(NOW + offset, NOW, LIMITS)
    assert (problem.reason if problem else None) == reason
    if problem:
        assert problem.detail  # a sentence for the operator


def test_timestamp_window_is_configurable() -> None:
    limits = ValidationLimits(max_age_s=3600, future_tolerance_s=10)
    assert check_timestamp(NOW - timedelta(hours=2), NOW, limits) is not None
    assert check_timestamp(NOW + timedelta(seconds=11), NOW, limits) is not None
    assert check_timestamp(NOW - timedelta(minutes=59), NOW, limits) is None


def test_power_limit_follows_rating_with_margin() -> None:
    assert max_ac_power_w(3000.0, LIMITS) == pytest.approx(3000 * 1.2 + 50)
    assert max_ac_power_w(None, LIMITS) == LIMITS.max_ac_power_w
    assert check_ac_power(3650.0, 3000.0, LIMITS) is None
    problem = check_ac_power(3651.0, 3000.0, LIMITS)
    assert problem is not None and problem.reason == "power_above_rating"
    assert "3000" in problem.detail
    assert check_ac_power(65535.0 * 10, None, LIMITS) is None  # no rating: only absolute bound
    assert check_ac_power(2e6, None, LIMITS) is not None
    negative = check_ac_power(-600.0, 3000.0, LIMITS)
    assert negative is not None and negative.reason == "out_of_range_ac_power_w"
    assert check_ac_power(-20.0, 3000.0, LIMITS) is None  # night consumption


def test_range_check_names_field_in_reason() -> None:
    problem = check_range("ac_voltage_v", 400.0, 0.0, 300.0)
    assert problem is not None
    assert problem.reason == "out_of_range_ac_voltage_v"
    assert "400" in problem.detail
    assert check_range("ac_voltage_v", 230.0, 0.0, 300.0) is None


def test_counter_must_not_go_backwards_unless_flagged() -> None:
    prev = (NOW - timedelta(minutes=5), 10_000.0)
    assert check_counter(prev, NOW, 10_000.0, ()) is None  # equal: night
    assert check_counter(prev, NOW, 10_010.0, ()) is None
    problem = check_counter(prev, NOW, 9_990.0, ())
    assert problem is not None and problem.reason == "counter_backwards"
    assert check_counter(prev, NOW, 9_990.0, (ReadingFlag.COUNTER_BACKWARDS,)) is None
    # a late reading (older than the remembered one) is not judged against a newer one
    assert check_counter(prev, NOW - timedelta(minutes=10), 9_000.0, ()) is None
    assert check_counter(None, NOW, 0.0, ()) is None


def test_check_reading_unknown_device_and_dc_ranges() -> None:
    problem = check_reading(reading(), now=NOW, record=None, previous_counter=None, limits=LIMITS)
    assert problem is not None and problem.reason == "unknown_device"
    bad_dc = reading(dc=[DcInput(mppt=2, dc_voltage_v=2000.0)])
    problem = check_reading(bad_dc, now=NOW, record=RECORD, previous_counter=None, limits=LIMITS)
    assert problem is not None and problem.reason == "out_of_range_dc_voltage_v"
    assert "mppt 2" in problem.detail
    ok = check_reading(reading(), now=NOW, record=RECORD, previous_counter=None, limits=LIMITS)
    assert ok is None


def test_validator_remembers_counters_across_batches() -> None:
    validator = ReadingValidator(directory=StaticDirectory.of([RECORD]))
    good, bad = validator.validate(
        "gw-1",
        [reading(ac_energy_wh=100.0, ts=NOW - timedelta(minutes=3)),
         reading(ac_energy_wh=110.0, ts=NOW - timedelta(minutes=2))],
        NOW,
    )  # fmt: skip
    assert len(good) == 2 and bad == []
    good, bad = validator.validate("gw-1", [reading(ac_energy_wh=50.0)], NOW)
    assert good == [] and bad[0][2].reason == "counter_backwards"
    # the refused reading did not become the reference
    good, bad = validator.validate(
        "gw-1", [reading(ac_energy_wh=111.0, ts=NOW - timedelta(seconds=5))], NOW
    )
    assert len(good) == 1


def test_unknown_gateway_refuses_whole_message() -> None:
    validator = ReadingValidator(directory=StaticDirectory.of([RECORD]))
    batch = ReadingsBatch(gateway_id="gw-9", seq=1, sent_at=NOW, readings=(reading(),))
    processed = process_message(readings_topic("gw-9"), encode_batch(batch), validator, now=NOW)
    assert processed.points == []
    assert [r.reason for r in processed.rejections] == ["unknown_gateway"]
    assert processed.rejections[0].reading_index is None


def test_mixed_batch_keeps_good_readings_and_original_indices() -> None:
    validator = ReadingValidator(directory=StaticDirectory.of([RECORD]))
    batch = ReadingsBatch(
        gateway_id="gw-1",
        seq=1,
        sent_at=NOW,
        readings=(
            reading(ts=NOW - timedelta(minutes=4)),
            reading(ts=NOW - timedelta(minutes=3), ac_power_w=99_999.0),
            reading(ts=NOW - timedelta(minutes=2), device_id="inv-unknown"),
            reading(ts=NOW - timedelta(minutes=1)),
        ),
    )
    data = json.loads(encode_batch(batch))
    data["readings"].insert(1, {"device_id": "inv-1", "ts": "yesterday"})  # wire-invalid
    processed = process_message(
        readings_topic("gw-1"), json.dumps(data).encode(), validator, now=NOW
    )
    assert processed.readings == 2
    assert [(r.reading_index, r.reason) for r in processed.rejections] == [
        (1, "invalid_ts"),
        (2, "power_above_rating"),
        (3, "unknown_device"),
    ]
    # the original of a rejected reading is what was sent
    assert processed.rejections[1].original["ac_power_w"] == 99_999.0  # type: ignore[index]


def test_cached_directory_asks_once_per_ttl() -> None:
    calls: list[str] = []

    class Counting(StaticDirectory):
        def device(self, gateway_id: str, device_id: str) -> DeviceRecord | None:
            calls.append(device_id)
            return super().device(gateway_id, device_id)

    clock = [0.0]
    cached = CachedDirectory(
        Counting({("gw-1", "inv-1"): RECORD}), ttl_s=60, clock=lambda: clock[0]
    )
    for _ in range(5):
        assert cached.device("gw-1", "inv-1") == RECORD
    assert calls == ["inv-1"]
    clock[0] = 61.0
    cached.device("gw-1", "inv-1")
    assert calls == ["inv-1", "inv-1"]


def test_counter_memory_keeps_latest_only() -> None:
    memory = CounterMemory()
    memory.update("g", "d", NOW, 10.0)
    memory.update("g", "d", NOW - timedelta(hours=1), 5.0)  # late: does not replace
    assert memory.get("g", "d") == (NOW, 10.0)
    assert len(memory) == 1


# --- the quick path never accepts what check_reading refuses -------------------------------------

edge_floats = st.sampled_from(
    [math.nan, math.inf, -math.inf, -500.0, -500.0001, 0.0, 300.0, 300.0001, 4000.0, 4850.0, 1e12]
) | st.floats(-1e13, 1e13)


@settings(max_examples=600, deadline=None)
@example(  # found by hypothesis: an infinite rating must not wave infinite power through
    power=math.inf, energy=None, voltage=None, frequency=None, temp=None, dc_value=None,
    age_s=0.0, previous=None, rated=math.inf, flags=(), ranges={}, min_power=-500.0,
)  # fmt: skip
@example(  # and an unbounded minimum must not wave minus infinity through
    power=-math.inf, energy=None, voltage=None, frequency=None, temp=None, dc_value=None,
    age_s=0.0, previous=None, rated=None, flags=(), ranges={}, min_power=-math.inf,
)  # fmt: skip
@given(
    power=st.none() | edge_floats,
    energy=st.none() | edge_floats,
    voltage=st.none() | edge_floats,
    frequency=st.none() | edge_floats,
    temp=st.none() | edge_floats,
    dc_value=st.none() | edge_floats,
    age_s=st.sampled_from([-301.0, -300.0, 0.0, 90 * 86400.0, 90 * 86400.0 + 1e-6])
    | st.floats(-1e6, 1e8),
    previous=st.none()
    | st.tuples(st.sampled_from([-10.0, 0.0, 10.0]), st.floats(0, 1e6, allow_nan=False)),
    rated=st.none() | st.sampled_from([0.0, 4000.0, math.inf]),
    flags=st.sampled_from([(), (ReadingFlag.COUNTER_BACKWARDS,)]),
    ranges=st.sampled_from(
        [ValidationLimits().ranges, {}, {"ac_voltage_v": (-math.inf, math.inf)}]
    ),
    min_power=st.sampled_from([-500.0, 0.0, -math.inf]),
)
def test_quick_accept_implies_check_reading_accepts(
    power: float | None,
    energy: float | None,
    voltage: float | None,
    frequency: float | None,
    temp: float | None,
    dc_value: float | None,
    age_s: float,
    previous: tuple[float, float] | None,
    rated: float | None,
    flags: tuple[ReadingFlag, ...],
    ranges: dict[str, tuple[float, float]],
    min_power: float,
) -> None:
    limits = ValidationLimits(ranges=ranges, min_ac_power_w=min_power)
    ts = NOW - timedelta(seconds=age_s)
    # The fast struct does not validate on construction: NaN and infinity get through here.
    item = FastReading(
        device_id="inv-1",
        ts=ts,
        ac_power_w=power,
        ac_energy_wh=energy,
        ac_voltage_v=voltage,
        grid_frequency_hz=frequency,
        cabinet_temp_c=temp,
        dc=(
            FastDcInput(mppt=1, dc_voltage_v=dc_value, dc_current_a=dc_value, dc_power_w=dc_value),
        ),
        flags=flags,
    )
    prev = None if previous is None else (ts + timedelta(seconds=previous[0]), previous[1])
    record = DeviceRecord("gw-1", "inv-1", rated_ac_power_w=rated)
    quick = quick_accept(item, NOW, prev, max_ac_power_w(rated, limits), QuickBounds.of(limits))
    verdict = check_reading(item, now=NOW, record=record, previous_counter=prev, limits=limits)
    if quick:
        assert verdict is None


def test_quick_path_and_reference_agree_on_a_real_batch() -> None:
    items = [
        reading(ts=NOW - timedelta(minutes=10 - i), ac_energy_wh=10_000.0 + i) for i in range(5)
    ] + [
        reading(ts=NOW - timedelta(minutes=4), ac_energy_wh=9_000.0),  # backwards: refused
        reading(ts=NOW - timedelta(minutes=3), ac_power_w=1e5),  # above rating: refused
    ]
    validator = ReadingValidator(directory=StaticDirectory.of([RECORD]))
    good, bad = validator.validate("gw-1", items, NOW)
    assert good == items[:5]
    assert [(i, p.reason) for i, _, p in bad] == [
        (5, "counter_backwards"),
        (6, "power_above_rating"),
    ]
