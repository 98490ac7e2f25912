"""A P1 line for tests: a socat pseudo-terminal pair, and a meter writing telegrams into it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial  # pyserial
from dsmr_parser.parsers import TelegramParser

from collector.devtools.pty import PtyPair


def with_crc(text: str) -> str:
    """A telegram with its CRC16 (CRC-16/ARC over '/' ... '!') computed for its text."""
    body = text[: text.index("!") + 1]
    return f"{body}{TelegramParser.crc16(body):04X}\r\n"


class Meter:
    """Writes telegrams into the meter's end, one per ``period_s``, from a thread.

    ``telegrams(i)`` gives the i-th telegram's bytes (None: write nothing this period).
    """

    def __init__(
        self, device: str, telegrams: Callable[[int], bytes | None], period_s: float = 1.0
    ) -> None:
        self.port = serial.Serial(device, baudrate=115200, timeout=1)
        self.telegrams = telegrams
        self.period_s = period_s
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            data = self.telegrams(i)
            if data:
                try:
                    self.port.write(data)
                    self.port.flush()
                except (OSError, serial.SerialException):
                    return  # unplugged
                self.written += 1
            i += 1
            next_at += self.period_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(OSError, serial.SerialException):
            self.port.close()


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[PtyPair]:
    """socat's two linked pseudo-terminals: the meter's end and the gateway's (the cable)."""
    with PtyPair(tmp_path) as pair:
        yield pair


@pytest.fixture
def meter(pty_pair: PtyPair) -> Iterator[Callable[..., Meter]]:
    """``meter(telegrams, period_s)`` starts a meter on the pty pair; stopped afterwards."""
    started: list[Meter] = []

    def start(telegrams: Callable[[int], bytes | None], period_s: float = 1.0) -> Meter:
        m = Meter(pty_pair.device_end, telegrams, period_s)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()
