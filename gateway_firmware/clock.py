"""The gateway's clock: wall time, monotonic time, the boot id, and whether the wall clock is
synchronised (issue 18, "time you can trust").

A Raspberry Pi has no real-time clock. After a power cut it boots at the time fake-hwclock saved
last, or at 1970, and keeps that until NTP syncs (minutes, or never without a network). The
gateway takes a :class:`GatewayClock` as a dependency and asks it, before it stamps a reading,
whether the wall clock can be believed (:mod:`gateway_firmware.timekeeping` decides what to do
with the answer).

Where the answer comes from (``ZONNEWIJK_GATEWAY_CLOCK_SYNC``, see :func:`sync_check_from_env`):

- ``auto`` (default): chrony when ``chronyc`` is installed and answers, else systemd-timesyncd
  when it runs (``/run/systemd/timesync/`` exists), else the kernel's flag;
- ``kernel``: ``adjtimex(2)`` with no modes (read only, no privileges): synchronised unless the
  call returns ``TIME_ERROR`` or ``STA_UNSYNC`` is set in ``status``. An NTP daemon that
  disciplines the clock (chronyd, timesyncd, ntpd) clears the flag; nothing else does, so a
  machine whose clock is set some other way (a VM's host, a container) reads as unsynchronised;
- ``timesyncd``: synchronised once ``/run/systemd/timesync/synchronized`` exists (timesyncd
  touches it at its first sync of the boot; ``/run`` is emptied at every boot);
- ``chrony``: ``chronyc -n -c tracking``; synchronised unless the leap status is
  ``Not synchronised``;
- ``file:/some/path``: synchronised while that file exists (the timesyncd mechanism at a path
  of your choice; the tests use it to decide when a faked clock "syncs");
- ``trust``: always synchronised (the behaviour before issue 18; the test suite sets it where
  the time is not what a test is about, because this development machine's kernel reports
  unsynchronised).

Answers that cost a process (chrony) are cached for :data:`CHECK_EVERY_S`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

#: The environment variable that chooses where the sync status comes from.
CLOCK_SYNC_ENV = "ZONNEWIJK_GATEWAY_CLOCK_SYNC"
#: timesyncd's flag file: created at its first successful sync after boot.
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
#: The kernel's id of this boot; a new one at every boot.
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
#: How long an answer that costs a subprocess (chronyc) is reused [s].
CHECK_EVERY_S = 10.0

#: adjtimex(2) return value: the clock is not synchronised.
TIME_ERROR = 5
#: ``timex.status`` bit: the clock is not synchronised.
STA_UNSYNC = 0x0040


@dataclass(frozen=True)
class SyncStatus:
    """Whether the wall clock is synchronised, who said so and why."""

    synced: bool
    source: str
    detail: str = ""


class SyncCheck(Protocol):
    """Something that knows whether the wall clock is synchronised."""

    name: str

    def status(self) -> SyncStatus: ...


# --- the kernel -------------------------------------------------------------------------------


class _Timex(ctypes.Structure):
    """``struct timex`` up to ``status`` (the fields before it are the same on 32 and 64 bit);
    the rest is padding big enough for every layout of the full struct."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


def kernel_sync_state() -> tuple[int, int, int]:
    """``adjtimex(2)`` with no modes: (return value, ``status`` bits, ``maxerror`` [us]).

    Raises OSError when the call fails.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    timex = _Timex()
    timex.modes = 0  # read only
    result = int(libc.adjtimex(ctypes.byref(timex)))
    if result == -1:
        errno = ctypes.get_errno()
        raise OSError(errno, f"adjtimex: {os.strerror(errno)}")
    return result, int(timex.status), int(timex.maxerror)


def kernel_says_synced(result: int, status_bits: int) -> bool:
    """The kernel's verdict from adjtimex's return value and ``status`` bits."""
    return result != TIME_ERROR and not status_bits & STA_UNSYNC


class KernelSync:
    """The kernel's NTP sync flag (``adjtimex``)."""

    name = "kernel"

    def status(self) -> SyncStatus:
        try:
            result, bits, maxerror_us = kernel_sync_state()
        except OSError as exc:
            return SyncStatus(False, self.name, f"adjtimex failed: {exc}")
        synced = kernel_says_synced(result, bits)
        return SyncStatus(
            synced,
            self.name,
            f"adjtimex returned {result}, status 0x{bits:04x}, maxerror {maxerror_us} us",
        )


# --- daemons and files ------------------------------------------------------------------------


class FlagFileSync:
    """Synchronised while a file exists (timesyncd's ``/run/systemd/timesync/synchronized``)."""

    def __init__(self, path: str | Path, name: str = "file") -> None:
        self.path = Path(path)
        self.name = name

    def status(self) -> SyncStatus:
        exists = self.path.exists()
        return SyncStatus(exists, self.name, f"{self.path} {'exists' if exists else 'is absent'}")


def chrony_leap_status(csv_line: str) -> str | None:
    """The leap status field of ``chronyc -c tracking`` (its last field), or None."""
    fields = csv_line.strip().split(",")
    return fields[-1].strip() if len(fields) >= 13 else None


class ChronySync:
    """chronyd's view (``chronyc -n -c tracking``), asked at most every ``check_every_s``."""

    name = "chrony"

    def __init__(
        self,
        chronyc: str = "chronyc",
        *,
        check_every_s: float = CHECK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chronyc = chronyc
        self.check_every_s = check_every_s
        self._clock = clock
        self._cached: SyncStatus | None = None
        self._asked_at = -1e18

    def answers(self) -> bool:
        """Whether chronyd answers at all (``auto`` uses chrony only then)."""
        return chrony_leap_status(self._ask()) is not None

    def _ask(self) -> str:
        try:
            done = subprocess.run(
                [self.chronyc, "-n", "-c", "tracking"],
                capture_output=True,
                text=True,
                timeout=3,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"error: {exc}"
        return done.stdout if done.returncode == 0 else f"error: {done.stderr.strip()[:200]}"

    def status(self) -> SyncStatus:
        now = self._clock()
        if self._cached is not None and now - self._asked_at < self.check_every_s:
            return self._cached
        answer = self._ask()
        leap = chrony_leap_status(answer)
        if leap is None:
            self._cached = SyncStatus(False, self.name, f"chronyc: {answer.strip()[:200]}")
        else:
            self._cached = SyncStatus(leap != "Not synchronised", self.name, f"leap status {leap}")
        self._asked_at = now
        return self._cached


class TrustSync:
    """Always synchronised: the wall clock is believed as it is."""

    name = "trust"

    def status(self) -> SyncStatus:
        return SyncStatus(True, self.name, f"{CLOCK_SYNC_ENV}=trust")


def auto_sync_check() -> SyncCheck:
    """chrony if it answers, else timesyncd if it runs, else the kernel's flag."""
    if shutil.which("chronyc") is not None:
        chrony = ChronySync()
        if chrony.answers():
            return chrony
    if TIMESYNCD_FLAG.parent.is_dir():
        return FlagFileSync(TIMESYNCD_FLAG, name="timesyncd")
    return KernelSync()


def sync_check_for(setting: str) -> SyncCheck:
    """The sync check a setting names: ``auto``, ``trust``, ``kernel``, ``timesyncd``,
    ``chrony`` or ``file:<path>``. Raises ValueError for anything else."""
    value = setting.strip()
    if value in ("", "auto"):
        return auto_sync_check()
    if value == "trust":
        return TrustSync()
    if value == "kernel":
        return KernelSync()
    if value == "timesyncd":
        return FlagFileSync(TIMESYNCD_FLAG, name="timesyncd")
    if value == "chrony":
        return ChronySync()
    if value.startswith("file:") and len(value) > len("file:"):
        return FlagFileSync(value[len("file:") :])
    raise ValueError(
        f"{CLOCK_SYNC_ENV}={setting!r}: expected auto, trust, kernel, timesyncd, chrony "
        "or file:<path>"
    )


def sync_check_from_env(environ: dict[str, str] | None = None) -> SyncCheck:
    """The sync check ``ZONNEWIJK_GATEWAY_CLOCK_SYNC`` chooses (default ``auto``)."""
    env = os.environ if environ is None else environ
    return sync_check_for(env.get(CLOCK_SYNC_ENV, "auto"))


# --- the clock --------------------------------------------------------------------------------


def read_boot_id(path: Path = BOOT_ID_FILE) -> str:
    """The kernel's boot id; ``unknown-<pid>-<time>`` where there is none (never equal to a
    later boot's)."""
    try:
        return path.read_text().strip() or f"unknown-{os.getpid()}-{time.monotonic_ns()}"
    except OSError:
        return f"unknown-{os.getpid()}-{time.monotonic_ns()}"


def _boottime_ns() -> int:
    """Nanoseconds since boot (CLOCK_BOOTTIME: monotonic, counts suspend, not set by NTP)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


class GatewayClock(Protocol):
    """What the gateway needs of a clock."""

    @property
    def boot_id(self) -> str: ...

    def wall_ns(self) -> int:
        """The wall clock [ns since the epoch], believed or not."""
        ...

    def mono_ns(self) -> int:
        """Time since boot [ns]; never steps, restarts at every boot."""
        ...

    def sync(self) -> SyncStatus:
        """Whether :meth:`wall_ns` is synchronised."""
        ...


class SystemClock:
    """The machine's clocks, with a :class:`SyncCheck` (default: from the environment)."""

    def __init__(self, check: SyncCheck | None = None, *, boot_id: str | None = None) -> None:
        self.check = check if check is not None else sync_check_from_env()
        self._boot_id = boot_id if boot_id is not None else read_boot_id()

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def wall_ns(self) -> int:
        return time.time_ns()

    def mono_ns(self) -> int:
        return _boottime_ns()

    def sync(self) -> SyncStatus:
        return self.check.status()


class FakeClock:
    """A clock a test sets by hand: wall and monotonic time, sync status, boot id."""

    def __init__(
        self,
        *,
        wall_ns: int = 0,
        mono_ns: int = 1_000_000_000,
        synced: bool = False,
        boot_id: str = "boot-1",
    ) -> None:
        self.wall = wall_ns
        self.mono = mono_ns
        self.synced = synced
        self._boot_id = boot_id

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def wall_ns(self) -> int:
        return self.wall

    def mono_ns(self) -> int:
        return self.mono

    def sync(self) -> SyncStatus:
        return SyncStatus(self.synced, "fake")

    def advance(self, seconds: float) -> None:
        """Both clocks move on by ``seconds`` [s]."""
        step = round(seconds * 1e9)
        self.wall += step
        self.mono += step

    def step_wall(self, seconds: float) -> None:
        """The wall clock alone jumps by ``seconds`` (negative: backwards) [s]."""
        self.wall += round(seconds * 1e9)

    def reboot(self, boot_id: str, *, wall_ns: int) -> None:
        """A new boot: monotonic time starts again, the wall clock is whatever it boots at."""
        self._boot_id = boot_id
        self.mono = 1_000_000_000
        self.wall = wall_ns
        self.synced = False
