"""The simulated fleet: rooftop systems of the district, generated from a seed.

Everything about a site that does not change with time lives here; the time-dependent
physics is in :mod:`collector.simulator.engine`. The same seed always gives the same fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from collector.simulator.solar import DISTRICT_LATITUDE_DEG, DISTRICT_LONGITUDE_DEG, FloatArray

#: Inverter families, in the order used for vendor codes.
FAMILIES: tuple[str, ...] = ("sunspec-int", "sunspec-float", "huawei", "sungrow", "growatt")
_FAMILY_WEIGHTS = (0.32, 0.10, 0.24, 0.12, 0.22)
_MODELS: dict[str, tuple[tuple[str, str], ...]] = {
    "sunspec-int": (("SMA", "Sunny Boy"), ("SolarEdge", "SE"), ("Fronius", "Primo")),
    "sunspec-float": (("Fronius", "Symo"), ("Kostal", "PIKO")),
    "huawei": (("Huawei", "SUN2000"),),
    "sungrow": (("Sungrow", "SG-RS"),),
    "growatt": (("Growatt", "MIN TL-X"),),
}
_AC_RATINGS_W = np.array([2000, 2500, 3000, 3600, 4000, 4600, 5000, 6000], dtype=np.float64)
#: Lifetime counter resolution each family's register offers [Wh].
COUNTER_RESOLUTION_WH: dict[str, float] = {
    "sunspec-int": 1.0,
    "sunspec-float": 1.0,
    "huawei": 10.0,
    "sungrow": 100.0,  # register 5144-5145, 0.1 kWh (config/devices/sungrow-sg.yaml)
    "growatt": 100.0,
}
#: AC power resolution each family's register offers [W].
POWER_RESOLUTION_W: dict[str, float] = {
    "sunspec-int": 1.0,
    "sunspec-float": 0.1,
    "huawei": 1.0,
    "sungrow": 1.0,
    "growatt": 0.1,
}
#: Cloud motion over the district, used to delay cloud shadows between neighbours [m/s].
CLOUD_SPEED_M_S = 9.0
#: SunSpec inverters commissioned from this day on speak the DER models 701-7xx (IEEE
#: 1547-2018 firmware) instead of 101-103; they are read with the same ``sunspec`` profile.
DER_FROM = date(2024, 1, 1)
_EARLIEST_COMMISSIONING = date(2021, 3, 1)
_LATEST_COMMISSIONING = date(2025, 9, 30)


@dataclass(frozen=True)
class Site:
    """One member's rooftop system: one gateway, one inverter."""

    index: int
    site_id: str
    gateway_id: str
    device_id: str
    latitude_deg: float
    longitude_deg: float
    modules: int
    module_wp: float
    kwp: float
    tilt_deg: float
    azimuth_deg: float
    orientation: str
    shaded: bool
    #: Obstacle blocking the beam below ``shade_elevation_deg`` between these azimuths [deg].
    shade_azimuth_from_deg: float
    shade_azimuth_to_deg: float
    shade_elevation_deg: float
    family: str
    manufacturer: str
    model: str
    serial: str
    mppt_modules: tuple[int, ...]
    ac_rating_w: float
    commissioned: date
    degradation_per_year: float
    system_loss: float
    cloud_lag_s: float
    #: The register layout its live device presents (``collector.simulator.modbus_device``
    #: ``layout_for``); empty: the family's own.
    layout: str = ""

    @property
    def device_layout(self) -> str:
        """The live device's register layout: ``sunspec-der`` for a SunSpec inverter with the
        DER models (701), else the family's."""
        return self.layout or self.family

    @property
    def mppt_count(self) -> int:
        return len(self.mppt_modules)

    @property
    def dc_ac_ratio(self) -> float:
        return self.kwp * 1000.0 / self.ac_rating_w


@dataclass(frozen=True)
class Fleet:
    """The sites of one simulation and the seed they came from."""

    seed: int
    sites: tuple[Site, ...]

    def __len__(self) -> int:
        return len(self.sites)

    def column(self, name: str) -> FloatArray:
        """One numeric attribute of every site as an array, (n_sites,)."""
        return np.array([float(getattr(s, name)) for s in self.sites], dtype=np.float64)

    @property
    def max_mppt(self) -> int:
        return max(s.mppt_count for s in self.sites)

    def site(self, site_id: str) -> Site:
        for s in self.sites:
            if s.site_id == site_id:
                return s
        raise KeyError(f"no site {site_id!r} in this fleet")


def _orientation(rng: np.random.Generator) -> tuple[str, float, float]:
    """(label, azimuth [deg], tilt [deg]) of one roof."""
    roll = rng.random()
    if roll < 0.62:
        label, azimuth = "south", rng.normal(180.0, 14.0)
    elif roll < 0.74:
        label, azimuth = "east", rng.normal(95.0, 8.0)
    elif roll < 0.86:
        label, azimuth = "west", rng.normal(265.0, 8.0)
    elif roll < 0.93:
        label, azimuth = "south-east", rng.normal(135.0, 8.0)
    else:
        label, azimuth = "south-west", rng.normal(225.0, 8.0)
    tilt = rng.uniform(10.0, 15.0) if rng.random() < 0.12 else rng.normal(38.0, 6.0)
    return label, float(azimuth), float(np.clip(tilt, 5.0, 55.0))


def generate_fleet(n_sites: int = 122, seed: int = 1) -> Fleet:
    """A district of ``n_sites`` rooftop systems around Zwolle Dieze-Oost.

    Parameters
    ----------
    n_sites : int
        Number of sites, 1-9999 [-]
    seed : int
        Random seed; the same seed gives the same fleet [-]
    """
    if not 1 <= n_sites <= 9999:
        raise ValueError(f"n_sites must be between 1 and 9999, got {n_sites}")
    rng = np.random.default_rng([seed, 0x5171])
    span_days = (_LATEST_COMMISSIONING - _EARLIEST_COMMISSIONING).days
    sites = []
    for i in range(n_sites):
        number = i + 1
        # Dieze-Oost is about 1.5 km across.
        north_m, east_m = rng.uniform(-700.0, 700.0, size=2)
        latitude = DISTRICT_LATITUDE_DEG + north_m / 111_320.0
        longitude = DISTRICT_LONGITUDE_DEG + east_m / (111_320.0 * np.cos(np.radians(latitude)))
        module_wp = float(rng.choice([330.0, 370.0, 400.0, 430.0]))
        modules = int(rng.integers(6, 15))
        orientation, azimuth, tilt = _orientation(rng)
        shaded = bool(rng.random() < 0.06)
        shade_centre = float(rng.uniform(120.0, 260.0))
        family = str(rng.choice(FAMILIES, p=_FAMILY_WEIGHTS))
        manufacturer, model_name = _MODELS[family][int(rng.integers(len(_MODELS[family])))]
        two_strings = modules >= 10 and (family in ("huawei", "sungrow") or rng.random() < 0.5)
        mppt_modules = (modules - modules // 2, modules // 2) if two_strings else (modules,)
        kwp = modules * module_wp / 1000.0
        ratio = rng.uniform(0.95, 1.45)
        candidates = _AC_RATINGS_W[kwp * 1000.0 / ratio <= _AC_RATINGS_W]
        ac_rating = float(candidates[0] if len(candidates) else _AC_RATINGS_W[-1])
        commissioned = _EARLIEST_COMMISSIONING + timedelta(days=int(rng.integers(span_days)))
        sites.append(
            Site(
                index=i,
                site_id=f"zw{number:03d}",
                gateway_id=f"gw-zw{number:03d}",
                device_id=f"zw{number:03d}-inv1",
                latitude_deg=round(float(latitude), 6),
                longitude_deg=round(float(longitude), 6),
                modules=modules,
                module_wp=module_wp,
                kwp=round(kwp, 3),
                tilt_deg=round(tilt, 1),
                azimuth_deg=round(azimuth, 1),
                orientation=orientation,
                shaded=shaded,
                shade_azimuth_from_deg=shade_centre - 35.0,
                shade_azimuth_to_deg=shade_centre + 35.0,
                shade_elevation_deg=float(rng.uniform(12.0, 25.0)) if shaded else 0.0,
                family=family,
                manufacturer=manufacturer,
                model=f"{model_name} {ac_rating / 1000:.1f}",
                serial=f"{family[:2].upper()}{int(rng.integers(10**8, 10**9))}",
                mppt_modules=mppt_modules,
                ac_rating_w=ac_rating,
                commissioned=commissioned,
                degradation_per_year=float(rng.uniform(0.003, 0.007)),
                system_loss=float(rng.uniform(0.07, 0.12)),
                cloud_lag_s=float(east_m / CLOUD_SPEED_M_S),
                layout="sunspec-der"
                if family == "sunspec-int" and commissioned >= DER_FROM
                else "",
            )
        )
    return Fleet(seed=seed, sites=tuple(sites))
