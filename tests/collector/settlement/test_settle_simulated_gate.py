"""Gate: a settled simulated month equals the simulator's true energy (issue 15, item 2).

The simulator knows the energy each inverter produced; the settlement only sees lifetime
counters in InfluxDB, at each family's register resolution (1 Wh SunSpec, 10 Wh Huawei,
100 Wh Growatt and Sungrow: ``collector.simulator.fleet.COUNTER_RESOLUTION_WH``). A month's
yield is the difference of two floored counter readings, so the stated tolerance
(docs/settlement.md) is: every contract's settled energy within one resolution step of the true
energy, nothing estimated; a counter reset in the month adds a segment and so one more step
(the registry records the old counter's final value and the new one's first, both floored). The month is March 2026 in Europe/Amsterdam (23:00 UTC to 22:00 UTC,
with the change to summer time on the 29th), 20 sites of seed 3 read every 5 minutes.

The faulted month adds the simulator's fault schedule at five times the default rates (and
enough inverter replacements to have some): offline
inverters, frozen registers, counter spikes, gateway outages replayed late and replaced
inverters (recorded in the fleet file) must not move a month's yield either, except where a
fault straddles a month boundary, which shifts energy to the neighbouring month (such sites
are left out of the comparison and counted).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from collector.devtools.services import Influxd
from collector.registry.fleet_file import Fleet as RegistryFleet
from collector.settlement.engine import settle
from collector.settlement.influx_source import load_readings
from collector.settlement.inputs import SettlementInputs
from collector.settlement.periods import Period, parse_month
from collector.simulator.engine import Simulation
from collector.simulator.faults import DEFAULT_RATES_PER_SITE_YEAR, FaultSchedule, generate_faults
from collector.simulator.fleet import COUNTER_RESOLUTION_WH, Fleet, generate_fleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.timeseries.influx import InfluxClient

START = datetime(2026, 2, 27, tzinfo=UTC)
END = datetime(2026, 4, 4, tzinfo=UTC)
MONTH = "2026-03"
SITES = 20
SEED = 3
INTERVAL_S = 300


@dataclass
class SettledMonth:
    fleet: Fleet
    faults: FaultSchedule
    period: Period
    true_wh: np.ndarray
    settled_wh: np.ndarray
    estimated_wh: np.ndarray
    #: Counter resets inside the month per site: each adds a counter segment [-].
    resets: np.ndarray


def _settle_simulated(influxd: Influxd, faults: FaultSchedule) -> Iterator[SettledMonth]:
    fleet = generate_fleet(SITES, SEED)
    sim = Simulation(fleet, START, END, INTERVAL_S, faults)
    period = parse_month(MONTH)
    p0, p1 = period.start_utc.timestamp(), period.end_utc.timestamp()
    client = InfluxClient(influxd.url, f"gate_{uuid.uuid4().hex[:12]}")
    client.create_database()
    try:
        true_wh = np.zeros(SITES)
        for chunk in sim.chunks():
            # energy_wh is the energy of the interval that ends at each reading time
            inside = (chunk.epoch_s > p0) & (chunk.epoch_s <= p1)
            true_wh += chunk.energy_wh[inside].sum(axis=0)
            t_idx, s_idx = np.nonzero(chunk.present & np.isfinite(chunk.ac_energy_wh))
            values = chunk.ac_energy_wh[t_idx, s_idx].tolist()
            stamps = chunk.epoch_s[t_idx].tolist()
            lines = [
                f"inverter,device={fleet.sites[s].device_id},gateway={fleet.sites[s].gateway_id} "
                f"ac_energy_wh={v!r} {t}"
                for s, v, t in zip(s_idx.tolist(), values, stamps, strict=True)
            ]
            for i in range(0, len(lines), 20_000):
                client.write_lines(lines[i : i + 20_000], precision="s")
        registry: RegistryFleet = to_registry_fleet(fleet, sim.reset_log)
        result = settle(SettlementInputs(period, registry, load_readings(client, registry, period)))
        by_site = {c.site_id: c for c in result.contracts}
        resets = np.zeros(SITES, dtype=int)
        for record in sim.reset_log:
            resets[record.site_index] += int(p0 < record.epoch_s <= p1)
        yield SettledMonth(
            fleet=fleet,
            faults=faults,
            period=period,
            true_wh=true_wh,
            settled_wh=np.array(
                [
                    by_site[s.site_id].measured_wh + by_site[s.site_id].estimated_wh
                    for s in fleet.sites
                ]
            ),
            estimated_wh=np.array([by_site[s.site_id].estimated_wh for s in fleet.sites]),
            resets=resets,
        )
    finally:
        client.query(f'DROP DATABASE "{client.database}"', database="", epoch=None)


@pytest.fixture(scope="module")
def faultless(influxd: Influxd) -> Iterator[SettledMonth]:
    yield from _settle_simulated(influxd, FaultSchedule())


@pytest.fixture(scope="module")
def faulted(influxd: Influxd) -> Iterator[SettledMonth]:
    fleet = generate_fleet(SITES, SEED)
    rates = {k: 5.0 * v for k, v in DEFAULT_RATES_PER_SITE_YEAR.items()}
    rates["counter_reset"] = 10.0  # a few inverter replacements in 36 days of 20 sites
    yield from _settle_simulated(
        influxd, generate_faults(fleet, START, END, rates, interval_s=INTERVAL_S)
    )


def _resolution_wh(fleet: Fleet) -> np.ndarray:
    return np.array([COUNTER_RESOLUTION_WH[s.family] for s in fleet.sites])


def test_faultless_month_settles_to_the_true_energy(faultless: SettledMonth) -> None:
    error = np.abs(faultless.settled_wh - faultless.true_wh)
    resolution = _resolution_wh(faultless.fleet)
    assert faultless.true_wh.min() > 100_000.0  # every roof produced a real March
    assert np.all(faultless.estimated_wh == 0.0)
    worst = int(np.argmax(error / resolution))
    assert np.all(error < resolution), (
        f"{faultless.fleet.sites[worst].site_id}: settled {faultless.settled_wh[worst]:.0f} Wh, "
        f"true {faultless.true_wh[worst]:.0f} Wh, resolution {resolution[worst]:.0f} Wh"
    )
    # The fleet's total: the floors of 2 x 20 counters, at most the sum of the steps.
    assert abs(faultless.settled_wh.sum() - faultless.true_wh.sum()) < resolution.sum()


def _straddles_boundary(month: SettledMonth) -> np.ndarray:
    edges = (month.period.start_utc, month.period.end_utc)
    index = {s.site_id: s.index for s in month.fleet.sites}
    hit = np.zeros(len(month.fleet), dtype=bool)
    for fault in month.faults.faults:
        if fault.type in ("frozen", "gateway_outage", "offline") and any(
            fault.start <= edge <= fault.end for edge in edges
        ):
            hit[index[fault.site_id]] = True
    return hit


def test_faulted_month_settles_to_the_true_energy(faulted: SettledMonth) -> None:
    types = {f.type for f in faulted.faults.faults}
    # The schedule really exercises the settlement's defences.
    assert {"frozen", "comms_glitch", "gateway_outage", "offline", "counter_reset"} <= types, types
    straddling = _straddles_boundary(faulted)
    assert straddling.sum() <= SITES // 4, "too few sites left to compare"
    assert faulted.resets.sum() >= 3, "the month has too few inverter replacements"
    error = np.abs(faulted.settled_wh - faulted.true_wh)
    resolution = _resolution_wh(faulted.fleet) * (1 + faulted.resets)
    compared = ~straddling
    bad = np.flatnonzero(compared & (error >= resolution))
    assert not len(bad), [
        (faulted.fleet.sites[i].site_id, round(faulted.settled_wh[i]), round(faulted.true_wh[i]))
        for i in bad
    ]
