"""The relational store on SQLite and PostgreSQL: migrations, exact types, foreign keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from collector.store.db import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    migrate,
    normalise_url,
    schema_differences,
    session_factory,
)
from collector.store.models import CounterResetRow, DeviceRow, SiteRow
from collector.store.testing import Backend, DatabaseUnavailableError, temporary_database

REGISTRY_TABLES = {
    "cooperative",
    "members",
    "sites",
    "devices",
    "device_replacements",
    "counter_resets",
    "tariff_plans",
    "tariff_versions",
    "contracts",
    "registry_loads",
    "registry_changes",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    backend: Backend = request.param
    try:
        with temporary_database(backend) as eng:
            yield eng
    except DatabaseUnavailableError as exc:
        pytest.skip(str(exc))


def _site(site_id: str = "S1", kwp: Decimal = Decimal("4.2")) -> SiteRow:
    return SiteRow(
        site_id=site_id,
        street="Dieze 1",
        postal_code="8011 AB",
        city="Zwolle",
        country="NL",
        lat=52.52,
        lon=6.1,
        kwp=kwp,
        tilt_deg=35.0,
        azimuth_deg=180.0,
        gateway_id="gw-1",
    )


def _device(device_id: str, site_id: str) -> DeviceRow:
    return DeviceRow(
        device_id=device_id,
        site_id=site_id,
        family="sunspec-int",
        ac_rating_w=3600,
        mppt_count=2,
        kwp=Decimal("4.2"),
        installed_on=date(2025, 3, 1),
    )


def test_migrations_reach_head_and_match_the_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) >= REGISTRY_TABLES
    # Models and migrations agree: a model change without a migration fails here.
    assert schema_differences(engine) == []
    assert migrate(engine) == head_revision()  # running again is a no-op


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    assert downgrade(engine, "base") is None
    assert not REGISTRY_TABLES & set(inspect(engine).get_table_names())
    assert migrate(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) >= REGISTRY_TABLES


def test_decimals_round_trip_exactly(engine: Engine) -> None:
    values = [Decimal("4.2"), Decimal("0.1000"), Decimal("123456789.123456"), Decimal("0.000001")]
    sessions = session_factory(engine)
    with sessions.begin() as session:
        for i, kwp in enumerate(values):
            session.add(_site(f"S{i}", kwp))
    with sessions() as session:
        got = list(session.scalars(select(SiteRow.kwp).order_by(SiteRow.site_id)))
    assert got == values
    assert [str(v) for v in got] == [str(v) for v in values]  # scale kept as written
    assert all(isinstance(v, Decimal) for v in got)


def test_decimal_column_refuses_floats(engine: Engine) -> None:
    with session_factory(engine)() as session:
        session.add(_site("S1", 4.2))  # type: ignore[arg-type]
        with pytest.raises(StatementError, match="needs a Decimal"):
            session.flush()


def test_instants_come_back_as_aware_utc(engine: Engine) -> None:
    cest = timezone(timedelta(hours=2))
    sessions = session_factory(engine)
    with sessions.begin() as session:
        session.add(_site())
        session.flush()  # no ORM relationships: parents are flushed before children
        session.add(_device("inv-1", "S1"))
        session.flush()
        session.add(
            CounterResetRow(
                device_id="inv-1",
                at=datetime(2026, 5, 11, 13, 40, tzinfo=cest),
                last_energy_wh=Decimal(100),
                first_energy_wh=Decimal(0),
            )
        )
    with sessions() as session:
        row = session.scalars(select(CounterResetRow)).one()
    assert row.at == datetime(2026, 5, 11, 11, 40, tzinfo=UTC)
    assert row.at.utcoffset() == timedelta(0)


def test_naive_instants_are_refused(engine: Engine) -> None:
    with session_factory(engine)() as session:
        session.add(_site())
        session.flush()  # no ORM relationships: parents are flushed before children
        session.add(_device("inv-1", "S1"))
        session.flush()
        session.add(
            CounterResetRow(
                device_id="inv-1",
                at=datetime(2026, 5, 11, 13, 40),
                last_energy_wh=Decimal(1),
                first_energy_wh=Decimal(0),
            )
        )
        with pytest.raises(StatementError, match="aware datetime"):
            session.flush()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with session_factory(engine)() as session:
        session.add(_device("inv-1", "no-such-site"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_postgres_schema_is_private() -> None:
    try:
        with temporary_database("postgresql") as first, temporary_database("postgresql") as second:
            with session_factory(first).begin() as session:
                session.add(_site("ONLY-IN-FIRST"))
            with session_factory(second)() as session:
                assert session.scalars(select(SiteRow)).all() == []
            with first.connect() as connection:
                schema = connection.execute(text("select current_schema()")).scalar_one()
            assert schema.startswith("zw_test_")
    except DatabaseUnavailableError as exc:
        pytest.skip(str(exc))


def test_sqlite_file_directory_is_created(tmp_path: object) -> None:
    from pathlib import Path

    target = Path(str(tmp_path)) / "deeper" / "data" / "store.sqlite3"
    engine = make_engine(f"sqlite:///{target}")
    try:
        migrate(engine)
    finally:
        engine.dispose()
    assert target.exists()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
