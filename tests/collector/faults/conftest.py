"""Crafted fleets for the detector tests: a small district under pvlib's clear sky.

Each site's AC power is its plane-of-array irradiance (pvlib transposition of a simplified
Solis clear sky, scaled per day by a cloud factor) × kWp × a performance ratio, clipped at the
AC rating. East/west roofs put one half on each MPPT; a shaded roof loses its direct beam
when the sun is low or in the west. Tests copy the arrays and break what they test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pvlib
import pytest

from collector.faults.model import STATE_CODE, FleetDaily, FleetSeries
from collector.faults.solar import ZWOLLE_LAT_DEG, ZWOLLE_LON_DEG
from zonnewijk_wire import InverterState

STEP_S = 300


@dataclass(frozen=True)
class CraftedSite:
    kwp: float
    tilt_deg: float = 35.0
    azimuth_deg: float = 180.0
    #: second MPPT's azimuth (east/west roofs); None: both inputs face azimuth_deg
    azimuth2_deg: float | None = None
    shaded: bool = False


def default_sites() -> list[CraftedSite]:
    rng = np.random.default_rng(7)
    sites = [
        CraftedSite(
            kwp=float(rng.uniform(2.5, 5.5)),
            tilt_deg=float(rng.uniform(25, 45)),
            azimuth_deg=float(rng.uniform(150, 210)),
        )
        for _ in range(12)
    ]
    sites.append(CraftedSite(kwp=4.0, tilt_deg=15.0, azimuth_deg=90.0, azimuth2_deg=270.0))
    sites.append(CraftedSite(kwp=3.0, tilt_deg=40.0, azimuth_deg=190.0, shaded=True))
    return sites


EAST_WEST = 12
SHADED = 13


@dataclass
class CraftedFleet:
    """Arrays of a crafted fleet; ``series()`` and ``daily()`` build the detector inputs."""

    start: date
    days: int
    sites: list[CraftedSite] = field(default_factory=default_sites)
    #: per day: 1.0 clear, towards 0 overcast
    clearness: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.sites)
        self.times = pd.date_range(
            pd.Timestamp(self.start, tz="UTC"),
            periods=self.days * 86400 // STEP_S,
            freq=f"{STEP_S}s",
        )
        if self.clearness is None:
            self.clearness = np.ones(self.days)
        mid = self.times + pd.Timedelta(seconds=STEP_S / 2)
        loc = pvlib.location.Location(ZWOLLE_LAT_DEG, ZWOLLE_LON_DEG)
        solpos = loc.get_solarposition(mid)
        sky = loc.get_clearsky(mid, model="simplified_solis", solar_position=solpos)
        day_index = np.asarray((self.times.normalize() - self.times[0].normalize()).days)
        k = np.asarray(self.clearness)[day_index]
        # overcast: the beam goes, diffuse light stays at a fraction of the clear global
        dni = sky["dni"].to_numpy() * k
        dhi = sky["dhi"].to_numpy() * k + sky["ghi"].to_numpy() * (1 - k) * 0.3
        ghi = dhi + dni * np.clip(
            np.sin(np.radians(solpos["apparent_elevation"].to_numpy())), 0, None
        )
        self.sun_elevation_deg = solpos["apparent_elevation"].to_numpy()
        t = len(self.times)
        self.dc_power_w = np.full((n, 2, t), np.nan)
        for i, site in enumerate(self.sites):
            for m, az in enumerate((site.azimuth_deg, site.azimuth2_deg or site.azimuth_deg)):
                dni_site = dni.copy()
                if site.shaded:
                    dni_site = np.where(
                        (solpos["apparent_elevation"].to_numpy() < 30)
                        | (solpos["azimuth"].to_numpy() > 220),
                        0.0,
                        dni_site,
                    )
                poa = pvlib.irradiance.get_total_irradiance(
                    site.tilt_deg,
                    az,
                    solpos["apparent_zenith"],
                    solpos["azimuth"],
                    dni_site,
                    ghi,
                    dhi,
                )["poa_global"].to_numpy()
                self.dc_power_w[i, m] = np.nan_to_num(poa) * site.kwp / 2 * 0.88
        self.kwp = np.array([s.kwp for s in self.sites])
        self.ac_rating_w = self.kwp * 1000 * 0.8
        self.ac_power_w = np.minimum(self.dc_power_w.sum(axis=1) * 0.96, self.ac_rating_w[:, None])
        self.state = np.where(
            self.ac_power_w > 0,
            STATE_CODE[InverterState.PRODUCING],
            STATE_CODE[InverterState.SLEEPING],
        ).astype(np.int64)
        self.event_bits = np.zeros((n, t), dtype=np.int64)
        self.gateway_seen = np.ones((n, t), dtype=bool)
        self.recount()

    def recount(self) -> None:
        """Lifetime counters from the (possibly edited) power: 1 MWh start + energy so far."""
        energy = np.nan_to_num(self.ac_power_w) * STEP_S / 3600.0
        self.ac_energy_wh = 1_000_000.0 + np.cumsum(energy, axis=1)
        self.ac_energy_wh = np.where(np.isnan(self.ac_power_w), np.nan, self.ac_energy_wh)

    def series(self, first: int = 0, last: int | None = None) -> FleetSeries:
        sl = slice(first, last)
        n = len(self.sites)
        return FleetSeries(
            times=self.times[sl].tz_localize(None).to_numpy().astype("datetime64[s]"),
            step_s=STEP_S,
            device_ids=tuple(f"inv{i:02d}" for i in range(n)),
            gateway_ids=tuple(f"gw{i:02d}" for i in range(n)),
            kwp=self.kwp,
            ac_rating_w=self.ac_rating_w,
            ac_power_w=self.ac_power_w[:, sl].copy(),
            ac_energy_wh=self.ac_energy_wh[:, sl].copy(),
            state=self.state[:, sl].copy(),
            event_bits=self.event_bits[:, sl].copy(),
            dc_power_w=self.dc_power_w[:, :, sl].copy(),
            gateway_seen=self.gateway_seen[:, sl].copy(),
            sun_elevation_deg=self.sun_elevation_deg[sl].copy(),
        )

    def daily(self) -> FleetDaily:
        per_day = 86400 // STEP_S
        energy = np.nan_to_num(self.ac_power_w) * STEP_S / 3600.0
        daily = energy.reshape(len(self.sites), self.days, per_day).sum(axis=2)
        missing = np.isnan(self.ac_power_w).reshape(len(self.sites), self.days, per_day).any(axis=2)
        return FleetDaily(
            days=np.array(
                [self.start + timedelta(days=d) for d in range(self.days)], dtype="datetime64[D]"
            ),
            device_ids=tuple(f"inv{i:02d}" for i in range(len(self.sites))),
            kwp=self.kwp,
            energy_wh=np.where(missing, np.nan, daily),
        )

    def index(self, day: int, hour_utc: float) -> int:
        return int(day * 86400 // STEP_S + hour_utc * 3600 // STEP_S)


@pytest.fixture(scope="session")
def summer_day() -> CraftedFleet:
    """One clear June day."""
    return CraftedFleet(start=date(2026, 6, 10), days=1)


@pytest.fixture(scope="session")
def two_months() -> CraftedFleet:
    """60 days from 1 May with a seeded mix of clear, broken and overcast days."""
    rng = np.random.default_rng(3)
    k = np.clip(rng.choice([1.0, 0.7, 0.4, 0.15], size=60, p=[0.35, 0.3, 0.2, 0.15]), 0, 1)
    return CraftedFleet(start=date(2026, 5, 1), days=60, clearness=k)


@pytest.fixture(scope="session")
def make_fleet() -> type[CraftedFleet]:
    """The crafted-fleet class, for tests that build their own (test modules cannot import
    conftest under ``--import-mode=importlib``)."""
    return CraftedFleet
