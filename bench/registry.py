"""Registry timings: parse/check a fleet file and load it into the store, for N members.

Usage: ``.venv/bin/python bench/registry.py [--members 10000] [--no-postgres]``

Prints: YAML size, parse + validate time, first load, unchanged reload and read-back times on
SQLite (temporary file) and PostgreSQL (private schema on the local test server).

Figures (``bench/_figures.py``): parse + validate, and each backend's first load, for 10,000
members. Goal: each under 60 s, the budget a month's settlement of 10,000 members has (issue 6),
so that loading the registry is never what holds an operator up.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import TypeVar

from _figures import at_most, report

from collector.registry.fleet_file import Fleet, dump_fleet_yaml, parse_fleet
from collector.registry.store_read import read_fleet
from collector.registry.store_sync import sync_fleet
from collector.store.db import session_factory
from collector.store.testing import Backend, DatabaseUnavailableError, temporary_database

T = TypeVar("T")


def synthetic_fleet(members: int) -> Fleet:
    plan = {
        "plan_id": "zon-basis",
        "versions": [
            {
                "valid_from": date(2025, 1, 1),
                "monthly_fee_eur": Decimal("12.50"),
                "guarantee": {
                    "kwh_per_kwp_per_year": Decimal(850),
                    "compensation_eur_per_kwh": Decimal("0.21"),
                },
                "vat_rate": Decimal("0.21"),
            }
        ],
    }
    address = {"street": "Dieze 1", "postal_code": "8011 AB", "city": "Zwolle"}
    return Fleet.model_validate(
        {
            "cooperative": {
                "name": "Coöperatieve wijkonderneming WijBedrijf Dieze",
                "address": address,
            },
            "tariff_plans": [plan],
            "members": [
                {
                    "member_id": f"M{i:05d}",
                    "name": f"Lid {i}",
                    "address": address,
                    "email": f"lid{i}@example.org",
                }
                for i in range(members)
            ],
            "sites": [
                {
                    "site_id": f"S{i:05d}",
                    "address": address,
                    "lat": 52.52,
                    "lon": 6.10,
                    "kwp": Decimal("3.6"),
                    "tilt_deg": 35,
                    "azimuth_deg": 180,
                    "gateway_id": f"gw-{i:05d}",
                }
                for i in range(members)
            ],
            "devices": [
                {
                    "device_id": f"inv-{i:05d}",
                    "site_id": f"S{i:05d}",
                    "family": "sunspec-int",
                    "ac_rating_w": 3600,
                    "kwp": Decimal("3.6"),
                    "installed_on": date(2025, 3, 1),
                }
                for i in range(members)
            ],
            "contracts": [
                {
                    "contract_id": f"C{i:05d}",
                    "member_id": f"M{i:05d}",
                    "site_id": f"S{i:05d}",
                    "start_date": date(2025, 3, 1),
                    "tariff_plan_id": "zon-basis",
                }
                for i in range(members)
            ],
        }
    )


GOAL = at_most(60.0, "the budget of a month's settlement for 10,000 members (issue 6)")
LAST: dict[str, float] = {}


def timed(label: str, func: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = func()
    LAST[label] = time.perf_counter() - start
    print(f"  {label:<34} {LAST[label]:7.2f} s")
    return result


def bench_backend(backend: Backend, fleet: Fleet) -> None:
    print(backend)
    try:
        with temporary_database(backend) as engine:
            sessions = session_factory(engine)

            def load() -> tuple[int, int, int]:
                with sessions.begin() as session:
                    return sync_fleet(session, fleet, source="bench").totals()

            def read() -> Fleet:
                with sessions() as session:
                    return read_fleet(session)

            print(f"    rows inserted/updated/deleted: {timed('first load (with history)', load)}")
            first = LAST["first load (with history)"]
            print(f"    rows inserted/updated/deleted: {timed('reload, unchanged', load)}")
            timed("read back as a Fleet", read)
            report(
                f"{backend}_first_load_s",
                first,
                "s",
                GOAL,
                detail=f"reload unchanged {LAST['reload, unchanged']:.1f} s, "
                f"read back {LAST['read back as a Fleet']:.1f} s",
            )
    except DatabaseUnavailableError as exc:
        print(f"  skipped: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    fleet = synthetic_fleet(args.members)
    text = timed("write YAML", lambda: dump_fleet_yaml(fleet))
    print(f"fleet of {args.members} members: {len(text) / 1e6:.1f} MB of YAML")
    parsed = timed("parse + validate (with lines)", lambda: parse_fleet(text))
    assert parsed == fleet
    report(
        "parse_validate_s",
        LAST["parse + validate (with lines)"],
        "s",
        GOAL,
        detail=f"{args.members} members, {len(text) / 1e6:.1f} MB of YAML",
    )
    bench_backend("sqlite", fleet)
    if not args.no_postgres:
        bench_backend("postgresql", fleet)


if __name__ == "__main__":
    main()
