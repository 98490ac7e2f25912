"""``zonnewijk statements monthly`` end to end: InfluxDB readings, SQLite store, local SMTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from settle_cases import END, S4_STOP, START, SWAP, steady_pairs
from smtp_inbox import Inbox
from sqlalchemy import select
from sqlalchemy.orm import Session
from statement_cases import load_registry

from collector.cli import main
from collector.devtools.services import Influxd
from collector.statements.monthly import JOB
from collector.store.alert_models import JobRunRow
from collector.store.db import make_engine, migrate
from collector.store.ledger_models import SettlementStatementRow
from collector.timeseries.influx import InfluxClient, Point


@pytest.fixture
def influx_with_readings(influxd: Influxd) -> Iterator[InfluxClient]:
    """The settlement cases' counters (every 30 min) written to a fresh InfluxDB database."""
    client = InfluxClient(influxd.url, f"stm_{uuid.uuid4().hex[:12]}")
    client.create_database()
    pairs = {
        "d1": steady_pairs(START, END, 100.0, 1_000_000.0),
        "d2a": steady_pairs(START, SWAP - timedelta(minutes=30), 100.0, 5_000_000.0 - 30_000),
        "d2b": steady_pairs(SWAP + timedelta(minutes=30), END, 100.0, 60.0),
        "d3": steady_pairs(START, END, 100.0, 2_000_000.0),
        "d4": steady_pairs(START, S4_STOP, 100.0, 300_000.0),
    }
    client.write_points(
        Point("inverter", {"gateway": f"gw-{d}", "device": d}, {"ac_energy_wh": v}, t)
        for d, series in pairs.items()
        for t, v in series
    )
    yield client
    client.query(f'DROP DATABASE "{client.database}"', database="", epoch=None)


@pytest.mark.slow
def test_monthly_command_end_to_end(
    influx_with_readings: InfluxClient,
    smtp: tuple[int, Inbox],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, inbox = smtp
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    engine = make_engine(url)
    migrate(engine)
    with Session(engine) as session:
        load_registry(session)
    config = tmp_path / "statements.yaml"
    text = (Path(__file__).resolve().parents[3] / "config" / "statements.yaml").read_text()
    config.write_text(
        text.replace("port: 25", f"port: {port}").replace(
            "[operators@zonnewijk.example]", "[ops@example.org]"
        )
    )
    monkeypatch.setenv("ZONNEWIJK_DATA_DIR", str(tmp_path / "data"))
    code = main(
        ["statements", "monthly", "--period", "2026-03", "--database-url", url,
         "--config", str(config), "--influx-url", influx_with_readings.url,
         "--influx-db", influx_with_readings.database]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "2026-03: done" in err
    with Session(engine) as session:
        row = session.get(JobRunRow, (JOB, "2026-03"))
        assert row is not None and row.outcome == "done"
        c1 = session.scalars(
            select(SettlementStatementRow).where(SettlementStatementRow.contract_id == "C1")
        ).one()
    # the hand-computed M1 figures, now from InfluxDB: 9,47 excl. + 1,99 VAT
    assert (str(c1.total_excl_vat_eur), str(c1.vat_eur)) == ("9.47", "1.99")
    out = tmp_path / "data" / "statements" / "2026-03"
    summary = json.loads((out / "outcome.json").read_text())
    assert summary["statements"] == 5 and summary["mailed"] == 5
    assert (out / "statements" / "2026-03_M1.pdf").exists()
    assert len(inbox.messages) == 6
    engine.dispose()
