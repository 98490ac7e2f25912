"""The gateway as its own process, for the tests that fault what is around it (chaos, lossy
links, storage, clock): start it, wait for what it does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]


def start_gateway(
    config: Path, log: IO[bytes], env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``zonnewijk-gateway run --config CONFIG`` with output into ``log``; ``env`` adds to
    (or overrides) this process's environment (tests/conftest.py trusts the clock)."""
    return subprocess.Popen(
        [sys.executable, "-m", "gateway_firmware.cli", "run", "--config", str(config)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def wait_until(what: str, done: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``done`` every 0.2 s; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
