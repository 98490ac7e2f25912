"""``zonnewijk faults`` end to end: run-once, list, ack against InfluxDB and a SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.cli import main
from collector.settings import get_settings
from collector.timeseries.influx import InfluxClient

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(
    influx: InfluxClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InfluxClient]:
    monkeypatch.setenv("ZONNEWIJK_INFLUX_URL", influx.url)
    monkeypatch.setenv("ZONNEWIJK_INFLUX_DB", influx.database)
    monkeypatch.setenv("ZONNEWIJK_DATABASE_URL", f"sqlite:///{tmp_path}/store.sqlite3")
    get_settings.cache_clear()
    yield influx
    get_settings.cache_clear()


def test_run_once_list_and_ack(env: InfluxClient, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = str(REPO / "config" / "fleet.small.yaml")
    now = "2026-06-10T12:00:00+00:00"
    # nothing has arrived from any gateway: every installed inverter's gateway is offline
    assert main(["faults", "run-once", "--fleet", fleet, "--now", now]) == 0
    out = capsys.readouterr().out
    assert "faults-recent 2026-06-10T11:55" in out and "alert changes" in out
    assert main(["faults", "run-once", "--fleet", fleet, "--now", now]) == 0
    assert "already run by another instance" in capsys.readouterr().out

    assert main(["faults", "list", "--json", "--status", "open"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    assert alerts and {a["kind"] for a in alerts} == {"gateway_offline"}
    assert "inv-s001-a" not in {a["device_id"] for a in alerts}  # removed before June

    assert main(["faults", "ack", str(alerts[0]["id"]), "--by", "Anna", "--note", "on it"]) == 0
    assert "acknowledged by Anna" in capsys.readouterr().out
    assert main(["faults", "ack", "424242", "--by", "Anna"]) == 1

    # every change is in InfluxDB for Grafana too
    rows = env.query_records('SELECT count("alert_id") AS n FROM "alert_events"')
    assert rows and rows[0]["n"] == len(alerts)
