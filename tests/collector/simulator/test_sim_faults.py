"""Each injected fault shows in the readings the way the ground truth says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.simulator.engine import (
    FLAG_COUNTER_BACKWARDS,
    FLAG_COUNTER_JUMP,
    FLAG_REPLAYED,
    FLAG_SENTINEL,
    S_FAULT,
    Chunk,
    Simulation,
)
from collector.simulator.faults import (
    FAULT_TYPES,
    Fault,
    FaultSchedule,
    generate_faults,
    read_ground_truth,
    write_ground_truth,
)
from collector.simulator.fleet import COUNTER_RESOLUTION_WH, Fleet, generate_fleet

START = datetime(2026, 6, 1, tzinfo=UTC)
END = START + timedelta(days=3)
DAY2 = START + timedelta(days=1)


def _at(hours: float) -> datetime:
    return DAY2 + timedelta(hours=hours)


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    fleet = generate_fleet(12, seed=11)
    assert any(s.mppt_count == 2 for s in fleet.sites)
    return fleet


def _one(chunks: list[Chunk]) -> Chunk:
    assert len(chunks) == 1
    return chunks[0]


def _run(fleet: Fleet, faults: list[Fault]) -> tuple[Chunk, Simulation]:
    sim = Simulation(fleet, START, END, 300, FaultSchedule(tuple(faults)), chunk_steps=10_000)
    return _one(list(sim.chunks())), sim


def _fault(
    fleet: Fleet, index: int, fault_type: str, start: datetime, end: datetime, **detail: Any
) -> Fault:
    site = fleet.sites[index]
    return Fault(site.site_id, site.device_id, site.gateway_id, fault_type, start, end, detail)


def _window(chunk: Chunk, start: datetime, end: datetime) -> np.ndarray:
    return (chunk.epoch_s >= start.timestamp()) & (chunk.epoch_s < end.timestamp())


@pytest.fixture(scope="module")
def clean(fleet: Fleet) -> Chunk:
    return _run(fleet, [])[0]


def test_offline_means_no_readings_and_no_energy(fleet: Fleet, clean: Chunk) -> None:
    f = _fault(fleet, 0, "offline", _at(9), _at(13))
    chunk, _ = _run(fleet, [f])
    w = _window(chunk, f.start, f.end)
    assert not chunk.present[w, 0].any()
    assert chunk.present[~w, 0].all()
    assert chunk.energy_wh[w, 0][1:].sum() == 0.0
    assert clean.energy_wh[w, 0].sum() > 100.0
    # Other sites are untouched.
    assert np.array_equal(chunk.ac_power_w[:, 1:], clean.ac_power_w[:, 1:])


def test_fault_state_reports_fault_with_event_and_no_power(fleet: Fleet) -> None:
    f = _fault(fleet, 1, "fault_state", _at(8), _at(12), event="ground_fault", evt1_bit=0)
    chunk, _ = _run(fleet, [f])
    w = _window(chunk, f.start, f.end)
    assert np.all(chunk.state[w, 1] == S_FAULT)
    assert np.all(chunk.ac_power_w[w, 1] == 0.0)
    assert np.all(chunk.vendor_events[w, 1] == 1)
    assert np.all(chunk.event[w, 1] == 1)
    counter = chunk.ac_energy_wh[w, 1]
    assert counter.min() == counter.max()
    assert not chunk.dc_present[w, 1].any()


def test_dead_string_zeroes_one_mppt(fleet: Fleet, clean: Chunk) -> None:
    index = next(s.index for s in fleet.sites if s.mppt_count == 2)
    f = _fault(fleet, index, "dead_string", _at(9), _at(14), mppt=2)
    chunk, _ = _run(fleet, [f])
    w = _window(chunk, f.start, f.end) & chunk.dc_present[:, index]
    assert w.sum() > 40
    assert np.all(chunk.dc_current_a[w, index, 1] == 0.0)
    assert np.all(chunk.dc_current_a[w, index, 0] > 0.0)
    ratio = chunk.energy_wh[w, index].sum() / clean.energy_wh[w, index].sum()
    share = fleet.sites[index].mppt_modules[0] / fleet.sites[index].modules
    assert ratio == pytest.approx(share, abs=0.12)


def test_degradation_grows_then_is_cleaned(fleet: Fleet, clean: Chunk) -> None:
    f = _fault(fleet, 2, "degradation", START, _at(12), loss=0.3)
    chunk, _ = _run(fleet, [f])
    day1 = _window(chunk, START, DAY2)
    day2_morning = _window(chunk, DAY2, _at(12))
    after = _window(chunk, _at(12), END)
    r1 = chunk.energy_wh[day1, 2].sum() / clean.energy_wh[day1, 2].sum()
    r2 = chunk.energy_wh[day2_morning, 2].sum() / clean.energy_wh[day2_morning, 2].sum()
    assert 1.0 - 0.3 - 0.02 < r2 < r1 < 1.0
    assert np.array_equal(chunk.ac_power_w[after, 2][1:], clean.ac_power_w[after, 2][1:])


def test_frozen_values_repeat_and_counter_catches_up(fleet: Fleet) -> None:
    f = _fault(fleet, 3, "frozen", _at(9), _at(11))
    chunk, _ = _run(fleet, [f])
    w = _window(chunk, f.start, f.end)
    first = int(np.flatnonzero(w)[0])
    for values in (chunk.ac_power_w, chunk.ac_energy_wh, chunk.ac_voltage_v, chunk.cabinet_temp_c):
        assert np.all(values[w, 3] == values[first - 1, 3])
    after = int(np.flatnonzero(w)[-1]) + 1
    jump = chunk.ac_energy_wh[after, 3] - chunk.ac_energy_wh[first - 1, 3]
    assert jump == pytest.approx(chunk.energy_wh[first : after + 1, 3].sum(), abs=100.0)


@pytest.mark.parametrize("kind", ["sentinel", "spike_65535", "counter_spike", "garbage"])
def test_comms_glitch(fleet: Fleet, kind: str) -> None:
    f = _fault(fleet, 4, "comms_glitch", _at(10), _at(10) + timedelta(minutes=5), kind=kind)
    chunk, _ = _run(fleet, [f])
    i = int(np.flatnonzero(chunk.epoch_s == _at(10).timestamp())[0])
    if kind == "sentinel":
        assert np.isnan(chunk.ac_power_w[i, 4])
        assert chunk.flags[i, 4] & FLAG_SENTINEL
    elif kind == "spike_65535":
        assert chunk.ac_power_w[i, 4] == 65535.0
    elif kind == "garbage":
        assert chunk.ac_voltage_v[i, 4] == 6553.5
        assert chunk.grid_frequency_hz[i, 4] == 655.35
        assert chunk.cabinet_temp_c[i, 4] == -3276.8
        assert chunk.ac_voltage_v[i - 1, 4] < 260.0
    else:
        assert chunk.ac_energy_wh[i, 4] == pytest.approx(
            100 * chunk.ac_energy_wh[i - 1, 4], rel=0.01
        )
        assert chunk.flags[i, 4] & FLAG_COUNTER_JUMP
        assert chunk.flags[i + 1, 4] & FLAG_COUNTER_BACKWARDS
    # Only that one reading is odd.
    others = np.ones(len(chunk.epoch_s), dtype=bool)
    others[i : i + 2] = False
    assert not chunk.flags[others, 4].any()


def test_counter_reset_is_recorded(fleet: Fleet) -> None:
    f = _fault(fleet, 5, "counter_reset", _at(10), _at(10), new_counter_wh=12)
    chunk, sim = _run(fleet, [f])
    i = int(np.flatnonzero(chunk.epoch_s == _at(10).timestamp())[0])
    assert chunk.ac_energy_wh[i - 1, 5] > 100_000
    assert chunk.ac_energy_wh[i, 5] < 100
    (record,) = sim.reset_log
    assert record.site_index == 5 and record.epoch_s == int(_at(10).timestamp())
    # The old inverter's final counter: its last reading plus what it produced until the swap.
    resolution = COUNTER_RESOLUTION_WH[fleet.sites[5].family]
    since_last = record.last_energy_wh - chunk.ac_energy_wh[i - 1, 5]
    assert since_last == pytest.approx(chunk.energy_wh[i, 5], abs=resolution)
    assert record.first_energy_wh == chunk.ac_energy_wh[i, 5]
    # After the reset the new counter is again consistent with the energy.
    after = chunk.ac_energy_wh[-1, 5] - chunk.ac_energy_wh[i, 5]
    assert after == pytest.approx(chunk.energy_wh[i + 1 :, 5].sum(), abs=100.0)


def test_gateway_outage_sends_late_and_flags_replayed(fleet: Fleet) -> None:
    f = _fault(fleet, 6, "gateway_outage", _at(6), _at(20))
    chunk, _ = _run(fleet, [f])
    late = (chunk.flags[:, 6] & FLAG_REPLAYED) > 0
    assert late.sum() >= 12 * 13
    assert np.all(chunk.sent_at_s[late, 6] >= f.end.timestamp())
    assert np.all(chunk.epoch_s[late] < f.end.timestamp())
    assert np.all(chunk.sent_at_s[~late, 6] - chunk.epoch_s[~late] <= 3600 + 60)


def test_generated_schedule_has_every_type_and_round_trips(fleet: Fleet, tmp_path: Path) -> None:
    schedule = generate_faults(
        fleet, START, START + timedelta(days=60), {t: 20.0 for t in FAULT_TYPES}, interval_s=300
    )
    assert {f.type for f in schedule.faults} == set(FAULT_TYPES)
    for f in schedule.faults:
        assert f.start >= START
        assert (f.start - START).total_seconds() % 300 == 0
    path = tmp_path / "ground_truth.csv"
    write_ground_truth(schedule.faults, path)
    again = read_ground_truth(path)
    assert sorted(again.faults, key=lambda f: (f.start, f.site_id, f.type)) == sorted(
        schedule.faults, key=lambda f: (f.start, f.site_id, f.type)
    )
    assert generate_faults(fleet, START, START + timedelta(days=60), interval_s=300) == (
        generate_faults(fleet, START, START + timedelta(days=60), interval_s=300)
    )


def test_ground_truth_rejects_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text(
        "site_id,device_id,gateway_id,type,start,end,detail\n"
        "zw001,zw001-inv1,gw-zw001,meteor,2026-01-01T00:00:00Z,2026-01-02T00:00:00Z,{}\n"
    )
    with pytest.raises(ValueError, match=r"gt.csv:2: .*unknown fault type 'meteor'"):
        read_ground_truth(path)


def test_counters_consistent_with_random_faults_except_resets(fleet: Fleet) -> None:
    end = START + timedelta(days=20)
    schedule = generate_faults(fleet, START, end, {t: 15.0 for t in FAULT_TYPES}, interval_s=600)
    sim = Simulation(fleet, START, end, 600, schedule)
    chunks = list(sim.chunks())
    true = np.concatenate([c.counter_true_wh for c in chunks])
    energy = np.concatenate([c.energy_wh for c in chunks])
    reset_sites = {r.site_index for r in sim.reset_log}
    for s in range(len(fleet)):
        if s in reset_sites:
            continue
        assert true[-1, s] - true[0, s] == pytest.approx(energy[1:, s].sum(), abs=1e-6)
