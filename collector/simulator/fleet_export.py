"""The simulated fleet in the registry's fleet-file format (``config/fleet.example.yaml``).

One function, :func:`to_registry_fleet`, maps the simulator's sites to the registry's pydantic
models (:mod:`collector.registry.fleet_file`): a member, a site, an inverter and a contract per
roof, plus the cooperative and its tariff plans from ``example_fleet.yaml``. Counter
resets that happened during a simulation are recorded on their device, as the registry expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from collector.registry import fleet_file as ff
from collector.simulator.engine import CounterResetRecord
from collector.simulator.fleet import Fleet

_DATA = Path(__file__).with_name("example_fleet.yaml")


@lru_cache(maxsize=1)
def _fixed_parts() -> dict[str, Any]:
    with _DATA.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


def to_registry_fleet(fleet: Fleet, counter_resets: Sequence[CounterResetRecord] = ()) -> ff.Fleet:
    """The registry's view of a simulated fleet.

    Parameters
    ----------
    fleet : Fleet
        The simulated sites [-]
    counter_resets : sequence of CounterResetRecord
        Resets that happened in a simulation, recorded on their devices [-]
    """
    fixed = _fixed_parts()
    rng = np.random.default_rng([fleet.seed, 0xF1EE7])
    plans = tuple(ff.TariffPlan.model_validate(p) for p in fixed["tariff_plans"])
    resets_by_site: dict[int, list[ff.CounterReset]] = {}
    for record in counter_resets:
        resets_by_site.setdefault(record.site_index, []).append(
            ff.CounterReset(
                at=datetime.fromtimestamp(record.epoch_s, tz=UTC),
                last_energy_wh=Decimal(str(record.last_energy_wh)),
                first_energy_wh=Decimal(str(record.first_energy_wh)),
                reason="inverter replaced (simulated)",
            )
        )
    members, sites, devices, contracts = [], [], [], []
    streets = fixed["streets"]
    for site in fleet.sites:
        number = site.index + 1
        street = f"{streets[int(rng.integers(len(streets)))]} {int(rng.integers(1, 120))}"
        postal_code = f"{int(rng.choice([8012, 8013]))} {_letters(rng)}"
        address = ff.Address(street=street, postal_code=postal_code, city="Zwolle")
        first = fixed["first_names"][int(rng.integers(len(fixed["first_names"])))]
        last = fixed["surnames"][int(rng.integers(len(fixed["surnames"])))]
        member_id = f"M{number:04d}"
        members.append(
            ff.Member(
                member_id=member_id,
                name=f"{first} {last}",
                address=address,
                email=f"{member_id.lower()}@example.org",
                language="en" if rng.random() < 0.1 else "nl",
            )
        )
        sites.append(
            ff.Site(
                site_id=site.site_id,
                address=address,
                lat=site.latitude_deg,
                lon=site.longitude_deg,
                kwp=Decimal(str(site.kwp)),
                tilt_deg=site.tilt_deg,
                azimuth_deg=site.azimuth_deg % 360.0,
                gateway_id=site.gateway_id,
            )
        )
        resets = sorted(resets_by_site.get(site.index, []), key=lambda r: r.at)
        devices.append(
            ff.Device(
                device_id=site.device_id,
                site_id=site.site_id,
                family=site.family,
                model=f"{site.manufacturer} {site.model}",
                ac_rating_w=int(site.ac_rating_w),
                mppt_count=site.mppt_count,
                kwp=Decimal(str(site.kwp)),
                installed_on=site.commissioned,
                counter_resets=tuple(resets),
            )
        )
        contracts.append(
            ff.Contract(
                contract_id=f"C{number:04d}",
                member_id=member_id,
                site_id=site.site_id,
                start_date=site.commissioned,
                tariff_plan_id=plans[int(rng.random() < 0.3)].plan_id,
            )
        )
    return ff.Fleet(
        cooperative=ff.Cooperative.model_validate(fixed["cooperative"]),
        tariff_plans=plans,
        members=tuple(members),
        sites=tuple(sites),
        devices=tuple(devices),
        contracts=tuple(contracts),
    )


def _letters(rng: np.random.Generator) -> str:
    # Dutch postcodes never use SA, SD or SS.
    while True:
        pair = "".join(chr(ord("A") + int(rng.integers(26))) for _ in range(2))
        if pair not in ("SA", "SD", "SS"):
            return pair


def write_fleet_file(
    fleet: Fleet, path: Path, counter_resets: Sequence[CounterResetRecord] = ()
) -> None:
    """Write the fleet file (validated by the registry's own checks before writing)."""
    header = (
        f"Simulated fleet: {len(fleet)} roofs in Zwolle Dieze-Oost, seed {fleet.seed}.\n"
        "Generated by `zonnewijk simulate` (collector/simulator); fictitious people and places.\n"
        "Format: docs/fleet-file.md."
    )
    text = ff.dump_fleet_yaml(to_registry_fleet(fleet, counter_resets), header=header)
    path.write_text(text, encoding="utf-8")
