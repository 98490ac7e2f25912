"""The registry (SQLite through collector.store) as the collector's device directory."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session

from collector.ingest.directory import CachedDirectory, DeviceRecord
from collector.ingest.store_directory import StoreDirectory
from collector.store.db import make_engine, migrate
from collector.store.models import DeviceRow, SiteRow


def _site(site_id: str, gateway: str) -> SiteRow:
    return SiteRow(
        site_id=site_id, street="Dieze 1", postal_code="8021 AA", city="Zwolle", country="NL",
        lat=52.52, lon=6.1, kwp=Decimal("4.2"), tilt_deg=35.0, azimuth_deg=180.0,
        gateway_id=gateway,
    )  # fmt: skip


def _device(device_id: str, site_id: str, gateway: str | None, rating: int) -> DeviceRow:
    return DeviceRow(
        device_id=device_id, site_id=site_id, gateway_id=gateway, family="sunspec",
        model=None, ac_rating_w=rating, mppt_count=2, kwp=Decimal("4.2"),
        installed_on=date(2025, 4, 1), removed_on=None, replaced_by=None,
    )  # fmt: skip


def test_store_directory_answers_from_the_registry(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    migrate(engine)
    with Session(engine) as session, session.begin():
        session.add_all([_site("site-1", "gw-1"), _site("site-2", "gw-2")])
        session.flush()
        session.add_all(
            [
                _device("inv-1", "site-1", None, 3680),  # gateway from its site
                _device("inv-2", "site-2", "gw-9", 5000),  # moved to another gateway
            ]
        )
    directory = StoreDirectory(engine)
    assert directory.gateway_known("gw-1") and directory.gateway_known("gw-9")
    assert not directory.gateway_known("gw-404")
    installed = date(2025, 4, 1)  # the registry's installation date travels with the record
    assert directory.device("gw-1", "inv-1") == DeviceRecord("gw-1", "inv-1", 3680.0, installed)
    assert directory.device("gw-9", "inv-2") == DeviceRecord("gw-9", "inv-2", 5000.0, installed)
    assert directory.device("gw-2", "inv-2") is None  # not behind its site's gateway any more
    assert directory.device("gw-1", "inv-2") is None
    cached = CachedDirectory(directory)
    assert cached.device("gw-1", "inv-1") == directory.device("gw-1", "inv-1")
    engine.dispose()
