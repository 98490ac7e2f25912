"""An operator's look at a member's meter data is refused without a purpose and recorded
before anything is read (``zonnewijk consent inspect``), on real SQLite and InfluxDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.cli import main
from collector.registry.fleet_file import load_fleet_file
from collector.registry.store_sync import sync_fleet
from collector.store.consent_models import PersonalDataAccessRow
from collector.store.db import make_engine, migrate
from collector.timeseries.influx import InfluxClient

FLEET = Path(__file__).resolve().parents[3] / "config" / "fleet.small.yaml"


def test_inspect_records_who_whose_and_why_and_shows_only_that_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], influx: InfluxClient
) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    engine = make_engine(url)
    migrate(engine)
    with Session(engine) as session, session.begin():
        sync_fleet(session, load_fleet_file(FLEET))
    db = ["--database-url", url]
    inf = ["--influx-url", influx.url, "--influx-db", influx.database]
    assert main(["consent", "give", *db, "--member", "M0001", "--site", "S001",
                 "--device", "S001-p1", "--by", "volunteer Jan"]) == 0  # fmt: skip
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    ms = int(day.timestamp() * 1000)
    influx.write_lines(
        [f"household_energy_daily,site=S001,gateway=gw-s001 production_kwh=9.5,"
         f"consumption_kwh=7.25,self_consumed_kwh=3.5,export_kwh=6.0,import_kwh=3.75 {ms}",
         f"household_energy_daily,site=S002,gateway=gw-s002 production_kwh=1234.5 {ms}"]
    )  # fmt: skip
    capsys.readouterr()
    inspect = ["consent", "inspect", *db, *inf, "--member", "M0001", "--by", "operator Els"]

    assert main([*inspect, "--purpose", "x"]) == 2  # no reason, no data, nothing recorded
    assert "say why you need member M0001's meter data" in capsys.readouterr().err
    with Session(engine) as session:
        assert session.scalars(select(PersonalDataAccessRow)).all() == []

    purpose = "support case 2027-014: member asks why export is high"
    assert main([*inspect, "--purpose", purpose]) == 0
    out = capsys.readouterr().out
    assert "9.50      7.25      3.50      6.00      3.75" in out
    assert "1234.5" not in out  # the neighbour's day is not shown
    with Session(engine) as session:
        [access] = session.scalars(select(PersonalDataAccessRow)).all()
        assert (access.actor, access.role, access.member_id) == (
            "operator Els",
            "operator",
            "M0001",
        )
        assert access.purpose == purpose and "household_energy_daily" in access.what

    # InfluxDB down: the attempt is still on record
    bad = ["--influx-url", "http://127.0.0.1:9", "--influx-db", "x"]
    assert main([*inspect[:-4], *bad, "--member", "M0001", "--by", "operator Els",
                 "--purpose", purpose]) == 1  # fmt: skip
    assert "the access is recorded" in capsys.readouterr().err
    with Session(engine) as session:
        assert len(session.scalars(select(PersonalDataAccessRow)).all()) == 2
