"""Where the gateway learns whether its wall clock is synchronised (docs/clock.md)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from gateway_firmware.clock import (
    CLOCK_SYNC_ENV,
    STA_UNSYNC,
    TIME_ERROR,
    ChronySync,
    FlagFileSync,
    KernelSync,
    SystemClock,
    TrustSync,
    chrony_leap_status,
    kernel_says_synced,
    kernel_sync_state,
    read_boot_id,
    sync_check_for,
    sync_check_from_env,
)


def test_the_kernel_flag_is_read_with_adjtimex() -> None:
    result, bits, _maxerror = kernel_sync_state()  # the real system call, read only
    assert 0 <= result <= TIME_ERROR
    status = KernelSync().status()
    assert status.source == "kernel"
    assert re.match(r"adjtimex returned \d, status 0x[0-9a-f]{4}", status.detail)
    assert status.synced == kernel_says_synced(result, bits)


def test_the_kernel_verdict() -> None:
    assert kernel_says_synced(0, 0) is True  # TIME_OK, flag clear
    assert kernel_says_synced(0, STA_UNSYNC) is False
    assert kernel_says_synced(TIME_ERROR, 0) is False
    assert kernel_says_synced(1, 0x2001) is True  # TIME_INS with PLL and nano bits


def test_a_flag_file_says_synchronised_while_it_exists(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    check = FlagFileSync(flag)
    assert check.status().synced is False
    flag.touch()
    assert check.status().synced is True
    assert str(flag) in check.status().detail


def test_chrony_tracking_csv() -> None:
    synced = "A9FEA9FE,169.254.169.254,3,1765152000.1,0.000001,0.000002,0.000003,-1.2,0.01,0.1,0.0002,0.0003,64.0,Normal\n"
    unsynced = "00000000,,0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,Not synchronised\n"
    assert chrony_leap_status(synced) == "Normal"
    assert chrony_leap_status(unsynced) == "Not synchronised"
    assert chrony_leap_status("506 Cannot talk to daemon") is None


def test_chrony_without_chronyc_reads_unsynchronised(tmp_path: Path) -> None:
    calls = [0.0]
    check = ChronySync(str(tmp_path / "no-chronyc"), clock=lambda: calls[0])
    status = check.status()
    assert status.synced is False and status.source == "chrony"
    assert "chronyc" in status.detail
    assert not check.answers()


@pytest.mark.skipif(shutil.which("chronyc") is None, reason="chronyc is not installed here")
def test_chrony_answers_when_installed() -> None:  # pragma: no cover - not on this machine
    assert ChronySync().status().source == "chrony"


def test_settings(tmp_path: Path) -> None:
    assert isinstance(sync_check_for("trust"), TrustSync)
    assert isinstance(sync_check_for("kernel"), KernelSync)
    timesyncd = sync_check_for("timesyncd")
    assert isinstance(timesyncd, FlagFileSync) and timesyncd.name == "timesyncd"
    assert str(timesyncd.path) == "/run/systemd/timesync/synchronized"
    flag = sync_check_for(f"file:{tmp_path}/flag")
    assert isinstance(flag, FlagFileSync) and flag.path == tmp_path / "flag"
    # auto on this machine: no chronyd, no timesyncd -> the kernel
    auto = sync_check_for("auto")
    if shutil.which("chronyc") is None and not Path("/run/systemd/timesync").is_dir():
        assert isinstance(auto, KernelSync)
    with pytest.raises(ValueError, match=CLOCK_SYNC_ENV):
        sync_check_for("ntp")
    with pytest.raises(ValueError, match="file:<path>"):
        sync_check_for("file:")
    assert isinstance(sync_check_from_env({CLOCK_SYNC_ENV: "trust"}), TrustSync)
    assert isinstance(sync_check_from_env({}), type(auto))


def test_the_test_suite_trusts_the_clock() -> None:
    """tests/conftest.py sets trust, so gateways started by other tests publish at once."""
    assert SystemClock().sync().synced is True


def test_system_clock_reads_the_machine(tmp_path: Path) -> None:
    clock = SystemClock(TrustSync())
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert clock.boot_id == boot_id == read_boot_id()
    first = clock.mono_ns()
    assert clock.mono_ns() >= first > 0
    assert read_boot_id(tmp_path / "absent").startswith("unknown-")
