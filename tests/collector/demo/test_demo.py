"""`zonnewijk demo` end to end, as `make demo DEMO_ARGS=...` runs it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bounded_demo_stores_readings_and_reports_them() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "demo", "--sites", "3", "--backfill-days", "1",
         "--duration", "12", "--interval", "2"],
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"stored (\d+) readings from (\d+) inverters", last)
    assert match, result.stdout[-2000:]
    readings, inverters = int(match[1]), int(match[2])
    assert inverters == 3
    # one day of 5-minute history per inverter (288 per day, more for the part of today), plus live
    assert readings >= 3 * 288
    table = re.findall(r"^(zw\d{3}-inv1)\s+([\d,]+)\s", result.stdout, flags=re.MULTILINE)
    assert len(table) == 3
    assert sum(int(n.replace(",", "")) for _, n in table) == readings
    assert "rejected:" not in result.stdout, result.stdout[-1500:]
    assert re.search(r"^portal: http://127\.0\.0\.1:\d+$", result.stdout, flags=re.MULTILINE)
    assert re.search(r"^  member:   \S+@\S+ / demo-\S+$", result.stdout, flags=re.MULTILINE)
