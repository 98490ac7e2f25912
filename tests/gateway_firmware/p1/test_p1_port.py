"""The P1 port and the meter's status line over a socat pty pair: telegrams, CRC errors,
a pulled cable."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from collector.devtools.pty import PtyPair
from gateway_firmware.p1.port import P1Port, TelegramFramer
from gateway_firmware.p1.source import P1Source
from tests.gateway_firmware.p1 import published_telegrams as published
from tests.gateway_firmware.p1.conftest import Meter


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_framer_cuts_a_stream_anywhere() -> None:
    stream = (
        b"\x00garbage" + published.TELEGRAM_V4_2.encode()
    ) * 2 + published.TELEGRAM_V5.encode()
    framer, found = TelegramFramer(), []
    for i in range(0, len(stream), 7):  # seven bytes at a time
        found += framer.feed(stream[i : i + 7])
    assert found == [published.TELEGRAM_V4_2] * 2 + [published.TELEGRAM_V5]
    assert framer.discarded_chars == 2 * len("\x00garbage") and framer.pending == 0


def test_status_says_what_is_wrong(
    tmp_path: Path, pty_pair: PtyPair, meter: Callable[..., Meter]
) -> None:
    damaged = published.TELEGRAM_V5.replace("(000004.426*kWh)", "(000004.427*kWh)")
    state = {"bad": False}
    meter(lambda i: (damaged if state["bad"] else published.TELEGRAM_V5).encode(), period_s=0.05)
    source = P1Source("p1", P1Port(pty_pair.gateway_end), state_dir=tmp_path, interval_s=60)
    source.start()
    try:
        wait_for(lambda: bool(source.collect()) or source.aggregator.stats.telegrams >= 3)
        assert source.status() == "ok, DSMR 5.0"
        state["bad"] = True
        wait_for(lambda: (source.collect(), source.errors["crc_mismatch"] >= 3)[1])
        assert "crc_mismatch in" in source.status()  # some of the recent ones were bad
        wait_for(lambda: (source.collect(), source.status().startswith("crc_mismatch:"))[1], 20)
        pty_pair.unplug()  # the USB cable is pulled
        wait_for(lambda: source.port.state.reason == "no_data")
        assert source.status().startswith("no_data: ")
        assert "P1 cable" in source.status() or "went away" in source.status()
    finally:
        source.close()
    assert (tmp_path / "p1-id-salt").stat().st_mode & 0o777 == 0o600
