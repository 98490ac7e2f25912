"""Shared simulations for the simulator tests, computed once per session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pytest

from collector.simulator.engine import Chunk, Simulation, window
from collector.simulator.fleet import Fleet, generate_fleet

#: All sites of every seed are commissioned before this day.
YEAR_START = date(2026, 1, 1)


@dataclass
class YearRun:
    """A faultless year at 1-hour readings, concatenated over chunks."""

    fleet: Fleet
    epoch_s: np.ndarray
    ac_power_w: np.ndarray
    ac_energy_wh: np.ndarray
    energy_wh: np.ndarray
    state: np.ndarray
    present: np.ndarray


def concat(chunks: list[Chunk]) -> dict[str, np.ndarray]:
    names = ("epoch_s", "ac_power_w", "ac_energy_wh", "energy_wh", "state", "present")
    return {n: np.concatenate([getattr(c, n) for c in chunks]) for n in names}


@pytest.fixture(scope="session")
def faultless_year() -> YearRun:
    fleet = generate_fleet(20, seed=7)
    start, end = window(YEAR_START, 365)
    sim = Simulation(fleet, start, end, 3600)
    return YearRun(fleet=fleet, **concat(list(sim.chunks())))
