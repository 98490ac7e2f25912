"""``zonnewijk consent give|withdraw|list|purge`` on a real SQLite store (and InfluxDB)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from collector.cli import main
from collector.registry.fleet_file import load_fleet_file
from collector.registry.store_sync import sync_fleet
from collector.store.db import make_engine, migrate
from collector.timeseries.influx import InfluxClient

FLEET = Path(__file__).resolve().parents[3] / "config" / "fleet.small.yaml"


def test_give_list_withdraw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    engine = make_engine(url)
    migrate(engine)
    with Session(engine) as session, session.begin():
        sync_fleet(session, load_fleet_file(FLEET))
    db = ["--database-url", url]
    give = ["consent", "give", *db, "--member", "M0001", "--site", "S001", "--device", "S001-p1"]
    assert main([*give, "--gas", "--granularity", "900", "--at", "2027-01-04T10:00:00+01:00",
                 "--by", "volunteer Jan"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "member M0001, meter S001-p1 on gw-s001, from 2027-01-04T09:00:00+00:00" in out
    assert "every 900 s, with gas" in out
    assert main([*give, "--by", "again"]) == 1  # one active consent per meter
    assert "already has consent 1" in capsys.readouterr().err
    assert main(["consent", "list", *db]) == 0
    assert "electricity+gas" in capsys.readouterr().out
    withdraw = ["consent", "withdraw", *db, "--member", "M0001", "--device", "S001-p1"]
    assert main([*withdraw, "--by", "member"]) == 0
    assert "its stored readings are deleted by" in capsys.readouterr().out
    assert main([*withdraw, "--by", "member"]) == 1
    assert main(["consent", "list", *db, "--member", "M0001"]) == 0
    assert "withdrawn" in capsys.readouterr().out


def test_purge_deletes_a_withdrawn_meter_and_raw_readings_past_retention(
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
                 "--device", "S001-p1", "--by", "volunteer Jan",
                 "--at", "2026-01-04T10:00:00+01:00"]) == 0  # fmt: skip
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    year_ago_ms = now_ms - 400 * 86_400_000
    influx.write_lines(
        [f"grid_meter,gateway=gw-s001,device=S001-p1,source=p1 import_energy_wh=1.0 {now_ms}",
         f"grid_meter,gateway=gw-s002,device=S002-p1,source=p1 import_energy_wh=2.0 {now_ms}",
         f"grid_meter,gateway=gw-s002,device=S002-p1,source=p1 import_energy_wh=1.0 {year_ago_ms}"]
    )  # fmt: skip
    # nothing withdrawn: only the reading past the thirteen months goes
    assert main(["consent", "purge", *db, *inf]) == 0
    out = capsys.readouterr().out
    assert "no withdrawn consent to delete" in out and "raw meter readings before" in out
    assert len(influx.query_records("SELECT * FROM grid_meter")) == 2
    assert main(["consent", "withdraw", *db, "--member", "M0001", "--device", "S001-p1",
                 "--by", "member"]) == 0  # fmt: skip
    # as a service: one round of --every, then the member's reading is gone too
    assert main(["consent", "purge", *db, *inf, "--every", "0.01", "--runs", "1"]) == 0
    assert "1 points of meter S001-p1 deleted" in capsys.readouterr().out
    rows = influx.query_records("SELECT * FROM grid_meter")
    assert [r["gateway"] for r in rows] == ["gw-s002"]
    # a broken InfluxDB is a one-line error and exit code 1
    bad = ["--influx-url", "http://127.0.0.1:9", "--influx-db", "x"]
    assert main(["consent", "purge", *db, *bad]) == 1
    assert "consent purge:" in capsys.readouterr().err
