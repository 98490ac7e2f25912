"""Property tests: splitting never makes or loses energy; settling is deterministic."""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from settle_cases import fleet, readings

from collector.settlement.counter_segments import CounterReadings, Installation, prepare_site
from collector.settlement.engine import settle
from collector.settlement.fleet_profile import build_fleet_profile
from collector.settlement.inputs import SettlementInputs
from collector.settlement.periods import month_period, parse_month
from collector.settlement.readings_file import read_dataset, write_dataset
from collector.settlement.yields import site_yield

YEAR_START = month_period(2026, 1).start_utc
YEAR_END = month_period(2026, 12).end_utc


@st.composite
def year_of_readings(draw: st.DrawFn) -> list[tuple[datetime, float]]:
    """Readings from before 2026 to after it: irregular intervals, gaps of up to 3 days."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    intervals_h = draw(
        st.lists(st.sampled_from([0.25, 1.0, 3.0, 7.5, 24.0, 72.0]), min_size=1, max_size=6)
    )
    t = YEAR_START - timedelta(hours=rng.uniform(1, 80))
    value = rng.uniform(0, 5e7)
    out = []
    while t < YEAR_END + timedelta(hours=80):
        out.append((t, value))
        step_h = rng.choice(intervals_h)
        t += timedelta(hours=step_h)
        value += rng.uniform(0, 1500.0) * step_h
    return out


@settings(max_examples=30, deadline=None)
@given(year_of_readings(), st.booleans())
def test_monthly_yields_add_up_to_the_years_counter_difference(
    pairs: list[tuple[datetime, float]], with_profile: bool
) -> None:
    r = CounterReadings.from_pairs("inv", pairs)
    site = prepare_site("s", 4.0, [Installation("inv", pairs[0][0])], {"inv": r})
    profile = (
        build_fleet_profile([site], YEAR_START - timedelta(days=5), YEAR_END + timedelta(days=5))
        if with_profile
        else None
    )
    months = [site_yield(site, m.start_utc, m.end_utc, profile) for m in
              (month_period(2026, n) for n in range(1, 13))]  # fmt: skip
    year = site_yield(site, YEAR_START, YEAR_END, profile)
    total = sum(m.total_wh for m in months)
    assert year.missing_s == 0.0  # readings on both sides of every boundary: nothing missing
    assert total == pytest.approx(year.total_wh, rel=1e-12, abs=1e-6)
    if profile is None:  # linear interpolation: the year is the plain counter difference
        import numpy as np

        t = r.ts_s
        expected = np.interp(YEAR_END.timestamp(), t, r.wh) - np.interp(
            YEAR_START.timestamp(), t, r.wh
        )
        assert total == pytest.approx(expected, rel=1e-12, abs=1e-6)
    assert all(m.total_wh >= 0 for m in months)


@st.composite
def fleet_readings(draw: st.DrawFn) -> dict[str, CounterReadings]:
    """The test fleet's readings with random rates and random holes."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    out = {}
    for device, base in readings().items():
        keep = [
            (t, v) for t, v in base.pairs()
            if not (rng.random() < 0.02 or (datetime(2026, 3, 20, tzinfo=UTC) < t
                    < datetime(2026, 3, 20, tzinfo=UTC) + timedelta(hours=rng.uniform(0, 90))))
        ]  # fmt: skip
        scale = rng.uniform(0.5, 1.5)
        first = keep[0][1]
        out[device] = CounterReadings.from_pairs(
            device, [(t, first + (v - first) * scale) for t, v in keep]
        )
    return out


@settings(max_examples=10, deadline=None)
@given(fleet_readings())
def test_settling_the_same_inputs_twice_gives_identical_output(
    data: dict[str, CounterReadings],
) -> None:
    march = parse_month("2026-03")
    f = fleet()
    first = settle(SettlementInputs(march, f, data))
    second = settle(SettlementInputs(march, f, dict(reversed(list(data.items())))))
    shuffled = f.model_copy(
        update={"contracts": tuple(reversed(f.contracts)), "sites": tuple(reversed(f.sites))}
    )
    third = settle(SettlementInputs(march, shuffled, data))
    assert first.dumps() == second.dumps() == third.dumps()


@settings(max_examples=10, deadline=None)
@given(fleet_readings())
def test_a_data_set_file_settles_to_the_same_output(data: dict[str, CounterReadings]) -> None:
    march = parse_month("2026-03")
    f = fleet()
    inputs = SettlementInputs(march, f, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "set.jsonl"
        write_dataset(path, inputs, source="property test")
        again = read_dataset(path, f)
    assert again.digest() == inputs.digest()
    assert settle(again).dumps() == settle(inputs).dumps()


@settings(max_examples=25, deadline=None)
@given(year_of_readings(), st.floats(0.05, 0.95), st.floats(0.0, 72.0))
def test_an_unknown_reset_makes_and_loses_no_energy_between_months(
    pairs: list[tuple[datetime, float]], where: float, silent_h: float
) -> None:
    """A counter restart mid-year (with a silent stretch): months still add up to the year."""
    cut = int(len(pairs) * where)
    restart = pairs[cut][0] + timedelta(hours=silent_h)
    before = pairs[:cut]
    offset = pairs[cut][1] - 5.0
    after = [(t, v - offset) for t, v in pairs[cut:] if t >= restart]
    r = CounterReadings.from_pairs("inv", before + after)
    site = prepare_site("s", 4.0, [Installation("inv", pairs[0][0])], {"inv": r})
    profile = build_fleet_profile(
        [site], YEAR_START - timedelta(days=5), YEAR_END + timedelta(days=5)
    )
    months = [site_yield(site, m.start_utc, m.end_utc, profile, site_ratio=0.9)
              for m in (month_period(2026, n) for n in range(1, 13))]  # fmt: skip
    year = site_yield(site, YEAR_START, YEAR_END, profile, site_ratio=0.9)
    assert sum(m.total_wh for m in months) == pytest.approx(year.total_wh, rel=1e-9, abs=1e-6)
    if after and before[-1][1] > after[0][1] + 1000.0:
        assert [a.kind for a in site.anomalies] == ["unknown_reset"]
