"""`zonnewijk demo` end to end, as `make demo DEMO_ARGS=...` runs it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bounded_demo_stores_readings_and_reports_them() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "demo", "--sites", "5", "--backfill-days", "1",
         "--duration", "20", "--interval", "2"],
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"stored (\d+) readings from (\d+) inverters", last)
    assert match, result.stdout[-2000:]
    readings, inverters = int(match[1]), int(match[2])
    assert inverters == 5
    # one day of 5-minute history per inverter (288 per day, more for the part of today), plus live
    assert readings >= 5 * 288
    table = re.findall(r"^(zw\d{3}-inv1)\s+([\d,]+)\s", result.stdout, flags=re.MULTILINE)
    assert len(table) == 5
    assert sum(int(n.replace(",", "")) for _, n in table) == readings
    assert "rejected:" not in result.stdout, result.stdout[-1500:]
    assert re.search(r"^portal: http://127\.0\.0\.1:\d+$", result.stdout, flags=re.MULTILINE)
    assert re.search(r"^  member:   \S+@\S+ / demo-\S+$", result.stdout, flags=re.MULTILINE)
    # seed 1: zw005 (commissioned 2024) is a DER (701) inverter; the first two SunSpec sites
    # have a SunSpec grid meter, read by their gateways and stored like the P1 meters
    assert "DER (SunSpec 701) inverters: zw005-inv1;" in result.stdout
    assert "SunSpec grid meters (203): zw003-meter, zw005-meter" in result.stdout
    meters = re.findall(r"^(zw00[35]-meter)\s+(\d+)\s", result.stdout, flags=re.MULTILINE)
    assert [m for m, _ in meters] == ["zw003-meter", "zw005-meter"]
    assert all(int(n) >= 1 for _, n in meters)
