"""A gateway's spool file (a recovered SD card) replayed into a real InfluxDB.

The spool is written by the gateway's own code (``gateway_firmware.spool``); the server reads
it by its documented schema without importing the firmware.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.cli import main
from collector.timeseries.influx import InfluxClient
from gateway_firmware.spool import Spool
from zonnewijk_wire import DcInput, InverterState, Reading

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def spool_with_readings(path: Path, n: int) -> list[Reading]:
    readings = [
        Reading(
            device_id="INV-S1",
            ts=T0 + timedelta(seconds=10 * k),
            ac_power_w=1500.0 + k,
            ac_energy_wh=2_000_000.0 + 4.2 * k,
            dc=(DcInput(mppt=1, dc_voltage_v=360.0, dc_current_a=4.3),),
            state=InverterState.PRODUCING,
        )
        for k in range(n)
    ]
    with Spool(path) as spool:
        spool.append(readings[: n // 2])
        spool.append(readings[n // 2 :])
    return readings


def test_a_recovered_spool_is_replayed_once_with_the_replayed_flag(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool.sqlite3"
    readings = spool_with_readings(path, 300)
    args = ["import", "readings", str(path), "--quiet", "--format", "json",
            "--fleet", str(Path(__file__).parent / "data" / "fleet.yaml"),
            "--influx-url", influx.url, "--influx-db", influx.database,
            "--dead-letters", str(tmp_path / "dead.jsonl")]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["stored"] == len(readings) and summary["rejected"] == {}
    rows = influx.query_records(
        "SELECT ac_energy_wh, flags, state FROM inverter WHERE gateway = 'GW-S1' ORDER BY time"
    )
    assert len(rows) == len(readings)
    assert rows[-1]["ac_energy_wh"] == readings[-1].ac_energy_wh
    assert {r["flags"] for r in rows} == {"replayed"} and rows[0]["state"] == "producing"
    # the file was only read: the spool still holds every reading
    with Spool(path, read_only=True) as spool:
        assert spool.depth() == len(readings)
    # a second replay stores nothing new
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["stored"] == 0 and again["duplicates"] == len(readings)


def test_a_spool_without_a_gateway_needs_one(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool.sqlite3"
    spool_with_readings(path, 4)
    args = ["import", "readings", str(path), "--quiet", "--format", "json",
            "--influx-url", influx.url, "--influx-db", influx.database,
            "--dead-letters", str(tmp_path / "dead.jsonl")]  # fmt: skip
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["rejected"] == {"no_gateway": 4}
    assert main([*args, "--gateway", "GW-S1"]) == 0
    assert json.loads(capsys.readouterr().out)["stored"] == 4


def test_a_file_that_is_not_a_spool_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    path = tmp_path / "other.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE x (a)").connection.commit()
    code = main(["import", "readings", str(path), "--quiet", "--dry-run",
                 "--influx-url", "http://127.0.0.1:9", "--dead-letters", str(tmp_path / "d")])  # fmt: skip
    assert code == 2
    assert "not a gateway spool" in capsys.readouterr().err
