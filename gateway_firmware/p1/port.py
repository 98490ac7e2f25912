"""The P1 port: bytes from the serial line, cut into telegrams (``/`` ... ``!CRC`` CR LF).

Serial settings by DSMR version (P1 Companion Standard): DSMR 5 sends at 115200 baud 8N1,
DSMR 4 at 115200 7E1, DSMR 2.2/3.0 at 9600 7E1. A 7E1 character and an 8N1 character are
both ten bits on the line, and telegrams are ASCII, so the port opens 8N1 and clears the
eighth bit of every byte (the parity bit of a 7E1 meter): one setting reads DSMR 4 and 5.
With ``dsmr: auto`` the baud rate alternates between 115200 and 9600 while bytes arrive but
no telegram does. The CRC, not the parity bit, protects a telegram.

:class:`TelegramFramer` is the pure part (bytes in, telegrams out); :class:`P1Port` reads the
device in a thread and hands ``(received_at, telegram)`` to the gateway's main loop, with a
:class:`PortState` that says what is wrong when nothing comes (no device, no data, garbage).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = [
    "BAUD_BY_VERSION",
    "P1Port",
    "PortState",
    "SerialLine",
    "TelegramFramer",
    "open_serial",
]

log = logging.getLogger(__name__)

#: Baud rate of each DSMR version; ``auto`` tries 115200 first.
BAUD_BY_VERSION = {"5": 115200, "4": 115200, "2.2": 9600}
AUTO_BAUDS = (115200, 9600)
#: Longest a telegram may be before the buffer is taken for garbage [characters].
MAX_TELEGRAM_CHARS = 8192
#: Silence after which the port reports no data (DSMR 4 sends every 10 s) [s].
NO_DATA_AFTER_S = 25.0
#: Bytes without a telegram for this long are garbage (and switch the baud rate on auto) [s].
GARBAGE_AFTER_S = 25.0
#: Wait before opening a device again after it failed or disappeared [s].
REOPEN_AFTER_S = 5.0

_TELEGRAM = re.compile(r"/[^/!]{1,8000}![0-9A-Fa-f]{0,4}\r?\n")
_CLEAR_BIT_8 = bytes(b & 0x7F for b in range(256))


class SerialLine(Protocol):
    """What the port needs of a serial device (pyserial's ``Serial``)."""

    def read(self, size: int = 1) -> bytes: ...

    @property
    def in_waiting(self) -> int: ...

    def close(self) -> None: ...


def open_serial(device: str, baudrate: int, *, dsmr: str = "auto", timeout_s: float = 0.5) -> Any:
    """Open ``device`` for a P1 meter: 8N1 (reads 7E1 meters too, see above), or 7E1 when
    ``dsmr`` is ``4`` or ``2.2`` as the standard says."""
    import serial  # pyserial (with pymodbus[serial])

    seven = dsmr in ("4", "2.2")
    return serial.Serial(
        device,
        baudrate=baudrate,
        bytesize=serial.SEVENBITS if seven else serial.EIGHTBITS,
        parity=serial.PARITY_EVEN if seven else serial.PARITY_NONE,
        stopbits=serial.STOPBITS_ONE,
        timeout=timeout_s,
        xonxoff=False,
        rtscts=False,
    )


class TelegramFramer:
    """Cuts a byte stream into telegrams; counts what was thrown away."""

    def __init__(self) -> None:
        self._buffer = ""
        self.discarded_chars = 0

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the complete telegrams found, oldest first."""
        self._buffer += data.translate(_CLEAR_BIT_8).decode("ascii")
        found: list[str] = []
        while True:
            match = _TELEGRAM.search(self._buffer)
            if match is None:
                break
            self.discarded_chars += match.start()
            found.append(match.group(0))
            self._buffer = self._buffer[match.end() :]
        start = self._buffer.rfind("/")
        if start > 0 and len(self._buffer) - start < MAX_TELEGRAM_CHARS:
            self.discarded_chars += start  # nothing before the last start can complete
            self._buffer = self._buffer[start:]
        if len(self._buffer) > MAX_TELEGRAM_CHARS or (start < 0 and self._buffer):
            self.discarded_chars += len(self._buffer)
            self._buffer = ""
        return found

    @property
    def pending(self) -> int:
        return len(self._buffer)


@dataclass(frozen=True)
class PortState:
    """What the port is doing: ``ok``, or a reason (``no_data``, ``garbage``) with detail."""

    reason: str
    detail: str
    since: float


class P1Port:
    """Reads a P1 serial device in a background thread.

    Parameters
    ----------
    device
        The serial device (``/dev/ttyUSB0``, or one end of a socat pty pair in tests).
    dsmr
        ``auto``, ``5``, ``4`` or ``2.2`` (serial settings, above).
    baudrate
        Overrides the version's baud rate (and stops ``auto`` from switching).
    opener
        Opens the device: ``opener(device, baudrate)`` (default :func:`open_serial`).
    """

    def __init__(
        self,
        device: str,
        *,
        dsmr: str = "auto",
        baudrate: int | None = None,
        opener: Callable[[str, int], SerialLine] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.dsmr = dsmr
        self._bauds = (
            (baudrate,)
            if baudrate is not None
            else AUTO_BAUDS
            if dsmr == "auto"
            else (BAUD_BY_VERSION[dsmr],)
        )
        self._baud_index = 0
        self._opener = opener or (lambda dev, baud: open_serial(dev, baud, dsmr=dsmr))
        self._monotonic = monotonic
        self._queue: queue.SimpleQueue[tuple[datetime, str]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._state = PortState("no_data", f"{device} not opened yet", monotonic())
        self.framer = TelegramFramer()
        self.bytes_read = 0
        self.telegrams_framed = 0

    @property
    def baudrate(self) -> int:
        return self._bauds[self._baud_index]

    @property
    def state(self) -> PortState:
        with self._lock:
            return self._state

    def _set_state(self, reason: str, detail: str) -> None:
        with self._lock:
            if self._state.reason != reason or self._state.detail != detail:
                if reason != "ok":
                    log.warning("P1 %s: %s: %s", self.device, reason, detail)
                elif self._state.reason != "ok":
                    log.info("P1 %s: telegrams arrive (%d baud)", self.device, self.baudrate)
                self._state = PortState(reason, detail, self._monotonic())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="p1-port", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def drain(self) -> list[tuple[datetime, str]]:
        """The telegrams framed since the last call, with their reception time [UTC]."""
        out: list[tuple[datetime, str]] = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    # --- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                line = self._opener(self.device, self.baudrate)
            except Exception as exc:  # no such device, permission, unplugged
                self._set_state(
                    "no_data",
                    f"cannot open {self.device}: {exc} - is the P1 cable plugged in?",
                )
                self._stop.wait(REOPEN_AFTER_S)
                continue
            try:
                self._read(line)
            except Exception as exc:  # the USB cable was pulled while reading
                self._set_state("no_data", f"{self.device} went away: {exc}")
                self._stop.wait(REOPEN_AFTER_S)
            finally:
                with contextlib.suppress(Exception):  # already gone
                    line.close()

    def _read(self, line: SerialLine) -> None:
        opened = last_byte = last_telegram = self._monotonic()
        self.framer = TelegramFramer()
        while not self._stop.is_set():
            data = line.read(max(1, min(line.in_waiting, 4096)))
            now = self._monotonic()
            if data:
                self.bytes_read += len(data)
                last_byte = now
                telegrams = self.framer.feed(data)
                if telegrams:
                    received_at = datetime.now(UTC)
                    for telegram in telegrams:
                        self._queue.put((received_at, telegram))
                    self.telegrams_framed += len(telegrams)
                    last_telegram = now
                    self._set_state("ok", f"{self.baudrate} baud")
            if now - last_byte > NO_DATA_AFTER_S:
                self._set_state(
                    "no_data",
                    f"nothing on {self.device} for {now - last_byte:.0f} s: cable unplugged, "
                    "or the meter's P1 port is off",
                )
            elif now - max(last_telegram, opened) > GARBAGE_AFTER_S:
                self._set_state(
                    "garbage",
                    f"bytes on {self.device} at {self.baudrate} baud but no telegram for "
                    f"{now - max(last_telegram, opened):.0f} s: wrong baud rate or a bad cable",
                )
                if len(self._bauds) > 1:
                    self._baud_index = (self._baud_index + 1) % len(self._bauds)
                    log.info("P1 %s: trying %d baud", self.device, self.baudrate)
                    return  # reopened at the other rate
