"""``zonnewijk-gateway p1 --serial DEVICE --once`` over a socat pty pair, with published
telegrams (tests/gateway_firmware/p1/published_telegrams.py) written at DSMR 5 speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from collector.devtools.pty import PtyPair
from tests.gateway_firmware.p1 import published_telegrams as published
from tests.gateway_firmware.p1.conftest import Meter

REPO = Path(__file__).resolve().parents[3]


def p1(*args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway_firmware.cli", "p1", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def seven_e1(text: str) -> bytes:
    """The telegram as a DSMR 4 meter sends it (7E1): the even-parity bit as the eighth."""
    return bytes(c | (0x80 if bin(c).count("1") % 2 else 0) for c in text.encode("ascii"))


def test_once_prints_one_telegram_with_wire_names_in_wh(
    pty_pair: PtyPair, meter: Callable[..., Meter]
) -> None:
    meter(lambda i: published.TELEGRAM_V5.encode())
    result = p1("--serial", pty_pair.gateway_end, "--once", "--timeout", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    got = json.loads(lines[0])
    assert got["source"] == "p1" and got["protocol"] == "DSMR 5.0"
    assert (got["interval_s"], got["samples"]) == (0, 1)
    assert got["import_energy_t1_wh"] == 4426.0 and got["import_energy_wh"] == 6825.0
    assert got["export_energy_wh"] == 2444.0 and got["tariff"] == 2
    assert got["import_power_w"] == 244.0
    assert [p["voltage_v"] for p in got["phases"]] == [230.0, 230.0, 229.0]
    assert "gas" not in got  # only with --gas
    assert "4B384547303034303436333935353037" not in result.stdout  # the id never printed


def test_a_dsmr_4_meter_at_7e1_and_the_gas_meter(
    pty_pair: PtyPair, meter: Callable[..., Meter]
) -> None:
    meter(lambda i: seven_e1(published.TELEGRAM_V4_2), period_s=0.5)
    result = p1("--serial", pty_pair.gateway_end, "--once", "--gas", "--timeout", "10")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["protocol"] == "DSMR 4.2" and got["import_energy_wh"] == 3_016_829.0
    assert got["gas"] == {"ts": "2016-11-29T19:00:00.000Z", "gas_m3": 981.443}


def test_a_crc_error_is_one_line(pty_pair: PtyPair, meter: Callable[..., Meter]) -> None:
    damaged = published.TELEGRAM_V5.replace("(000004.426*kWh)", "(000004.427*kWh)")
    meter(lambda i: damaged.encode())
    result = p1("--serial", pty_pair.gateway_end, "--once", "--timeout", "10")
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: crc mismatch: the telegram says CRC ")
    assert line.endswith("a transmission error")


def test_an_unknown_version_is_one_line(pty_pair: PtyPair, meter: Callable[..., Meter]) -> None:
    from tests.gateway_firmware.p1.conftest import with_crc

    v6 = with_crc(published.TELEGRAM_V5.replace("1-3:0.2.8(50)", "1-3:0.2.8(60)"))
    meter(lambda i: v6.encode())
    result = p1("--serial", pty_pair.gateway_end, "--once", "--timeout", "10")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: unknown version: P1 version line 1-3:0.2.8(60): this gateway decodes "
        "DSMR 2.2-5 and eMUCS"
    )


def test_no_data_and_garbage(pty_pair: PtyPair, meter: Callable[..., Meter]) -> None:
    silent = p1("--serial", pty_pair.gateway_end, "--once", "--timeout", "1.5")
    assert silent.returncode == 1
    assert silent.stderr.startswith(f"error: no data: nothing on {pty_pair.gateway_end} in 1.5 s")
    meter(lambda i: bytes(range(1, 255)) * 2, period_s=0.2)  # what a wrong baud rate looks like
    noise = p1("--serial", pty_pair.gateway_end, "--once", "--timeout", "1.5")
    assert noise.returncode == 1
    assert noise.stderr.startswith("error: garbage: bytes on")
    assert noise.stderr.count("\n") == 1
    missing = p1("--serial", "/dev/does-not-exist", "--once", "--timeout", "1")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no data: cannot open /dev/does-not-exist")
