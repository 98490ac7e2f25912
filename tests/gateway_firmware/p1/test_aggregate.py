"""Telegrams into interval readings: edges, counters, means, swaps, resets, glitches.

The telegrams are the published DSMR 5.0 telegram decoded, with counters and power moved as a
meter would move them (one telegram a second)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

from gateway_firmware.p1.aggregate import IntervalAggregator, interval_end
from gateway_firmware.p1.identity import hash_meter_id
from gateway_firmware.p1.telegram import P1Telegram, decode_telegram
from tests.gateway_firmware.p1 import published_telegrams as published
from zonnewijk_wire import MeterFlag, MeterReading

SALT = b"s" * 32
T0 = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)
BASE = decode_telegram(published.TELEGRAM_V5)


def telegram(
    second: int, *, import_w: float = 500.0, export_w: float = 0.0, **changes: object
) -> P1Telegram:
    """The meter's telegram ``second`` seconds after T0, at constant power since T0."""
    fields: dict[str, object] = {
        "import_energy_t2_wh": BASE.import_energy_t2_wh + import_w * second / 3600,
        "export_energy_t1_wh": BASE.export_energy_t1_wh + export_w * second / 3600,
        "import_power_w": import_w,
        "export_power_w": export_w,
    }
    fields.update(changes)
    return dataclasses.replace(BASE, **fields)  # type: ignore[arg-type]


def run(agg: IntervalAggregator, seconds: range, **kw: object) -> list[MeterReading]:
    out: list[MeterReading] = []
    for s in seconds:
        out.extend(agg.add(T0 + timedelta(seconds=s, milliseconds=300), telegram(s, **kw)))  # type: ignore[arg-type]
    return out


def test_interval_edges_on_the_gateway_clock() -> None:
    assert interval_end(T0, 300) == T0  # on the edge: the interval ending there
    assert interval_end(T0 + timedelta(milliseconds=1), 300) == T0 + timedelta(minutes=5)
    assert interval_end(T0 + timedelta(seconds=299), 300) == T0 + timedelta(minutes=5)


def test_one_reading_per_interval_with_counters_at_the_edge() -> None:
    agg = IntervalAggregator("p1", interval_s=300, salt=SALT)
    # a full first interval from T0, then one telegram into the next
    readings = run(agg, range(0, 301))
    assert len(readings) == 1
    [r] = readings
    assert r.ts == T0 + timedelta(minutes=5) and r.interval_s == 300
    # telegrams at 12:00:00.3 ... 12:04:59.3 belong to it: 300, the last 0.7 s before the edge
    assert r.samples == 300 and r.flags == ()
    assert r.import_energy_t2_wh == BASE.import_energy_t2_wh + 500.0 * 299 / 3600
    assert r.import_energy_wh == r.import_energy_t1_wh + r.import_energy_t2_wh  # type: ignore[operator]
    assert (r.import_power_w, r.export_power_w) == (500.0, 0.0)
    assert (r.net_power_min_w, r.net_power_max_w) == (500.0, 500.0)
    assert r.meter_id_hash == hash_meter_id(SALT, BASE.equipment_id or "")
    assert r.meter_id_hash is not None and BASE.equipment_id not in r.model_dump_json()
    assert r.protocol == "DSMR 5.0" and r.gas is None  # gas not opted in


def test_energy_of_consecutive_intervals_adds_up_exactly() -> None:
    agg = IntervalAggregator("p1", interval_s=300, salt=SALT)
    readings = run(agg, range(0, 3601), import_w=1200.0)
    assert [r.ts for r in readings] == [T0 + timedelta(minutes=5 * k) for k in range(1, 13)]
    counters = [r.import_energy_wh or 0.0 for r in readings]
    steps = [b - a for a, b in itertools.pairwise(counters)]
    assert all(abs(step - 100.0) < 1e-6 for step in steps)  # 1.2 kW x 5 min, none twice


def test_means_and_extremes_of_power() -> None:
    agg = IntervalAggregator("p1", interval_s=60, salt=SALT)
    out: list[MeterReading] = []
    for s in range(0, 61):
        # importing 300 W for 30 s, then exporting 900 W
        importing = s < 30
        t = dataclasses.replace(
            BASE,
            import_energy_t2_wh=BASE.import_energy_t2_wh + 300.0 * min(s, 30) / 3600,
            export_energy_t1_wh=BASE.export_energy_t1_wh + 900.0 * max(0, s - 30) / 3600,
            import_power_w=300.0 if importing else 0.0,
            export_power_w=0.0 if importing else 900.0,
        )
        out.extend(agg.add(T0 + timedelta(seconds=s, milliseconds=1), t))
    [r] = out
    assert r.samples == 60
    assert r.import_power_w == 150.0 and r.export_power_w == 450.0
    assert (r.net_power_min_w, r.net_power_max_w) == (-900.0, 300.0)
    assert [p.phase for p in r.phases] == ["L1", "L2", "L3"]


def test_missing_telegrams_flag_a_partial_interval_and_silence_closes_it() -> None:
    agg = IntervalAggregator("p1", interval_s=300, salt=SALT)
    assert run(agg, range(0, 100)) == []  # then the cable is pulled
    assert agg.close_due(T0 + timedelta(minutes=5, seconds=2), grace_s=4.0) == []
    [r] = agg.close_due(T0 + timedelta(minutes=5, seconds=4), grace_s=4.0)
    assert r.samples == 100 and MeterFlag.PARTIAL_INTERVAL in r.flags
    assert agg.close_due(T0 + timedelta(hours=1), grace_s=4.0) == []  # nothing: no reading


def test_gas_only_when_opted_in() -> None:
    with_gas = IntervalAggregator("p1", interval_s=60, salt=SALT, gas=True)
    [r] = run(with_gas, range(0, 61))
    assert r.gas is not None and r.gas.gas_m3 == 0.107


def test_a_meter_swap_closes_the_old_series_and_flags_the_new() -> None:
    agg = IntervalAggregator("p1", interval_s=300, salt=SALT)
    out = run(agg, range(0, 120))
    new_meter = {"equipment_id": "4530303434303037333832323436303139"}
    for s in range(120, 301):
        out.extend(
            agg.add(
                T0 + timedelta(seconds=s, milliseconds=300),
                telegram(s, import_energy_t1_wh=10.0, import_energy_t2_wh=20.0 + s, **new_meter),  # type: ignore[arg-type]
            )
        )
    old, new = out
    assert old.ts == T0 + timedelta(seconds=119, milliseconds=300)  # its last telegram
    assert old.flags == (MeterFlag.PARTIAL_INTERVAL,)
    assert new.ts == T0 + timedelta(minutes=5) and MeterFlag.METER_CHANGED in new.flags
    assert new.import_energy_wh == 10.0 + 20.0 + 299
    assert old.meter_id_hash != new.meter_id_hash
    assert agg.stats.meter_changes == 1 and "meter changed" in agg.stats.last_event


def test_a_counter_glitch_is_dropped_never_published() -> None:
    agg = IntervalAggregator("p1", interval_s=60, salt=SALT)
    out = run(agg, range(0, 30))
    # one telegram (CRC intact) with counters 100 kWh lower, one 50 kWh higher
    low = telegram(30, import_energy_t2_wh=BASE.import_energy_t2_wh - 100_000)
    high = telegram(31, import_energy_t2_wh=BASE.import_energy_t2_wh + 50_000)
    out += agg.add(T0 + timedelta(seconds=30, milliseconds=300), low)
    out += agg.add(T0 + timedelta(seconds=31, milliseconds=300), high)
    out += run(agg, range(32, 61))
    [r] = out
    assert r.samples == 58 and agg.stats.implausible == 2
    assert r.import_energy_t2_wh == BASE.import_energy_t2_wh + 500.0 * 59 / 3600


def test_counters_that_restart_and_stay_low_are_a_reset() -> None:
    agg = IntervalAggregator("p1", interval_s=300, salt=SALT)
    out = run(agg, range(0, 100))
    for s in range(100, 301):  # same meter, its counters restarted near zero
        out.extend(
            agg.add(
                T0 + timedelta(seconds=s, milliseconds=300),
                telegram(
                    s,
                    import_energy_t1_wh=0.0,
                    import_energy_t2_wh=s / 10,
                    export_energy_t1_wh=0.0,
                ),
            )
        )
    old, new = out
    assert old.ts == T0 + timedelta(seconds=99, milliseconds=300)
    assert MeterFlag.METER_CHANGED in new.flags and new.import_energy_wh == 29.9
    assert new.samples == 200  # 100 ... 299, the three that confirmed the reset among them
    assert agg.stats.meter_changes == 1 and agg.stats.implausible == 0
