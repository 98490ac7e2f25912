"""A serial line between two programs on one machine: socat's linked pseudo-terminals.

One end plays the device (a smart meter's P1 port, an RS-485 inverter), the other is what
the gateway opens as its serial device. ``unplug()`` ends socat, so both ends disappear as a
pulled USB cable does. Used by tests, benches and the demo (socat is installed by ``make``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["PtyPair"]


class PtyPair:
    """Two linked pseudo-terminals, ``device_end`` and ``gateway_end`` (symlinks in a temp dir)."""

    def __init__(self, directory: Path | None = None) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed (make installs it; apt-get install socat)")
        self._tmp = None if directory is not None else tempfile.TemporaryDirectory(prefix="zw-pty-")
        base = directory if directory is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.device_end = str(base / "device")
        self.gateway_end = str(base / "gateway")
        self.process = subprocess.Popen(
            [
                socat,
                f"PTY,link={self.device_end},raw,echo=0",
                f"PTY,link={self.gateway_end},raw,echo=0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not (Path(self.device_end).exists() and Path(self.gateway_end).exists()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.unplug()
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.02)

    def unplug(self) -> None:
        """End socat: both pseudo-terminals disappear (a pulled cable)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        self.unplug()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
