"""Vendor portal exports end to end against a real InfluxDB, from sample files in each format
(``tests/collector/importing/data``, written for these tests; the formats' sources are named
in ``docs/importing.md``).

- Huawei FusionSolar's inverter report carries the inverter's lifetime counter: imported as
  the device's real counter.
- SMA Sunny Portal gives mean power per 15 minutes and no counter: imported as a counter of
  its own, flagged, under ``gateway=<gw>~imported``, with its spans in ``imported_counter``.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.cli import main
from collector.devtools.services import Influxd
from collector.timeseries.influx import InfluxClient

DATA = Path(__file__).parent / "data"
FLEET = DATA / "fleet.yaml"
FUSION = DATA / "fusionsolar_inverter_report.csv"
SUNNY = DATA / "sunny_portal_pv_generation.csv"


def run(capsys: pytest.CaptureFixture[str], influx: InfluxClient, tmp: Path, *args: str) -> dict:  # type: ignore[type-arg]
    code = main(["import", "readings", "--quiet", "--format", "json", "--fleet", str(FLEET),
                 "--influx-url", influx.url, "--influx-db", influx.database,
                 "--dead-letters", str(tmp / "dead.jsonl"), *args])  # fmt: skip
    assert code == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def sunny_expectation() -> tuple[int, float]:
    """Periods with a value in the sample and their energy, read independently [Wh]."""
    periods, energy = 0, 0.0
    for line in SUNNY.read_text().splitlines():
        cells = [c.strip('"') for c in line.split(";")]
        if len(cells) == 5 and cells[0][:2].isdigit() and cells[4] not in ("-", ""):
            periods += 1
            energy += float(cells[4].replace(",", "")) * 0.25
    return periods, energy


def test_a_fusionsolar_report_is_imported_as_the_inverters_real_counter(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = run(capsys, influx, tmp_path, str(FUSION))
    assert summary["files"][0]["rows"] == 576
    assert summary["stored"] == 576 and summary["rejected"] == {}
    assert summary["imported_counters"] == []
    first = influx.query_records(
        "SELECT ac_energy_wh, ac_power_w, cabinet_temp_c, grid_frequency_hz FROM inverter "
        "WHERE device = 'INV-S1' AND gateway = 'GW-S1' ORDER BY time ASC LIMIT 1"
    )[0]
    # 00:00 local summer time is 22:00 UTC the day before; kWh became Wh
    assert first["time"] == int(datetime(2026, 6, 9, 22, tzinfo=UTC).timestamp() * 1000)
    assert first["ac_energy_wh"] == pytest.approx(12_345_670.0)
    assert first["cabinet_temp_c"] == 28.0 and first["grid_frequency_hz"] == 50.0
    noon = influx.query_records(
        "SELECT dc_voltage_v, dc_current_a, dc_power_w FROM dc WHERE device = 'INV-S2' "
        "AND mppt = '2' AND time = '2026-06-10T06:00:00Z'"
    )[0]  # 08:00 local
    assert noon["dc_power_w"] == pytest.approx(noon["dc_voltage_v"] * noon["dc_current_a"])
    again = run(capsys, influx, tmp_path, str(FUSION))
    assert again["stored"] == 0 and again["duplicates"] == 576


def test_an_unknown_inverter_name_is_refused_with_a_way_to_map_it(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    renamed = tmp_path / "report.csv"
    renamed.write_text(FUSION.read_text().replace("Dongle-2/INV-S2", "Dongle-2/Omvormer garage"))
    summary = run(capsys, influx, tmp_path, str(renamed))
    assert summary["rejected"] == {"unknown_device": 288}
    assert "--device-map" in summary["files"][0]["examples"][0]["detail"]
    mapped = run(capsys, influx, tmp_path, str(renamed), "--device-map",
                 "Omvormer garage=INV-S2")  # fmt: skip
    assert mapped["stored"] == 288 and mapped["duplicates"] == 288


def test_a_sunny_portal_download_becomes_a_flagged_imported_counter(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    periods, energy_wh = sunny_expectation()
    summary = run(capsys, influx, tmp_path, str(SUNNY), "--device-map", "4711=INV-S2")
    assert summary["rejected"] == {}
    assert (
        summary["stored"] == periods and summary["files"][0]["imported_counter_readings"] == periods
    )
    spans = summary["imported_counters"]
    # "-" at night: nothing recorded, so each day is a span of its own
    assert [s["device"] for s in spans] == ["INV-S2", "INV-S2"]
    assert sum(s["kwh"] for s in spans) == pytest.approx(energy_wh / 1000.0, abs=0.002)
    # never the real counter's series
    assert influx.query_records("SELECT * FROM inverter WHERE gateway = 'GW-S2'") == []
    rows = influx.query_records(
        "SELECT ac_energy_wh, ac_power_w, counter_origin FROM inverter "
        "WHERE gateway = 'GW-S2~imported' ORDER BY time"
    )
    assert {r["counter_origin"] for r in rows} == {"imported"}
    assert rows[-1]["ac_energy_wh"] == pytest.approx(energy_wh)
    assert all(b["ac_energy_wh"] >= a["ac_energy_wh"] for a, b in itertools.pairwise(rows))
    marks = influx.query_records("SELECT * FROM imported_counter ORDER BY time")
    assert len(marks) == 2 and {m["gateway"] for m in marks} == {"GW-S2"}
    # the first period with a value is labelled 05.15 AM: 05:00-05:15 local, from 03:00 UTC
    assert marks[0]["time"] == int(datetime(2026, 6, 10, 3, 0, tzinfo=UTC).timestamp() * 1000)
    again = run(capsys, influx, tmp_path, str(SUNNY), "--device-map", "4711=INV-S2")
    assert again["stored"] == 0 and again["rejected"] == {} and again["duplicates"] >= periods
    assert len(influx.query_records("SELECT * FROM inverter")) == len(rows)
    assert len(influx.query_records("SELECT * FROM imported_counter")) == 2


def test_two_downloads_in_turn_give_the_counter_of_one_download(
    influxd: Influxd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SUNNY.read_text().splitlines()
    head, body = text[:12], text[12:]
    day1, day2 = tmp_path / "day1.csv", tmp_path / "day2.csv"
    day1.write_text("\n".join(head + body[:96]) + "\n")
    day2.write_text("\n".join(head + body[96:]) + "\n")
    results = []
    for files in ([SUNNY], [day1, day2]):
        client = InfluxClient(influxd.url, f"test_{uuid.uuid4().hex[:12]}")
        client.create_database()
        try:
            for f in files:
                run(capsys, client, tmp_path, str(f), "--device-map", "4711=INV-S2")
            results.append(
                (
                    client.query_records("SELECT ac_energy_wh FROM inverter ORDER BY time"),
                    # the spans, but for the file each came from
                    client.query_records(
                        "SELECT end_ms, first_wh, last_wh, intervals FROM imported_counter"
                    ),
                )
            )
        finally:
            client.query(f'DROP DATABASE "{client.database}"', database="", epoch=None)
    assert results[0] == results[1]


def test_interval_energy_is_never_mixed_with_a_real_counter(
    influx: InfluxClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "real.csv"
    real.write_text(
        "ts,device_id,ac_energy_wh,ac_power_w\n2026-06-10T10:00:00Z,INV-S2,4000000,2500\n"
    )
    run(capsys, influx, tmp_path, str(real))
    summary = run(capsys, influx, tmp_path, str(SUNNY), "--device-map", "4711=INV-S2")
    # the two periods that touch the real reading (09:45-10:00 and 10:00-10:15 UTC)
    assert summary["rejected"] == {"real_counter_exists": 2}
    assert len(summary["imported_counters"]) == 3  # the gap splits the first day
    stored = influx.query_records("SELECT ac_energy_wh FROM inverter WHERE gateway = 'GW-S2'")
    assert [r["ac_energy_wh"] for r in stored] == [4_000_000.0]
