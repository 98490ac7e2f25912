"""Specific yield of a simulated fleet, counted the way yield statistics count it.

A roof commissioned halfway through the window did not have the chance to produce all of it;
dividing the fleet's energy by every roof's kWp would count its missing months as poor
performance (CBS names this effect when it explains production per kWp at the end of a year
of fast growth). So the fleet's figure is the energy of the roofs in service for the whole
window divided by their kWp; the all-roof figure is kept beside it for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from collector.simulator.fleet import Fleet
from collector.simulator.solar import FloatArray

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class FleetYield:
    """Specific yields of one simulated window."""

    #: Energy / kWp of the roofs in service for the whole window (NaN if none) [kWh/kWp].
    in_service_kwh_per_kwp: float
    #: Energy / kWp of every roof, including those commissioned during the window [kWh/kWp].
    all_sites_kwh_per_kwp: float
    #: Roofs in service for the whole window [-].
    sites_in_service: int
    #: Each roof's own energy / kWp, (n_sites,) [kWh/kWp].
    per_site_kwh_per_kwp: FloatArray
    #: Whether each roof was in service for the whole window, (n_sites,) [-].
    in_service: BoolArray


def in_service_from(fleet: Fleet, start: datetime) -> BoolArray:
    """Which roofs were commissioned on or before the day ``start`` falls on (UTC)."""
    day = start.date()
    return np.array([site.commissioned <= day for site in fleet.sites], dtype=bool)


def fleet_yield(fleet: Fleet, start: datetime, energy_wh: FloatArray) -> FleetYield:
    """Specific yields of a window that starts at ``start`` from each roof's energy.

    Parameters
    ----------
    fleet : Fleet
        The simulated sites [-]
    start : datetime
        Start of the window, UTC [-]
    energy_wh : array
        AC energy each roof produced in the window, (n_sites,) [Wh]
    """
    kwp = fleet.column("kwp")
    served = in_service_from(fleet, start)
    kwh = np.asarray(energy_wh, dtype=np.float64) / 1000.0
    in_service = float(kwh[served].sum() / kwp[served].sum()) if served.any() else float("nan")
    return FleetYield(
        in_service_kwh_per_kwp=in_service,
        all_sites_kwh_per_kwp=float(kwh.sum() / kwp.sum()),
        sites_in_service=int(served.sum()),
        per_site_kwh_per_kwp=kwh / kwp,
        in_service=served,
    )
