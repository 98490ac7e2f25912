"""A household's electricity use for the simulated smart meters (demo, tests).

A deterministic load per home [W] as a function of time: a base load, a morning and an
evening peak in Europe/Amsterdam local time, more in winter, and appliance events (kettle,
washing machine, oven) drawn per home and quarter hour from its seed; some homes have a heat
pump (winter, more at night and in the morning) or an electric car (charging 3.7 kW in the
evening). The daily shape follows the usual Dutch household profile (low at night, a morning
rise, the largest peak from 17 to 21 h); it is **not** calibrated against NEDU's published
profile E1A (that table is not shipped here), only scaled so an average home uses about
2,700 kWh a year (CBS: 2,480-2,810 kWh for Dutch households 2019-2023), which
``tests/collector/simulator/test_household.py`` checks.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["Household", "household_for"]

_AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Household:
    """One home's load model."""

    seed: int
    base_w: float
    scale: float
    heat_pump: bool
    electric_car: bool

    def load_w(self, ts: datetime) -> float:
        """The home's electricity use at ``ts`` [W] (aware datetime)."""
        local = ts.astimezone(_AMSTERDAM)
        hour = local.hour + local.minute / 60
        day_of_year = local.timetuple().tm_yday
        winter = 0.5 + 0.5 * math.cos(2 * math.pi * (day_of_year - 15) / 365)  # 1 in January
        morning = math.exp(-(((hour - 7.5) / 1.2) ** 2))
        evening = math.exp(-(((hour - 19.0) / 2.0) ** 2))
        daytime = 1.0 if 9 <= hour < 17 else 0.0
        shape = 0.35 * morning + 1.0 * evening + 0.25 * daytime
        load = self.base_w + self.scale * (1 + 0.35 * winter) * 400.0 * shape
        quarter = int(ts.timestamp() // 900)
        event = _unit(self.seed, "event", quarter)
        awake = 7 <= hour < 23
        if awake and event < 0.03:
            load += 2000.0  # kettle, oven
        elif awake and event < 0.05:
            load += 900.0  # washing machine, dishwasher
        if self.heat_pump:
            load += winter * (900.0 if hour < 9 or hour >= 22 else 500.0)
        if self.electric_car and 18 <= hour < 21 and _unit(self.seed, "ev", local.date()) < 0.5:
            load += 3700.0
        return load


def household_for(seed: int) -> Household:
    """The household of one simulated home (a fifth with a heat pump, a tenth with a car)."""
    return Household(
        seed=seed,
        base_w=80.0 + 120.0 * _unit(seed, "base"),
        scale=0.7 + 0.6 * _unit(seed, "scale"),
        heat_pump=_unit(seed, "heat pump") < 0.2,
        electric_car=_unit(seed, "car") < 0.1,
    )
