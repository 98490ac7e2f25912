"""The bench's scoring: the simulator seen in real time, injected losses, matching rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from collector.faults.daily_energy import counter_resolution_wh
from collector.faults.evaluation import (
    InjectedFault,
    daily_from_series,
    inject_step_losses,
    score,
    series_from_chunks,
)
from collector.faults.model import FaultKind, Finding, Severity
from collector.simulator.engine import Simulation, window
from collector.simulator.faults import Fault, FaultSchedule
from collector.simulator.fleet import generate_fleet


@pytest.fixture(scope="module")
def run() -> tuple[Any, Any, list[Fault]]:
    fleet = generate_fleet(12, seed=4)
    start, end = window(date(2026, 6, 1), 4)
    site = fleet.sites[3]
    outage = Fault(
        site.site_id,
        site.device_id,
        site.gateway_id,
        "gateway_outage",
        datetime(2026, 6, 2, 9, 0, tzinfo=UTC),
        datetime(2026, 6, 2, 13, 0, tzinfo=UTC),
    )
    sim = Simulation(fleet, start, end, 300, FaultSchedule((outage,)), batch_s=300)
    series = series_from_chunks(fleet, list(sim.chunks()), 300)
    return fleet, series, [outage]


def test_gateway_outage_is_silence_in_real_time(run: tuple[Any, Any, list[Fault]]) -> None:
    _, series, _ = run
    t9 = int((np.datetime64("2026-06-02T09:00") - series.times[0]) / np.timedelta64(300, "s"))
    t13 = t9 + 48
    assert not series.gateway_seen[3, t9 + 1 : t13 - 1].any()
    assert not series.present[3, t9 + 1 : t13 - 1].any()
    assert series.present[3, t13 + 2] and series.gateway_seen[2, t9:t13].all()


def test_step_loss_keeps_counters_consistent(run: tuple[Any, Any, list[Fault]]) -> None:
    fleet, series, _ = run
    cut, injected = inject_step_losses(
        series, fleet, np.random.default_rng(1), count=2, days_range=(1.0, 1.5)
    )
    (a, b) = injected
    for f in injected:
        d = series.device_ids.index(f.device_id)
        keep = 1 - f.detail["loss"]
        before = np.diff(series.ac_energy_wh[d])
        after = np.diff(cut.ac_energy_wh[d])
        i0 = int(
            (np.datetime64(f.start.replace(tzinfo=None)) - series.times[0])
            / np.timedelta64(300, "s")
        )
        resolution = float(counter_resolution_wh(series.ac_energy_wh[d : d + 1])[0])
        if resolution <= 10.0:  # each step scaled, to the counter's own resolution
            np.testing.assert_allclose(
                after[i0 : i0 + 100], before[i0 : i0 + 100] * keep, rtol=2e-3, atol=resolution
            )
        else:  # a whole-kWh or 0.1 kWh counter keeps counting in its own steps
            made = np.nansum(before[i0 : i0 + 100]) * keep
            assert abs(np.nansum(after[i0 : i0 + 100]) - made) <= resolution
            values = cut.ac_energy_wh[d][np.isfinite(cut.ac_energy_wh[d])]
            np.testing.assert_allclose(values % resolution, 0.0, atol=1e-6)
        assert np.nanmax(cut.ac_power_w[d, i0 : i0 + 100]) < np.nanmax(series.ac_power_w[d])
    assert a.type == b.type == "underperformance"
    daily, run_at = daily_from_series(cut, fleet)
    assert daily.energy_wh.shape == (12, 4) and len(run_at) == 4
    assert daily.clear_sky_kwh_per_kwp is not None


def _finding(kind: FaultKind, device: str, start: datetime, hours: float) -> Finding:
    return Finding(
        kind=kind,
        device_id=device,
        gateway_id="gw",
        start=start,
        last=start + timedelta(hours=hours),
        ongoing=False,
        severity=Severity.CRITICAL,
        evidence={},
        message="",
    )


def test_score_matches_kinds_devices_and_times() -> None:
    t0 = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
    faults = [
        InjectedFault("s1", "d1", "g1", "offline", t0, t0 + timedelta(hours=3)),
        InjectedFault("s2", "d2", "g2", "fault_state", t0, t0 + timedelta(hours=3)),
    ]
    found = [
        (
            _finding(FaultKind.DEVICE_OFFLINE, "d1", t0 + timedelta(minutes=15), 2),
            t0 + timedelta(minutes=20),
        ),
        # right device, wrong kind: a true alert (it overlaps a fault), but not a detection
        (
            _finding(FaultKind.NO_PRODUCTION, "d2", t0 + timedelta(minutes=15), 2),
            t0 + timedelta(minutes=20),
        ),
        # a device without any fault: false
        (_finding(FaultKind.FROZEN_VALUE, "d3", t0, 1), t0 + timedelta(minutes=30)),
    ]
    epoch = np.arange(int(t0.timestamp()) - 3600, int(t0.timestamp()) + 86400, 300)
    s = score(found, faults, sites=10, days=1, daylight=(epoch, np.full(len(epoch), 30.0)))
    assert (s.alerts, s.true_alerts, s.false_alerts) == (3, 2, 1)
    assert s.by_type["offline"].detected == 1 and s.by_type["fault_state"].detected == 0
    assert s.by_type["offline"].delays_min == [20.0]
    assert s.by_type["offline"].within_goal == 1.0
    assert s.false_per_1000_inverter_days == pytest.approx(100.0)
    assert s.recall == 0.5 and s.precision == pytest.approx(2 / 3)
