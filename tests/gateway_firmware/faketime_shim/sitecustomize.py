"""Loaded by the gateway subprocess of ``test_clock_faketime.py`` (on its ``PYTHONPATH``) only.

Under libfaketime 0.9.10 with ``FAKETIME_DONT_FAKE_MONOTONIC=1``, Python 3.11's ``time.sleep``
(``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ...)``) fails with EINVAL, and hangs when
the faked wall clock starts at 1970 (tried: relative and absolute offsets, ``FAKETIME_NO_CACHE``,
``FAKETIME_FORCE_MONOTONIC_FIX``). Without ``FAKETIME_DONT_FAKE_MONOTONIC`` sleeping works, but
then the monotonic clock jumps with every change of the faked wall clock, which is what the
tests must not have: a Pi's monotonic clock never steps. Event waits, ``select`` and socket
timeouts work, so sleeping goes through ``select`` here. Nothing else is changed.
"""

from __future__ import annotations

import select
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


time.sleep = _sleep
