"""Counter checks that keep billing honest: flag, never fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway_firmware.modbus.plausibility import (
    JUMP_MARGIN,
    JUMP_TOLERANCE_WH,
    CounterCheck,
    counter_flags,
    max_energy_step_wh,
    power_is_plausible,
)
from zonnewijk_wire import ReadingFlag

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


def test_max_energy_step() -> None:
    # 5 kW for one hour, with margin and tolerance
    assert max_energy_step_wh(5000.0, 3600.0) == pytest.approx(
        5000.0 * JUMP_MARGIN + JUMP_TOLERANCE_WH
    )
    assert max_energy_step_wh(5000.0, -10.0) == JUMP_TOLERANCE_WH


def test_counter_flags() -> None:
    assert counter_flags(1000.0, 1000.0, 10.0, 5000.0) == set()
    assert counter_flags(1000.0, 999.0, 10.0, 5000.0) == {ReadingFlag.COUNTER_BACKWARDS}
    # 10 s at 5 kW is ~14 Wh; 100x spike of a 1 MWh counter is a jump
    assert counter_flags(1_000_000.0, 100_000_000.0, 10.0, 5000.0) == {ReadingFlag.COUNTER_JUMP}
    # a day offline then a day's production is plausible
    assert counter_flags(1_000_000.0, 1_030_000.0, 86_400.0, 5000.0) == set()


def test_spike_then_normal_reading_is_not_flagged_backwards() -> None:
    check = CounterCheck(rated_ac_power_w=5000.0)
    assert check.check(1_000_000.0, T0) == set()
    assert check.check(100_000_000.0, T0 + timedelta(seconds=10)) == {ReadingFlag.COUNTER_JUMP}
    assert check.check(1_000_010.0, T0 + timedelta(seconds=20)) == set()
    assert check.baseline_wh == 1_000_010.0


def test_reset_is_flagged_once() -> None:
    check = CounterCheck(rated_ac_power_w=5000.0)
    check.check(9_000_000.0, T0)
    assert check.check(120.0, T0 + timedelta(seconds=10)) == {ReadingFlag.COUNTER_BACKWARDS}
    assert check.check(125.0, T0 + timedelta(seconds=20)) == set()


def test_missing_counter_is_ignored() -> None:
    check = CounterCheck()
    assert check.check(None, T0) == set()
    assert check.baseline_wh is None


def test_power_plausibility() -> None:
    assert power_is_plausible(5000.0, 5000.0)
    assert power_is_plausible(-20.0, 5000.0)  # night consumption
    assert not power_is_plausible(65535.0, 5000.0)
