"""Loading fleet files into the store: idempotent, with history, identical on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from collector.registry.fleet_file import Fleet, parse_fleet
from collector.registry.store_read import RegistryEmptyError, canonical, read_fleet
from collector.registry.store_sync import RegistryLoadError, sync_fleet
from collector.store.db import session_factory
from collector.store.models import (
    ContractRow,
    DeviceReplacementRow,
    RegistryChangeRow,
    RegistryLoadRow,
)
from collector.store.testing import Backend, DatabaseUnavailableError, temporary_database

SMALL = Path(__file__).resolve().parents[3] / "config" / "fleet.small.yaml"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    backend: Backend = request.param
    try:
        with temporary_database(backend) as eng:
            yield eng
    except DatabaseUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def small_text() -> str:
    return SMALL.read_text(encoding="utf-8")


def load(engine: Engine, fleet: Fleet, *, prune: bool = False) -> tuple[int, int, int, bool]:
    with session_factory(engine).begin() as session:
        report = sync_fleet(session, fleet, source="test", prune=prune, now=NOW)
    return (*report.totals(), report.changed)


def stored(engine: Engine) -> Fleet:
    with session_factory(engine)() as session:
        return read_fleet(session)


def changes(engine: Engine) -> list[tuple[str, str, str, str | None, str | None, str | None]]:
    with session_factory(engine)() as session:
        rows = session.scalars(select(RegistryChangeRow).order_by(RegistryChangeRow.change_id))
        return [(r.entity, r.entity_key, r.action, r.field, r.old_value, r.new_value) for r in rows]


def load_count(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(RegistryLoadRow)) or 0


def test_load_is_idempotent_and_reads_back_equal(engine: Engine, small_text: str) -> None:
    fleet = parse_fleet(small_text)
    # 1 cooperative + 2 plans + 3 versions + 3 members + 2 sites + 3 devices
    # + 1 replacement + 1 counter reset + 3 contracts
    assert load(engine, fleet) == (19, 0, 0, True)
    assert stored(engine) == canonical(fleet)
    assert load(engine, fleet) == (0, 0, 0, False)
    assert load_count(engine) == 1  # the unchanged second load wrote nothing
    assert len(changes(engine)) == 19


def test_member_moves_out_and_another_takes_over_mid_month(engine: Engine, small_text: str) -> None:
    # Before: Bram's contract is open-ended and Chloé has none.
    before = small_text.replace("    end_date: 2026-03-15\n", "")
    before = before[: before.index("  - contract_id: C0003")]
    load(engine, parse_fleet(before))
    first = stored(engine)
    assert first.contracts[1].end_date is None

    # The cooperative records the move: Bram's last day is 15 March, Chloé starts on the 16th.
    after = parse_fleet(small_text)
    assert load(engine, after) == (1, 1, 0, True)
    log = changes(engine)
    assert ("contract", "C0002", "update", "end_date", None, "2026-03-15") in log
    assert any(c[:3] == ("contract", "C0003", "insert") for c in log)

    fleet = stored(engine)
    march = fleet.contracts_in(date(2026, 3, 1), date(2026, 3, 31))
    on_s002 = [(c.member_id, c.start_date, c.end_date) for c in march if c.site_id == "S002"]
    assert on_s002 == [
        ("M0002", date(2025, 3, 1), date(2026, 3, 15)),
        ("M0003", date(2026, 3, 16), None),
    ]


def test_inverter_replacement_is_recorded(engine: Engine, small_text: str) -> None:
    # Before the replacement only inv-s001-a exists, still in service.
    start = small_text.index("  - device_id: inv-s001-b")
    end = small_text.index("  - device_id: inv-s002")
    before = small_text[:start] + small_text[end:]
    before = before.replace("    removed_on: 2026-05-11\n    replaced_by: inv-s001-b\n", "")
    load(engine, parse_fleet(before))

    assert load(engine, parse_fleet(small_text)) == (2, 1, 0, True)
    log = changes(engine)
    assert ("device", "inv-s001-a", "update", "removed_on", None, "2026-05-11") in log
    assert ("device", "inv-s001-a", "update", "replaced_by", None, "inv-s001-b") in log
    with session_factory(engine)() as session:
        rep = session.scalars(select(DeviceReplacementRow)).one()
    assert rep.replaced_device_id == "inv-s001-a"
    assert rep.at == datetime(2026, 5, 11, 11, 40, tzinfo=UTC)
    assert rep.old_last_energy_wh == Decimal(4312870)
    assert rep.new_first_energy_wh == Decimal(12)
    fleet = stored(engine)
    assert [d.device_id for d in fleet.devices_of_site("S001")] == ["inv-s001-a", "inv-s001-b"]


def test_tariff_price_change_keeps_old_and_new_value(engine: Engine, small_text: str) -> None:
    load(engine, parse_fleet(small_text))
    edited = small_text.replace("price_eur_per_kwh: 0.095", "price_eur_per_kwh: 0.0975")
    assert load(engine, parse_fleet(edited)) == (0, 1, 0, True)
    assert changes(engine)[-1] == (
        "tariff_version",
        "zon-per-kwh/2025-01-01",
        "update",
        "price_eur_per_kwh",
        "0.095",
        "0.0975",
    )
    assert stored(engine).tariff_plan("zon-per-kwh").versions[0].price_eur_per_kwh == Decimal(
        "0.0975"
    )


def test_rows_missing_from_the_file_are_kept_unless_pruned(engine: Engine, small_text: str) -> None:
    fleet = parse_fleet(small_text)
    load(engine, fleet)
    smaller = fleet.model_copy(
        update={
            "members": fleet.members[:2],
            "contracts": tuple(c for c in fleet.contracts if c.member_id != "M0003"),
        }
    )
    with session_factory(engine).begin() as session:
        report = sync_fleet(session, smaller, source="test")
    assert not report.changed
    assert report.absent == {"contract": ["C0003"], "member": ["M0003"]}
    assert "2 row(s) in the store but not in the file kept" in report.summary()
    assert len(stored(engine).members) == 3

    assert load(engine, smaller, prune=True) == (0, 0, 2, True)
    assert stored(engine) == canonical(smaller)
    deletes = [c for c in changes(engine) if c[2] == "delete"]
    assert [c[:2] for c in deletes] == [("contract", "C0003"), ("member", "M0003")]
    assert '"email": "chloe@example.org"' in str(deletes[1][4])  # the old row is kept


def test_prune_refuses_rows_the_ledger_refers_to(engine: Engine, small_text: str) -> None:
    fleet = parse_fleet(small_text)
    load(engine, fleet)
    # A table standing in for the ledger: a settled statement line refers to contract C0003.
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE zz_statement_ref (id INTEGER PRIMARY KEY, contract_id VARCHAR(64) "
                "NOT NULL REFERENCES contracts (contract_id))"
            )
        )
        connection.execute(text("INSERT INTO zz_statement_ref VALUES (1, 'C0003')"))
    smaller = fleet.model_copy(
        update={
            "members": fleet.members[:2],
            "contracts": tuple(c for c in fleet.contracts if c.member_id != "M0003"),
        }
    )
    session = session_factory(engine)()
    try:
        with pytest.raises(RegistryLoadError, match=r"cannot delete contract 'C0003'.*end_date"):
            sync_fleet(session, smaller, source="test", prune=True)
    finally:
        session.close()
    with session_factory(engine)() as s:
        assert s.get(ContractRow, "C0003") is not None
    assert load_count(engine) == 1


def test_reading_an_empty_store_says_what_to_do(engine: Engine) -> None:
    with (
        session_factory(engine)() as session,
        pytest.raises(RegistryEmptyError, match="zonnewijk registry load"),
    ):
        read_fleet(session)


def test_sqlite_and_postgresql_hold_identical_registries(small_text: str) -> None:
    edited = small_text.replace("email: anna@example.org", "email: anna@example.net")
    results = []
    for backend in ("sqlite", "postgresql"):
        try:
            with temporary_database(backend) as engine:  # type: ignore[arg-type]
                load(engine, parse_fleet(small_text))
                load(engine, parse_fleet(edited))
                results.append((stored(engine), changes(engine)))
        except DatabaseUnavailableError as exc:
            pytest.skip(str(exc))
    assert results[0] == results[1]
