"""``zonnewijk import readings`` against a real InfluxDB: the generic CSV and a gateway spool.

The collector's own stages decide (same reasons as a live gateway's message), a second import
stores nothing new (a point is measurement + tags + time), a malformed row is reported with
its line and the good rows are stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.cli import main
from collector.timeseries.influx import InfluxClient

T0 = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def count_points(influx: InfluxClient, measurement: str = "inverter", field: str = "state") -> int:
    rows = influx.query_records(f'SELECT count("{field}") FROM "{measurement}"')
    return int(rows[0]["count"]) if rows else 0


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["import", "readings", "--quiet", "--format", "json", *args]) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # type: ignore[no-any-return]


def influx_args(influx: InfluxClient, tmp_path: Path) -> list[str]:
    return [
        "--influx-url",
        influx.url,
        "--influx-db",
        influx.database,
        "--dead-letters",
        str(tmp_path / "dead.jsonl"),
    ]


def write_csv(path: Path, devices: int, steps: int) -> int:
    """A valid file: ``devices`` inverters every 15 minutes, counters in kWh; rows written."""
    lines = ["ts;device_id;gateway_id;ac_power_w;ac_energy_kwh;dc1_voltage_v;dc1_current_a"]
    for d in range(devices):
        for k in range(steps):
            ts = (T0 + timedelta(minutes=15 * k)).astimezone(UTC).isoformat()
            lines.append(f"{ts};INV-{d};GW-{d % 2};{1000 + k};{5000 + 0.25 * k:.3f};350.5;3.1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return devices * steps


def test_a_file_imported_twice_stores_each_reading_once(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "readings.csv"
    rows = write_csv(path, devices=3, steps=40)
    first = run(capsys, str(path), *influx_args(influx, tmp_path))
    assert first["stored"] == rows and first["duplicates"] == 0 and first["rejected"] == {}
    assert count_points(influx) == rows
    assert count_points(influx, "dc", "dc_voltage_v") == rows
    # the values as the collector stores them: W and Wh, gateway and device tags
    got = influx.query_records(
        "SELECT ac_energy_wh, ac_power_w FROM inverter WHERE device = 'INV-2' AND gateway = 'GW-0'"
        " ORDER BY time DESC LIMIT 1"
    )
    assert got[0]["ac_energy_wh"] == pytest.approx(5000_000 + 250 * 39)
    assert got[0]["ac_power_w"] == 1039.0
    second = run(capsys, str(path), *influx_args(influx, tmp_path))
    assert second["stored"] == 0 and second["duplicates"] == rows
    assert count_points(influx) == rows


def test_a_malformed_row_is_reported_with_its_line_and_the_good_rows_are_stored(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "Tijd,Omvormer,Vermogen (W),Teller (kWh)\n"
        "01-03-2026 12:00,INV-A,1200,1000.000\n"
        "01-03-2026 12:05,INV-A,1300,1000.105\n"
        "01-03-2026 12:10,INV-A,abc,1000.210\n"  # line 4: not a number
        "01-03-2026 12:15,INV-A,1250\n"  # line 5: a cell missing
        "01-03-2026 12:20,INV-A,1250,999.0\n"  # line 6: the counter fell
        "29-03-2026 02:30,INV-A,0,1001.0\n"  # line 7: a time the clock skipped
        "01-03-2026 12:25,INV-A,1240,1000.400\n",
        encoding="utf-8",
    )
    summary = run(
        capsys,
        str(path),
        "--column", "ts=Tijd", "--column", "device_id=Omvormer",
        "--column", "ac_power_w=Vermogen (W)", "--column", "ac_energy_kwh=Teller (kWh)",
        "--time-format", "%d-%m-%Y %H:%M", "--timezone", "Europe/Amsterdam",
        "--gateway", "GW-9",
        *influx_args(influx, tmp_path),
    )  # fmt: skip
    assert summary["stored"] == 3
    assert summary["rejected"] == {
        "counter_backwards": 1,
        "invalid_ac_power_w": 1,
        "invalid_ts": 1,
        "malformed_row": 1,
    }
    (file_summary,) = summary["files"]  # type: ignore[misc]
    lines = {e["line"]: e["reason"] for e in file_summary["examples"]}
    assert lines == {4: "invalid_ac_power_w", 5: "malformed_row", 6: "counter_backwards",
                     7: "invalid_ts"}  # fmt: skip
    assert count_points(influx) == 3
    # local time in Amsterdam (winter, +01:00) stored as UTC
    first = influx.query_records("SELECT ac_power_w FROM inverter ORDER BY time ASC LIMIT 1")
    assert first[0]["time"] == int(datetime(2026, 3, 1, 11, 0, tzinfo=UTC).timestamp() * 1000)
    # the dead letters are the collector's envelopes, naming the line
    letters = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert {letter["reason"] for letter in letters} == set(summary["rejected"])  # type: ignore[arg-type]
    assert all(letter["topic"] == f"import {path}" for letter in letters)
    assert next(x for x in letters if x["reading_index"] == 4)["original"]["Vermogen (W)"] == "abc"


def test_a_dry_run_writes_nothing_but_counts_what_would_be_stored(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "readings.csv"
    rows = write_csv(path, devices=2, steps=10)
    summary = run(capsys, str(path), "--dry-run", *influx_args(influx, tmp_path))
    assert summary["dry_run"] is True and summary["stored"] == rows
    assert count_points(influx) == 0


def test_a_reading_that_differs_from_the_stored_one_is_refused_not_overwritten(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "readings.csv"
    write_csv(path, devices=1, steps=4)
    run(capsys, str(path), *influx_args(influx, tmp_path))
    changed = path.read_text().replace(";1001;", ";999;")
    path.write_text(changed)
    summary = run(capsys, str(path), *influx_args(influx, tmp_path))
    assert summary["rejected"] == {"conflicts_with_stored": 1}
    assert summary["duplicates"] == 3
    kept = influx.query_records("SELECT ac_power_w FROM inverter WHERE ac_power_w = 1001")
    assert len(kept) == 1


def test_the_registry_decides_which_devices_and_ratings_are_accepted(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = Path(__file__).parent / "data" / "fleet.yaml"
    path = tmp_path / "readings.csv"
    path.write_text(
        "ts,device_id,ac_power_w\n"
        "2026-03-01T12:00:00Z,INV-S1,3000\n"  # the gateway comes from the fleet
        "2026-03-01T12:00:00Z,INV-S1b,3000\n"  # not registered
        "2026-03-01T12:05:00Z,INV-S1,9000\n",  # above the 3,680 W rating
        encoding="utf-8",
    )
    summary = run(capsys, str(path), "--fleet", str(fleet), *influx_args(influx, tmp_path))
    assert summary["stored"] == 1
    assert summary["rejected"] == {"no_gateway": 1, "power_above_rating": 1}
    assert influx.query_records("SELECT * FROM inverter")[0]["gateway"] == "GW-S1"
