"""One Modbus bus: a TCP connection to host:port, or one RS-485 serial port.

A bus serialises requests (one at a time, whatever thread asks), keeps a configurable gap
between requests, retries a busy device after a pause, and reconnects with exponential backoff
without hammering a device that is away. Several devices (unit ids) can share one bus.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from gateway_firmware.modbus.errors import (
    ConnectionFailed,
    DeviceBusy,
    DeviceException,
    IllegalAddress,
    NoResponse,
)

log = logging.getLogger(__name__)

#: Largest register count one read request may ask for (Modbus application protocol).
MAX_REGISTERS_PER_READ = 125

ILLEGAL_ADDRESS_CODE = 2
DEVICE_BUSY_CODE = 6
#: Exception 10/11: a TCP gateway has no path to / no answer from that unit id.
GATEWAY_NO_DEVICE_CODES = frozenset({10, 11})


class RegisterKind(StrEnum):
    """Which register table a value lives in."""

    HOLDING = "holding"  # function code 3
    INPUT = "input"  # function code 4


@dataclass(frozen=True, kw_only=True)
class BusSettings:
    """How politely to use a bus.

    Parameters
    ----------
    timeout_s
        How long to wait for one answer [s].
    gap_s
        Minimum pause between the end of one request and the start of the next [s].
    retries
        Extra attempts pymodbus makes when an answer does not arrive [count].
    busy_retries
        Extra attempts after a "device busy" (exception 6) answer [count].
    busy_backoff_s
        Pause before retrying a busy device [s].
    reconnect_backoff_s
        First pause after a failed connect; doubles per failure [s].
    reconnect_backoff_max_s
        Longest pause between connect attempts [s].
    """

    timeout_s: float = 3.0
    gap_s: float = 0.05
    retries: int = 1
    busy_retries: int = 2
    busy_backoff_s: float = 1.0
    reconnect_backoff_s: float = 1.0
    reconnect_backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("timeout_s", "gap_s", "busy_backoff_s", "reconnect_backoff_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"BusSettings.{name} must be >= 0, got {getattr(self, name)}")
        if self.timeout_s == 0:
            raise ValueError("BusSettings.timeout_s must be > 0")
        if self.retries < 0 or self.busy_retries < 0:
            raise ValueError("BusSettings retries must be >= 0")
        if self.reconnect_backoff_max_s < self.reconnect_backoff_s:
            raise ValueError("reconnect_backoff_max_s must be >= reconnect_backoff_s")


class ModbusBus:
    """A Modbus bus shared by the devices on it; use :meth:`tcp` or :meth:`serial` to make one.

    :meth:`read_registers` is the only I/O method; it is thread-safe and sends one request at a
    time. Counters of requests, errors and reconnects are in :attr:`stats`.
    """

    def __init__(
        self,
        client: ModbusTcpClient | ModbusSerialClient,
        *,
        description: str,
        settings: BusSettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.description = description
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_request_end = -1e18
        self._next_connect_at = -1e18
        self._backoff_s = settings.reconnect_backoff_s
        self.stats: Counter[str] = Counter()

    @classmethod
    def tcp(cls, host: str, port: int = 502, *, settings: BusSettings | None = None) -> Self:
        """A Modbus TCP bus to ``host:port`` (a TCP gateway may serve several unit ids)."""
        if not host:
            raise ValueError("host must not be empty")
        if not 0 < port < 65536:
            raise ValueError(f"port must be 1..65535, got {port}")
        settings = settings or BusSettings()
        client = ModbusTcpClient(
            host,
            port=port,
            timeout=settings.timeout_s,
            retries=settings.retries,
            reconnect_delay=0,
        )
        return cls(client, description=f"{host}:{port}", settings=settings)

    @classmethod
    def serial(
        cls,
        port: str,
        *,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        bytesize: int = 8,
        settings: BusSettings | None = None,
    ) -> Self:
        """A Modbus RTU bus on a serial port such as ``/dev/ttyUSB0`` [baud]."""
        if parity not in ("N", "E", "O"):
            raise ValueError(f"parity must be N, E or O, got {parity!r}")
        settings = settings or BusSettings()
        client = ModbusSerialClient(
            port,
            baudrate=baudrate,
            parity=parity,
            stopbits=stopbits,
            bytesize=bytesize,
            timeout=settings.timeout_s,
            retries=settings.retries,
            reconnect_delay=0,
        )
        return cls(client, description=f"serial {port} ({baudrate} baud)", settings=settings)

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._close_client()

    def _close_client(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ensure_connected(self, unit: int) -> None:
        if self._client.connected:
            return
        now = self._clock()
        if now < self._next_connect_at:
            raise ConnectionFailed(
                f"{self.description} unit {unit}: not connected, next attempt in "
                f"{self._next_connect_at - now:.1f} s (backing off after failures)"
            )
        self.stats["connects"] += 1
        if self._client.connect():
            self._backoff_s = self.settings.reconnect_backoff_s
            self._next_connect_at = -1e18
            return
        self.stats["connect_failures"] += 1
        self._next_connect_at = now + self._backoff_s
        wait_s = self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, self.settings.reconnect_backoff_max_s)
        raise ConnectionFailed(
            f"cannot connect to {self.description} (unit {unit}): connection refused or "
            f"unreachable; retrying in {wait_s:.1f} s"
        )

    # --- reading ------------------------------------------------------------------------------

    def read_registers(
        self, kind: RegisterKind, address: int, count: int, *, unit: int
    ) -> list[int]:
        """Read ``count`` registers starting at protocol address ``address`` (0-based).

        Raises
        ------
        IllegalAddress
            The device answered exception 2 (address range not served).
        DeviceBusy
            The device stayed busy (exception 6) through all retries.
        DeviceException
            Any other exception response.
        NoResponse
            No (valid) answer within the timeout.
        ConnectionFailed
            The bus could not be opened (also while backing off after failures).
        """
        if not 0 <= address <= 0xFFFF or not 1 <= count <= MAX_REGISTERS_PER_READ:
            raise ValueError(f"bad read: address {address}, count {count} (1..125)")
        if address + count > 0x10000:
            raise ValueError(f"read of {count} at {address} runs past register 65535")
        if not 0 <= unit <= 247:
            raise ValueError(f"unit id must be 0..247, got {unit}")
        with self._lock:
            attempt = 0
            while True:
                try:
                    return self._read_once(kind, address, count, unit)
                except DeviceBusy:
                    if attempt >= self.settings.busy_retries:
                        raise
                    attempt += 1
                    self.stats["busy_retries"] += 1
                    self._sleep(self.settings.busy_backoff_s * attempt)

    def _read_once(self, kind: RegisterKind, address: int, count: int, unit: int) -> list[int]:
        self._ensure_connected(unit)
        wait = self._last_request_end + self.settings.gap_s - self._clock()
        if wait > 0:
            self._sleep(wait)
        self.stats["requests"] += 1
        call = (
            self._client.read_holding_registers
            if kind is RegisterKind.HOLDING
            else self._client.read_input_registers
        )
        where = f"{self.description} unit {unit}"
        try:
            response: Any = call(address, count=count, device_id=unit)
        except ConnectionException as exc:
            self.stats["connection_lost"] += 1
            self._close_client()
            raise ConnectionFailed(f"{where}: connection lost ({exc})") from exc
        except ModbusIOException as exc:
            self.stats["no_response"] += 1
            self._close_client()  # resynchronise framing on the next request
            raise NoResponse(
                f"{where}: no answer to reading {count} {kind} registers at {address} within "
                f"{self.settings.timeout_s} s (wrong unit id, or device asleep?)"
            ) from exc
        except ModbusException as exc:
            self.stats["errors"] += 1
            self._close_client()
            raise NoResponse(f"{where}: {exc}") from exc
        finally:
            self._last_request_end = self._clock()
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            self.stats[f"exception_{code}"] += 1
            detail = f"{where}: exception {code} reading {count} {kind} registers at {address}"
            if code == ILLEGAL_ADDRESS_CODE:
                raise IllegalAddress(
                    detail + " (illegal address)",
                    code=code,
                    address=address,
                    count=count,
                    unit=unit,
                )
            if code in GATEWAY_NO_DEVICE_CODES:
                raise NoResponse(
                    f"{where}: the Modbus gateway reports no device answering at unit {unit} "
                    f"(exception {code})"
                )
            if code == DEVICE_BUSY_CODE:
                raise DeviceBusy(
                    detail + " (device busy)", code=code, address=address, count=count, unit=unit
                )
            raise DeviceException(detail, code=code, address=address, count=count, unit=unit)
        registers = list(response.registers)
        if len(registers) != count:
            self.stats["short_answers"] += 1
            raise NoResponse(
                f"{where}: asked for {count} registers at {address}, got {len(registers)}"
            )
        return registers
