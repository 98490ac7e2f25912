"""``zonnewijk consent give|withdraw|list`` on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from collector.registry.fleet_file import load_fleet_file
from collector.registry.store_sync import sync_fleet
from collector.store.db import make_engine, migrate

FLEET = Path(__file__).resolve().parents[3] / "config" / "fleet.small.yaml"


def test_give_list_withdraw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    engine = make_engine(url)
    migrate(engine)
    from sqlalchemy.orm import Session

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
