"""Grouping reads into few requests, splitting when a device refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from collector.simulator.modbus_device import SimulatedInverters, layout_for
from gateway_firmware.modbus.errors import IllegalAddress
from gateway_firmware.modbus.planner import Group, ReadPlan, merge_groups
from gateway_firmware.modbus.transport import ModbusBus, RegisterKind


def test_merge_adjacent_and_within_gap() -> None:
    groups = [Group(10, 2), Group(12, 1), Group(20, 2), Group(200, 1)]
    assert [(r.start, r.count) for r in merge_groups(groups)] == [(10, 3), (20, 2), (200, 1)]
    assert [(r.start, r.count) for r in merge_groups(groups, max_gap=8)] == [(10, 12), (200, 1)]


def test_merge_respects_max_count_and_keeps_groups_whole() -> None:
    groups = [Group(0, 2), Group(2, 2), Group(4, 2), Group(6, 2)]
    requests = merge_groups(groups, max_count=5)
    assert [(r.start, r.count) for r in requests] == [(0, 4), (4, 4)]


def test_group_validation() -> None:
    with pytest.raises(ValueError, match="count 126"):
        Group(0, 126)
    with pytest.raises(ValueError, match="outside"):
        Group(65535, 2)


def test_plan_splits_refused_requests_and_remembers(
    serve: Callable[..., SimulatedInverters], tcp_bus: Callable[..., ModbusBus]
) -> None:
    layout = layout_for("growatt", max_read_registers=20)
    sim = serve({1: layout})
    sim.set_values(ac_power_w=1500.0)
    bus = tcp_bus(sim)
    groups = [Group(0, 1), Group(3, 2), Group(5, 2), Group(35, 2), Group(37, 2), Group(55, 2)]
    plan = ReadPlan(RegisterKind.INPUT, groups, max_count=100, max_gap=40)
    assert len(plan.requests) == 1
    values = plan.read(bus, 1)
    assert set(values) >= {0, 3, 4, 5, 6, 35, 36, 37, 38, 55, 56}
    assert plan.splits >= 1
    refused = bus.stats["exception_2"]
    assert all(r.count <= 20 for r in plan.requests)
    # the learned plan does not repeat refused requests
    plan.read(bus, 1)
    assert bus.stats["exception_2"] == refused


def test_plan_raises_when_a_single_group_is_refused(
    serve: Callable[..., SimulatedInverters], tcp_bus: Callable[..., ModbusBus]
) -> None:
    sim = serve({1: layout_for("growatt")})
    plan = ReadPlan(RegisterKind.INPUT, [Group(0, 2), Group(5000, 2)])
    with pytest.raises(IllegalAddress, match="at 5000"):
        plan.read(tcp_bus(sim), 1)
