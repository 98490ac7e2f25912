"""Readings the billing can trust: glitches are flagged with their raw values, never fixed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from collector.simulator.modbus_device import SimulatedInverters, SunSpecLayout, layout_for
from gateway_firmware.devices.reader import DeviceReader
from zonnewijk_wire import ReadingFlag

Serve = Callable[..., SimulatedInverters]
ReaderFor = Callable[..., DeviceReader]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_counter_backwards_is_flagged_and_kept(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: SunSpecLayout()})
    clock = Clock()
    reader = reader_for(sim, 1, clock=clock, rated_ac_power_w=5000.0)
    sim.set_values(ac_energy_wh=2_000_000.0, dc=[(300.0, 1.0, 300.0)])
    assert reader.poll().flags == ()
    clock.advance(10)
    sim.set_values(ac_energy_wh=1_999_000.0)  # SolarEdge-like step back
    reading = reader.poll()
    assert reading.flags == (ReadingFlag.COUNTER_BACKWARDS,)
    assert reading.ac_energy_wh == 1_999_000.0  # the value as read, not "fixed"
    assert reading.raw["ac_energy_wh"] == 1_999_000.0
    assert reader.last_result == "ok (counter_backwards)"


def test_implausible_jump_is_flagged(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: SunSpecLayout()})
    clock = Clock()
    reader = reader_for(sim, 1, clock=clock, rated_ac_power_w=4000.0)
    sim.set_values(ac_energy_wh=1_000_000.0, dc=[(300.0, 1.0, 300.0)])
    reader.poll()
    clock.advance(10)
    sim.set_values(ac_energy_wh=100_000_000.0)  # 100x spike after a bad read
    spike = reader.poll()
    assert spike.flags == (ReadingFlag.COUNTER_JUMP,)
    assert spike.ac_energy_wh == 100_000_000.0
    assert spike.raw["ac_energy_wh_trusted"] == 1_000_000.0
    clock.advance(10)
    sim.set_values(ac_energy_wh=1_000_011.0)
    assert reader.poll().flags == ()
    # the same step over a long outage is plausible
    clock.advance(6 * 3600)
    sim.set_values(ac_energy_wh=1_020_000.0)
    assert reader.poll().flags == ()


def test_65535_glitch_in_a_vendor_register_is_a_sentinel(
    serve: Serve, reader_for: ReaderFor
) -> None:
    layout = layout_for("growatt")
    sim = serve({1: layout})
    sim.set_values(grid_frequency_hz=50.02, ac_voltage_v=231.0)
    reader = reader_for(sim, 1, profile="growatt")
    assert reader.poll().grid_frequency_hz == 50.02
    sim.poke(37, [0xFFFF], kind=layout.profile.register("grid_frequency_hz").kind)  # type: ignore[union-attr]
    reading = reader.poll()
    assert reading.grid_frequency_hz is None
    assert reading.ac_voltage_v == 231.0
    assert ReadingFlag.SENTINEL in reading.flags
    assert reading.raw["grid_frequency_hz"] == 0xFFFF
    sim.clear_pokes()
    assert reader.poll().grid_frequency_hz == 50.02


def test_power_beyond_the_rating_is_left_out(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: layout_for("huawei-sun2000")})
    reader = reader_for(sim, 1, profile="huawei-sun2000", rated_ac_power_w=5000.0)
    sim.set_values(ac_power_w=65535.0, ac_energy_wh=1_000_000.0, dc=[(300.0, 1.0, 300.0)] * 2)
    reading = reader.poll()
    assert reading.ac_power_w is None
    assert reading.flags == (ReadingFlag.SENTINEL,)
    assert reading.raw == {"ac_power_w": 65535.0}
    sim.set_values(ac_power_w=5400.0)  # briefly above rating is real
    assert reader.poll().ac_power_w == 5400.0
