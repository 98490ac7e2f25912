"""The reconnect storm's machinery at a tiny size: real Mosquitto, collector and InfluxDB.

``bench/reconnect_storm.py`` runs it with 2,125 gateways; here 20 gateways with a day of
hourly readings (24 each, one message) go through the same broker restart and backoff, and
every reading must be stored once.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
        reason="needs Debian's mosquitto (apt-get install mosquitto)",
    ),
    pytest.mark.skipif(
        shutil.which("influxd") is None and not Path("/usr/sbin/influxd").exists(),
        reason="needs Debian's influxdb (apt-get install influxdb)",
    ),
]


def _storm() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the bench's own imports (_figures) resolve
    spec = importlib.util.spec_from_file_location("bench_storm", BENCH / "_storm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_small_storm_stores_every_reading_once(tmp_path: Path) -> None:
    storm = _storm()
    result = storm.run_storm(20, interval_s=3600, down_s=2.0, timeout_s=60.0, workdir=tmp_path)
    assert result.recovered, result.timeline[-5:]
    assert result.readings_sent == 20 * 24
    assert result.sessions_resumed == 20  # every gateway resumed its persistent session
    assert result.connect_failures > 0  # they knocked while the broker was down, backed off
    assert result.lost == 0
    assert result.doubled == 0
    assert result.stored == result.readings_sent == result.collector_readings_stored
    assert result.line().startswith("reconnect_storm: gateways 20 readings 480 stored 480 lost 0 ")
    # the waits grew past the first attempt's (exponential while the broker was down)
    assert result.max_backoff_s > 2 * storm.RECONNECT_MIN_S
