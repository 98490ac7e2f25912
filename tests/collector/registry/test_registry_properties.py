"""Properties of loading fleets into the store, over random fleets and random edits.

- after loading any valid fleet (with prune) the store reads back as exactly that fleet;
- loading it a second time changes nothing;
- the change log accounts for every row: inserts minus deletes equals the rows stored;
- a fleet survives dump → parse unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from collector.registry.fleet_file import (
    Address,
    Contract,
    Cooperative,
    Device,
    Fleet,
    Member,
    Site,
    dump_fleet_yaml,
    parse_fleet,
)
from collector.registry.store_read import canonical, read_fleet
from collector.registry.store_sync import ENTITIES, sync_fleet
from collector.registry.tariff_plans import TariffPlan, TariffVersion
from collector.store.db import session_factory
from collector.store.models import RegistryChangeRow
from collector.store.testing import temporary_database

ADDRESS = Address(street="Dieze 1", postal_code="8011 AB", city="Zwolle")
PLANS = (
    TariffPlan(
        plan_id="basis",
        versions=[
            TariffVersion(
                valid_from=date(2024, 1, 1),
                monthly_fee_eur=Decimal("12.50"),
                vat_rate=Decimal("0.21"),
            )
        ],
    ),
)
FIRST_DAY = date(2024, 1, 1)


@st.composite
def fleets(draw: st.DrawFn) -> Fleet:
    member_ids = draw(st.sets(st.integers(0, 7), min_size=1, max_size=6))
    members = tuple(
        Member(
            member_id=f"M{i}",
            name=draw(st.sampled_from(["Anna", "Bram", "Chloé", "Dirk"])),
            address=ADDRESS,
            email=f"m{i}@example.org",
            language=draw(st.sampled_from(["nl", "en"])),
        )
        for i in sorted(member_ids)
    )
    site_ids = draw(st.sets(st.integers(0, 5), min_size=1, max_size=4))
    sites, devices, contracts = [], [], []
    contract_no = 0
    for s in sorted(site_ids):
        kwp = Decimal(draw(st.integers(10, 80))) / 10
        sites.append(
            Site(
                site_id=f"S{s}",
                address=ADDRESS,
                lat=52.52,
                lon=6.1,
                kwp=kwp,
                tilt_deg=draw(st.sampled_from([0.0, 30.0, 35.5])),
                azimuth_deg=draw(st.sampled_from([90.0, 180.0, 270.0])),
                gateway_id=f"gw-{s}",
            )
        )
        devices.append(
            Device(
                device_id=f"inv-{s}",
                site_id=f"S{s}",
                family=draw(st.sampled_from(["sunspec-int", "huawei", "growatt"])),
                ac_rating_w=draw(st.integers(1000, 6000)),
                kwp=kwp,
                installed_on=FIRST_DAY,
            )
        )
        # Consecutive contracts on the roof: moves out and in on random days.
        start = FIRST_DAY + timedelta(days=draw(st.integers(0, 60)))
        for _ in range(draw(st.integers(0, 3))):
            length = draw(st.one_of(st.none(), st.integers(1, 400)))
            end = None if length is None else start + timedelta(days=length - 1)
            contracts.append(
                Contract(
                    contract_id=f"C{s}-{contract_no}",
                    member_id=draw(st.sampled_from([m.member_id for m in members])),
                    site_id=f"S{s}",
                    start_date=start,
                    end_date=end,
                    tariff_plan_id="basis",
                )
            )
            contract_no += 1
            if end is None:
                break
            start = end + timedelta(days=1)
    return Fleet(
        cooperative=Cooperative(name="Buurtbedrijf", address=ADDRESS),
        tariff_plans=PLANS,
        members=members,
        sites=tuple(sites),
        devices=tuple(devices),
        contracts=tuple(contracts),
    )


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with temporary_database("sqlite") as eng:
        yield eng


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(fleets(), min_size=1, max_size=3))
def test_store_follows_any_sequence_of_fleets(engine: Engine, sequence: list[Fleet]) -> None:
    sessions = session_factory(engine)
    for fleet in sequence:
        with sessions.begin() as session:
            sync_fleet(session, fleet, source="property", prune=True)
        with sessions.begin() as session:
            again = sync_fleet(session, fleet, source="property", prune=True)
        assert not again.changed
        with sessions() as session:
            assert read_fleet(session) == canonical(fleet)
            # Every stored row is accounted for by the history: inserts minus deletes.
            for entity in ENTITIES:
                counts = {
                    action: session.scalar(
                        select(func.count())
                        .select_from(RegistryChangeRow)
                        .where(RegistryChangeRow.entity == entity.name)
                        .where(RegistryChangeRow.action == action)
                    )
                    or 0
                    for action in ("insert", "delete")
                }
                stored = session.scalar(select(func.count()).select_from(entity.model)) or 0
                assert counts["insert"] - counts["delete"] == stored, entity.name


@settings(max_examples=25, deadline=None)
@given(fleet=fleets())
def test_dump_parse_round_trip(fleet: Fleet) -> None:
    assert parse_fleet(dump_fleet_yaml(fleet)) == fleet
