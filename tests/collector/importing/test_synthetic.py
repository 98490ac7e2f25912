"""Interval energy summed into an imported counter (pure), and what settlement makes of its spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.importing.rows import RowInterval
from collector.importing.synthetic import CounterBuilder, Resume
from collector.importing.timestamps import LocalTimes, TimestampError, parse_naive, zone
from collector.registry.fleet_file import load_fleet_file
from collector.settlement.counter_segments import CounterReadings, Installation, counter_segments
from collector.settlement.inputs import SettlementInputs
from collector.settlement.periods import parse_month
from collector.settlement.readings_file import read_dataset, write_dataset

T0 = datetime(2026, 6, 1, 6, tzinfo=UTC)
Q = timedelta(minutes=15)


def iv(k: int, wh: float, device: str = "d") -> RowInterval:
    return RowInterval(k + 2, device, T0 + k * Q, T0 + (k + 1) * Q, wh)


def test_back_to_back_intervals_are_one_span_and_a_missing_one_starts_another() -> None:
    b = CounterBuilder()
    b.resume("d", None)
    points = []
    for k, wh in [(0, 100.0), (1, 150.0), (3, 50.0)]:  # interval 2 missing (or refused)
        made = b.add(iv(k, wh), wh * 4)
        assert not isinstance(made, str)
        points.extend(made)
    assert [(p.ts, p.counter_wh, p.mean_power_w) for p in points] == [
        (T0, 0.0, None),
        (T0 + Q, 100.0, 400.0),
        (T0 + 2 * Q, 250.0, 600.0),
        (T0 + 3 * Q, 250.0, None),  # the second span starts where the total stood
        (T0 + 4 * Q, 300.0, 200.0),
    ]
    spans = b.finish()
    assert [(s.start, s.end, s.energy_wh) for s in spans] == [
        (T0, T0 + 2 * Q, 250.0),
        (T0 + 3 * Q, T0 + 4 * Q, 50.0),
    ]


def test_overlapping_intervals_are_refused_and_a_stored_span_is_continued() -> None:
    b = CounterBuilder()
    b.resume("d", Resume(T0, 1000.0, span_start=T0 - 4 * Q, span_first_wh=600.0, span_intervals=4))
    made = b.add(iv(0, 10.0), 40.0)
    assert not isinstance(made, str)
    assert [p.counter_wh for p in made] == [1010.0]  # no new span: the stored one goes on
    assert isinstance(b.add(RowInterval(9, "d", T0 + Q / 2, T0 + 2 * Q, 5.0), 1.0), str)
    (span,) = b.finish()
    assert (span.start, span.first_wh, span.last_wh, span.resumed) == (
        T0 - 4 * Q,
        600.0,
        1010.0,
        True,
    )


def test_settlement_starts_a_new_counter_segment_at_each_imported_span() -> None:
    t = [T0 + k * Q for k in range(8)]
    # a real counter, then an imported one far below it, then the real one again
    values = [5000.0, 5100.0, 0.0, 80.0, 160.0, 5400.0, 5500.0, 5600.0]
    s = lambda x: x.timestamp()  # noqa: E731
    readings = CounterReadings.from_pairs(
        "d", zip(t, values, strict=True), imported=[(s(t[2]), s(t[4]))]
    )
    segments, anomalies = counter_segments(readings, Installation("d", T0 - Q))
    assert [list(seg.wh) for seg in segments] == [[5000.0, 5100.0], [0.0, 80.0, 160.0],
                                                  [5400.0, 5500.0, 5600.0]]  # fmt: skip
    assert [a.kind for a in anomalies] == ["imported"]  # flagged, and no unknown reset


def test_the_exported_data_set_keeps_the_imported_spans(tmp_path: Path) -> None:
    f = load_fleet_file(Path(__file__).parent / "data" / "fleet.yaml")
    r = CounterReadings.from_arrays(
        "INV-S1", [1.0, 2.0, 3.0], [0.0, 1.0, 2.0], imported=[(1.0, 2.0)]
    )
    inputs = SettlementInputs(parse_month("2026-03"), f, {"INV-S1": r})
    path = tmp_path / "set.jsonl"
    write_dataset(path, inputs, source="test")
    back = read_dataset(path, f)
    assert back.readings["INV-S1"].imported == ((1.0, 2.0),)
    assert back.digest() == inputs.digest()
    plain = SettlementInputs(parse_month("2026-03"), f, {"INV-S1": CounterReadings.from_arrays(
        "INV-S1", [1.0, 2.0, 3.0], [0.0, 1.0, 2.0])})  # fmt: skip
    assert plain.digest() != inputs.digest()


def test_local_times_repeat_at_the_end_of_summer_time_and_skip_at_its_start() -> None:
    times = LocalTimes(zone("Europe/Amsterdam"))
    first = times.to_utc(parse_naive("2026-10-25 02:30", None), "d")
    second = times.to_utc(parse_naive("2026-10-25 02:30", None), "d")
    assert (first, second) == (datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
                               datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # fmt: skip
    with pytest.raises(TimestampError, match="does not exist"):
        times.to_utc(parse_naive("2026-03-29 02:30", None), "d")
    assert times.to_utc(parse_naive("2026-03-29T02:30:00+02:00", None), "e") == datetime(
        2026, 3, 29, 0, 30, tzinfo=UTC
    )
