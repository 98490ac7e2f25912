"""Sun, clear sky and the path from irradiance to AC power, vectorised over time and sites.

Pure functions named after the quantity they return. Arrays are shaped ``(n_times, n_sites)``
(time first); per-site parameters are 1-D arrays of ``n_sites`` and broadcast. The physics is
pvlib's: Ineichen clear sky with the Linke turbidity climatology that ships with pvlib, the
Erbs decomposition, Hay-Davies transposition, and from there the chain PVGIS uses: Martin-Ruiz
incidence-angle losses (beam, sky and ground diffuse), the Faiman module temperature model and
the Huld module power model for crystalline silicon (low-irradiance and temperature losses,
PVGIS 6 coefficients); then the PVWatts inverter model (which clips at the AC rating).
Sources of every constant: ``docs/simulator.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pandas as pd
import pvlib

FloatArray = npt.NDArray[np.float64]

#: Zwolle, Dieze-Oost.
DISTRICT_LATITUDE_DEG = 52.52
DISTRICT_LONGITUDE_DEG = 6.10
DISTRICT_ALTITUDE_M = 2.0
#: Angular losses coefficient of the Martin-Ruiz model for glass-covered modules (PVGIS) [-].
IAM_A_R = 0.16


@dataclass(frozen=True)
class SunAndSky:
    """Sun position and clear-sky irradiance for the district at a set of times."""

    zenith_deg: FloatArray
    apparent_zenith_deg: FloatArray
    azimuth_deg: FloatArray
    ghi_clear_w_m2: FloatArray
    dni_extra_w_m2: FloatArray
    day_of_year: FloatArray


@lru_cache(maxsize=1)
def _linke_turbidity_by_day_of_year() -> FloatArray:
    """Daily Linke turbidity at the district from pvlib's bundled climatology (no download)."""
    days = pd.date_range("2021-01-01", periods=365, freq="D", tz="UTC") + pd.Timedelta(hours=12)
    values = pvlib.clearsky.lookup_linke_turbidity(
        days, DISTRICT_LATITUDE_DEG, DISTRICT_LONGITUDE_DEG
    )
    return np.asarray(values, dtype=np.float64)


def linke_turbidity(day_of_year: FloatArray) -> FloatArray:
    """Linke turbidity for each day of the year [1].

    Parameters
    ----------
    day_of_year : array
        Day of the year, 1-366 [-]
    """
    table = _linke_turbidity_by_day_of_year()
    index = np.clip(day_of_year.astype(np.int64) - 1, 0, len(table) - 1)
    return table[index]


def sun_and_clear_sky(times: pd.DatetimeIndex) -> SunAndSky:
    """Sun position and Ineichen clear-sky GHI at the district.

    Parameters
    ----------
    times : DatetimeIndex
        UTC timestamps [-]
    """
    position = pvlib.solarposition.get_solarposition(
        times, DISTRICT_LATITUDE_DEG, DISTRICT_LONGITUDE_DEG, altitude=DISTRICT_ALTITUDE_M
    )
    apparent_zenith = position["apparent_zenith"].to_numpy(dtype=np.float64)
    day_of_year = times.day_of_year.to_numpy().astype(np.float64)
    airmass_relative = pvlib.atmosphere.get_relative_airmass(apparent_zenith)
    pressure_pa = pvlib.atmosphere.alt2pres(DISTRICT_ALTITUDE_M)
    airmass_absolute = pvlib.atmosphere.get_absolute_airmass(airmass_relative, pressure_pa)
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(day_of_year), dtype=np.float64)
    # Below the horizon the airmass is NaN and Ineichen divides by zero: the result is set to 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        clear = pvlib.clearsky.ineichen(
            apparent_zenith,
            airmass_absolute,
            linke_turbidity(day_of_year),
            altitude=DISTRICT_ALTITUDE_M,
            dni_extra=dni_extra,
        )
    ghi = np.nan_to_num(np.asarray(clear["ghi"], dtype=np.float64), nan=0.0)
    return SunAndSky(
        zenith_deg=position["zenith"].to_numpy(dtype=np.float64),
        apparent_zenith_deg=apparent_zenith,
        azimuth_deg=position["azimuth"].to_numpy(dtype=np.float64),
        ghi_clear_w_m2=np.maximum(ghi, 0.0),
        dni_extra_w_m2=dni_extra,
        day_of_year=day_of_year,
    )


def erbs_components_w_m2(
    ghi_w_m2: FloatArray, zenith_deg: FloatArray, dni_extra_w_m2: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Direct normal and diffuse horizontal irradiance from GHI (Erbs et al. 1982).

    Parameters
    ----------
    ghi_w_m2 : array
        Global horizontal irradiance, (n_times, n_sites) [W/m2]
    zenith_deg : array
        Solar zenith, (n_times, 1) [deg]
    dni_extra_w_m2 : array
        Extraterrestrial normal irradiance, (n_times, 1) [W/m2]

    Returns
    -------
    dni_w_m2, dhi_w_m2 : arrays
        Direct normal and diffuse horizontal irradiance [W/m2]
    """
    cos_zenith = np.cos(np.radians(zenith_deg))
    kt = pvlib.irradiance.clearness_index(ghi_w_m2, zenith_deg, dni_extra_w_m2)
    kt = np.asarray(kt, dtype=np.float64)
    diffuse_fraction = np.where(
        kt <= 0.22,
        1.0 - 0.09 * kt,
        np.where(
            kt <= 0.8,
            0.9511 - 0.1604 * kt + 4.388 * kt**2 - 16.638 * kt**3 + 12.336 * kt**4,
            0.165,
        ),
    )
    dhi = ghi_w_m2 * diffuse_fraction
    dni = np.where(
        (cos_zenith > 0.065) & (zenith_deg < 87.0),
        (ghi_w_m2 - dhi) / np.maximum(cos_zenith, 0.065),
        0.0,
    )
    dhi = np.where(dni > 0, dhi, ghi_w_m2)
    return np.maximum(dni, 0.0), np.maximum(dhi, 0.0)


def plane_of_array_w_m2(
    surface_tilt_deg: FloatArray,
    surface_azimuth_deg: FloatArray,
    sky: SunAndSky,
    ghi_w_m2: FloatArray,
    beam_shading: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Irradiance reaching the cells and in the plane of each roof (Hay-Davies, Martin-Ruiz IAM).

    Parameters
    ----------
    surface_tilt_deg : array
        Roof tilt, (n_sites,) [deg]
    surface_azimuth_deg : array
        Roof azimuth, 180 is south, (n_sites,) [deg]
    sky : SunAndSky
        Sun position and clear sky at the times [-]
    ghi_w_m2 : array
        All-sky global horizontal irradiance at each site, (n_times, n_sites) [W/m2]
    beam_shading : array
        Fraction of the beam blocked by obstacles, 0-1, (n_times, n_sites) [-]

    Returns
    -------
    effective_w_m2, poa_global_w_m2 : arrays
        Irradiance converted by the cells after reflection losses, and total in the plane
        of the array (for the cell temperature) [W/m2]
    """
    zenith = sky.zenith_deg[:, None]
    azimuth = sky.azimuth_deg[:, None]
    dni_extra = sky.dni_extra_w_m2[:, None]
    dni, dhi = erbs_components_w_m2(ghi_w_m2, zenith, dni_extra)
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt_deg,
        surface_azimuth_deg,
        zenith,
        azimuth,
        dni,
        ghi_w_m2,
        dhi,
        dni_extra=dni_extra,
        model="haydavies",
    )
    aoi = pvlib.irradiance.aoi(surface_tilt_deg, surface_azimuth_deg, zenith, azimuth)
    iam_beam = np.asarray(pvlib.iam.martin_ruiz(aoi, a_r=IAM_A_R), dtype=np.float64)
    iam_diffuse = pvlib.iam.martin_ruiz_diffuse(surface_tilt_deg, a_r=IAM_A_R)
    direct = np.nan_to_num(np.asarray(poa["poa_direct"], dtype=np.float64)) * (1.0 - beam_shading)
    sky_diffuse = np.nan_to_num(np.asarray(poa["poa_sky_diffuse"], dtype=np.float64))
    ground_diffuse = np.nan_to_num(np.asarray(poa["poa_ground_diffuse"], dtype=np.float64))
    effective = np.maximum(
        direct * np.nan_to_num(iam_beam)
        + sky_diffuse * np.asarray(iam_diffuse["sky"])
        + ground_diffuse * np.asarray(iam_diffuse["ground"]),
        0.0,
    )
    poa_global = np.maximum(direct + sky_diffuse + ground_diffuse, 0.0)
    return effective, poa_global


def cell_temp_c(
    poa_global_w_m2: FloatArray, air_temp_c: FloatArray, wind_speed_m_s: float
) -> FloatArray:
    """Cell temperature of a roof-mounted module (Faiman).

    Parameters
    ----------
    poa_global_w_m2 : array
        Irradiance in the plane of the array [W/m2]
    air_temp_c : array
        Ambient air temperature [°C]
    wind_speed_m_s : float
        Wind speed [m/s]
    """
    # Roof mounting runs hotter than open rack: lower heat-loss coefficients.
    return np.asarray(
        pvlib.temperature.faiman(poa_global_w_m2, air_temp_c, wind_speed_m_s, u0=20.0, u1=5.0),
        dtype=np.float64,
    )


def dc_power_w(
    effective_w_m2: FloatArray, cell_temperature_c: FloatArray, kwp: FloatArray
) -> FloatArray:
    """DC power of each array before system losses (Huld model, PVGIS 6 crystalline silicon).

    Relative efficiency against STC is about -3 % at 200 W/m2 and -0.30 %/°C at 1000 W/m2.

    Parameters
    ----------
    effective_w_m2 : array
        Irradiance converted by the cells [W/m2]
    cell_temperature_c : array
        Cell (module) temperature [°C]
    kwp : array
        Nameplate DC power, (n_sites,) [kWp]
    """
    irradiance = np.asarray(effective_w_m2, dtype=np.float64)
    # log(G) of the model is undefined at G = 0 and negative below about 20 W/m2: no power there.
    with np.errstate(divide="ignore", invalid="ignore"):
        pdc = pvlib.pvarray.huld(
            np.maximum(irradiance, 1e-3),
            cell_temperature_c,
            kwp * 1000.0,
            cell_type="cSi",
            k_version="pvgis6",
        )
    pdc = np.where(irradiance > 0.0, np.nan_to_num(np.asarray(pdc, dtype=np.float64)), 0.0)
    return np.maximum(pdc, 0.0)


def ac_power_w(
    dc_power: FloatArray, ac_rating_w: FloatArray, eta_nominal: float = 0.975
) -> FloatArray:
    """AC output of each inverter, clipped at its rating (PVWatts inverter model).

    Parameters
    ----------
    dc_power : array
        DC input power [W]
    ac_rating_w : array
        Inverter AC rating, (n_sites,) [W]
    eta_nominal : float
        Nominal inverter efficiency [-]
    """
    pac = pvlib.inverter.pvwatts(dc_power, ac_rating_w / eta_nominal, eta_inv_nom=eta_nominal)
    return np.clip(np.nan_to_num(np.asarray(pac, dtype=np.float64)), 0.0, ac_rating_w)


def string_voltage_v(
    modules_in_string: FloatArray, cell_temperature_c: FloatArray, effective_w_m2: FloatArray
) -> FloatArray:
    """Maximum-power voltage of a string of 108-half-cell modules (Vmp 34 V at STC).

    Parameters
    ----------
    modules_in_string : array
        Modules in series [-]
    cell_temperature_c : array
        Cell temperature [°C]
    effective_w_m2 : array
        Irradiance converted by the cells [W/m2]
    """
    irradiance = np.maximum(effective_w_m2, 1.0) / 1000.0
    per_module = (
        34.0 * (1.0 - 0.0029 * (cell_temperature_c - 25.0)) * (1.0 + 0.035 * np.log(irradiance))
    )
    return np.maximum(per_module, 0.0) * modules_in_string
