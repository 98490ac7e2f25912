"""Imported energy in the settlement, against a real InfluxDB and a real ledger.

- A month of Sunny Portal interval energy is settled from its imported counter, exactly, and
  the inverter's real counter that follows is never read as its continuation (no jump billed).
- Readings of an issued month recovered from a gateway's spool later are settled as a
  correction in the next run; the issued month stays as it was.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from collector.cli import main
from collector.settlement.ledger import ledger_snapshot
from collector.store.testing import temporary_database
from collector.timeseries.influx import InfluxClient
from gateway_firmware.spool import Spool
from zonnewijk_wire import Reading

FLEET = Path(__file__).parent / "data" / "fleet.yaml"
AMS_MARCH = (datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC))


def sun_w(ts: datetime, peak_w: float) -> float:
    """A clear day's power in Zwolle, roughly: a sine from 06:00 to 18:00 UTC [W]."""
    h = ts.hour + ts.minute / 60.0
    return max(0.0, math.sin(math.pi * (h - 6.0) / 12.0)) * peak_w if 6 < h < 18 else 0.0


def sunny_portal_file(path: Path, start: datetime, end: datetime, peak_w: float) -> float:
    """A Sunny Portal download (format version 4) of 15-minute mean power; its energy [Wh]."""
    lines = ['sep=;', '"Version";"4";;;', '"Language";"en-US";;;', '"Time zone";"Europe/Amsterdam";;;',
             '"Level";"System";;;', '"System ID";"4711";;;', '"System name";"Dieze 2";;;',
             '"";"";;;', '"Time period";"PV generation [W]"']  # fmt: skip
    energy = 0.0
    t = start
    from zoneinfo import ZoneInfo

    ams = ZoneInfo("Europe/Amsterdam")
    while t < end:
        p = round(sun_w(t + timedelta(minutes=7.5), peak_w))
        energy += p * 0.25
        label = (t + timedelta(minutes=15)).astimezone(ams).strftime("%m/%d/%Y %I.%M %p")
        lines.append(f'"{label}";"{p:,}"')
        t += timedelta(minutes=15)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return energy


def real_readings(device: str, start: datetime, end: datetime, base_wh: float, peak_w: float,
                  step_min: int = 15) -> list[tuple[datetime, float, float]]:  # fmt: skip
    """(ts, counter, power) of an inverter's own counter every ``step_min``."""
    out = []
    counter = base_wh
    t = start
    while t <= end:
        p = sun_w(t, peak_w)
        out.append((t, round(counter, 3), round(p, 1)))
        counter += sun_w(t + timedelta(minutes=step_min / 2), peak_w) * step_min / 60.0
        t += timedelta(minutes=step_min)
    return out


def csv_file(path: Path, device: str, rows: list[tuple[datetime, float, float]]) -> None:
    text = ["ts,device_id,ac_energy_wh,ac_power_w"]
    text += [f"{t.isoformat()},{device},{e},{p}" for t, e, p in rows]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")


def contract(result: dict[str, Any], contract_id: str) -> dict[str, Any]:
    for member in result["members"]:
        for c in member["contracts"]:
            if c["contract_id"] == contract_id:
                return c  # type: ignore[no-any-return]
    raise AssertionError(contract_id)


def test_a_month_of_interval_energy_is_settled_from_its_imported_counter(
    influx: InfluxClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZONNEWIJK_DATA_DIR", str(tmp_path / "var"))
    servers = ["--influx-url", influx.url, "--influx-db", influx.database]
    imp = ["import", "readings", "--quiet", "--format", "json", "--fleet", str(FLEET), *servers]
    sunny = tmp_path / "march.csv"
    energy_wh = sunny_portal_file(sunny, *AMS_MARCH, peak_w=3000.0)
    assert main([*imp, str(sunny), "--device-map", "4711=INV-S2"]) == 0
    assert json.loads(capsys.readouterr().out)["rejected"] == {}
    # from April on, the inverter's own counter (a gateway installed), far above the imported one
    april = tmp_path / "april.csv"
    own = real_readings("INV-S2", AMS_MARCH[1] + timedelta(minutes=15),
                        datetime(2026, 4, 8, tzinfo=UTC), 7_000_000.0, 3000.0)  # fmt: skip
    csv_file(april, "INV-S2", own)
    s1 = tmp_path / "s1.csv"
    csv_file(s1, "INV-S1", real_readings("INV-S1", datetime(2026, 2, 20, tzinfo=UTC),
                                         datetime(2026, 4, 8, tzinfo=UTC), 1_000_000.0, 3000.0))  # fmt: skip
    assert main([*imp, str(april), str(s1)]) == 0
    capsys.readouterr()
    with temporary_database("sqlite") as engine:
        db = engine.url.render_as_string(hide_password=False)
        settle = ["settle", "--dry-run", "--format", "json", "--quiet", "--fleet", str(FLEET),
                  "--database-url", db, *servers]  # fmt: skip
        assert main([*settle, "--period", "2026-03"]) == 0
        march = contract(json.loads(capsys.readouterr().out), "C2")
        assert main([*settle, "--period", "2026-04"]) == 0
        april_c2 = contract(json.loads(capsys.readouterr().out), "C2")
    # March: the imported counter, to the Wh, nothing estimated, and flagged
    assert Decimal(march["measured_kwh"]) == pytest.approx(
        Decimal(energy_wh) / 1000, abs=Decimal("0.002")
    )
    assert Decimal(march["estimated_kwh"]) == 0
    kinds = {a["kind"] for a in march["anomalies"]}
    assert "imported" in kinds and "unknown_reset" not in kinds
    # April: measured is the real counter's own difference (the 15 night minutes between the
    # two counters estimated); the 7 MWh between the imported and the real counter is not billed
    own_wh = own[-1][1] - own[0][1]
    assert Decimal(april_c2["measured_kwh"]) == pytest.approx(
        Decimal(own_wh) / 1000, abs=Decimal("0.002")
    )
    assert Decimal(april_c2["measured_kwh"]) + Decimal(april_c2["estimated_kwh"]) < 1000


def test_readings_recovered_for_an_issued_month_are_settled_as_a_correction(
    influx: InfluxClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZONNEWIJK_DATA_DIR", str(tmp_path / "var"))
    servers = ["--influx-url", influx.url, "--influx-db", influx.database]
    readings = real_readings("INV-S1", datetime(2026, 2, 20, tzinfo=UTC),
                             datetime(2026, 5, 8, tzinfo=UTC), 1_000_000.0, 3200.0)  # fmt: skip
    # the gateway lost its uplink from 29 March to 3 April; its SD card held those readings
    lost = (datetime(2026, 3, 29, 10, tzinfo=UTC), datetime(2026, 4, 3, 10, tzinfo=UTC))
    online = [r for r in readings if not lost[0] < r[0] < lost[1]]
    recovered = [r for r in readings if lost[0] < r[0] < lost[1]]
    first = tmp_path / "gateway.csv"
    csv_file(first, "INV-S1", online)
    s2 = tmp_path / "s2.csv"
    csv_file(s2, "INV-S2", real_readings("INV-S2", datetime(2026, 2, 20, tzinfo=UTC),
                                         datetime(2026, 5, 8, tzinfo=UTC), 2_000_000.0, 1500.0))  # fmt: skip
    imp = ["import", "readings", "--quiet", "--format", "json", "--fleet", str(FLEET), *servers]
    assert main([*imp, str(first), str(s2)]) == 0
    capsys.readouterr()
    with temporary_database("sqlite") as engine:
        db = engine.url.render_as_string(hide_password=False)
        common = ["--fleet", str(FLEET), "--database-url", db, *servers]
        assert main(["settle", "--period", "2026-03", "--format", "json", "--quiet", *common]) == 0
        issued = contract(json.loads(capsys.readouterr().out), "C1")
        with Session(engine) as session:
            before = ledger_snapshot(session)
        spool_path = tmp_path / "spool.sqlite3"
        with Spool(spool_path) as spool:
            spool.append(
                [
                    Reading(device_id="INV-S1", ts=t, ac_energy_wh=e, ac_power_w=p)
                    for t, e, p in recovered
                ]
            )
        assert main([*imp, str(spool_path), "--database-url", db]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["stored"] == len(recovered)
        assert summary["issued_months"] == ["2026-03"]
        assert any("correction" in note for note in summary["notes"])
        # what March really was, with every reading
        assert main(["settle", "--period", "2026-03", "--dry-run", "--format", "json", "--quiet",
                     "--correct-months", "0", *common]) == 0  # fmt: skip
        capsys.readouterr()
        assert main(["settle", "--period", "2026-04", "--format", "json", "--quiet",
                     "--correct-months", "1", *common]) == 0  # fmt: skip
        april = contract(json.loads(capsys.readouterr().out), "C1")
        with Session(engine) as session:
            after = ledger_snapshot(session)
    (correction,) = april["corrections"]
    assert correction["corrects"] == "2026-03"
    delta = Decimal(correction["delta_kwh"])
    assert delta != 0
    # the issued month's rows are as they were; April's run only added rows
    for table, rows in before.items():
        assert set(rows) <= set(after[table]), table
    # March's energy now: what was billed plus the correction equals the readings' truth
    truth_wh = next(e for t, e, _ in readings if t >= AMS_MARCH[1]) - next(
        e for t, e, _ in readings if t >= AMS_MARCH[0]
    )
    billed = Decimal(issued["parts"][0]["kwh"]) + delta
    assert billed == pytest.approx(Decimal(truth_wh) / 1000, abs=Decimal("0.002"))
