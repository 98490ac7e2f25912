"""The soak's maths on synthetic series, and a tiny soak of the real gateway and collector.

``bench/soak.py`` runs days of readings; here the slope and warm-up functions are checked
against ``statistics.linear_regression`` and known lines, a leak is shown to fail its goal,
and a soak of a few hundred readings through real Mosquitto, InfluxDB, collector and gateway
must account for every reading and fail the RSS goal when a leak is injected.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import statistics
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _soak() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the bench's own imports resolve
    spec = importlib.util.spec_from_file_location("bench_soak", BENCH / "_soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


soak = _soak()


def test_slope_of_a_line_is_its_slope() -> None:
    days = [0.1 * i for i in range(50)]
    assert soak.least_squares_slope(days, [40.0 + 2.5 * d for d in days]) == pytest.approx(2.5)
    assert soak.least_squares_slope(days, [7.0] * 50) == pytest.approx(0.0)


def test_slope_matches_the_standard_library_on_noise() -> None:
    rng = random.Random(5)
    days = sorted(rng.uniform(0, 30) for _ in range(300))
    values = [50 + 0.3 * d + rng.gauss(0, 2) for d in days]
    expected = statistics.linear_regression(days, values).slope
    assert soak.least_squares_slope(days, values) == pytest.approx(expected, rel=1e-9)


def test_slope_refuses_what_has_no_slope() -> None:
    with pytest.raises(ValueError, match="at least two"):
        soak.least_squares_slope([1.0], [2.0])
    with pytest.raises(ValueError, match="same x"):
        soak.least_squares_slope([1.0, 1.0], [2.0, 3.0])
    with pytest.raises(ValueError, match="y values"):
        soak.least_squares_slope([1.0, 2.0], [2.0])
    with pytest.raises(ValueError, match="warmup_fraction"):
        soak.after_warmup([0.0, 1.0], [1.0, 1.0], 1.0)


def test_the_warm_up_is_left_out_of_the_fit() -> None:
    """Memory that rises while caches fill and then stays flat is not a leak."""
    days = [i / 10 for i in range(101)]  # 10 simulated days
    rss = [40 + min(d, 2.0) * 10 for d in days]  # +20 MB over the first 2 days, then flat
    # fitted whole, it would fail the goal of 1 MB a day
    assert soak.least_squares_slope(days, rss) > 1.0
    assert soak.slope_per_simulated_day(days, rss, warmup_fraction=0.25) == pytest.approx(0.0)


def test_a_leak_fails_its_goal_and_flat_noise_passes() -> None:
    rng = random.Random(18)
    days = [i / 20 for i in range(601)]  # 30 simulated days
    flat = [48 + rng.gauss(0, 0.3) for _ in days]
    leaky = [48 + 1.5 * d + rng.gauss(0, 0.3) for d in days]  # 1.5 MB a day
    fds = [12.0 + (i % 3 == 0) for i in range(len(days))]  # an fd that comes and goes
    results = {
        g.series: (slope, met)
        for g, slope, met in soak.verdicts(
            days,
            {"gateway_rss_mb": leaky, "collector_rss_mb": flat, "gateway_fds": fds},
        )
    }
    assert set(results) == {"gateway_rss_mb", "collector_rss_mb", "gateway_fds"}
    assert results["gateway_rss_mb"][0] == pytest.approx(1.5, abs=0.05)
    assert results["gateway_rss_mb"][1] is False
    assert results["collector_rss_mb"][1] is True
    assert results["gateway_fds"][1] is True


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
    reason="needs Debian's mosquitto (apt-get install mosquitto)",
)
@pytest.mark.skipif(
    shutil.which("influxd") is None and not Path("/usr/sbin/influxd").exists(),
    reason="needs Debian's influxdb (apt-get install influxdb)",
)
def test_a_tiny_soak_accounts_for_every_reading_and_catches_a_leak(tmp_path: Path) -> None:
    leak = 2000.0  # MB per simulated day, far above a tiny run's noise
    result = soak.run_soak(
        days=0.05, inverters=20, workdir=tmp_path, sample_every_s=0.5, leak_mb_per_day=leak
    )
    assert result.gateway_exit == 0 and result.collector_exit == 0
    assert result.readings_polled >= 0.05 * soak.READINGS_PER_SIMULATED_DAY
    assert result.distinct_stored + result.spool_left >= result.readings_polled
    assert result.distinct_stored > 0
    assert len(result.samples) >= 10
    series = result.series()
    assert min(series["gateway_fds"]) > 0 and min(series["collector_fds"]) > 0
    assert all(v > 0 for v in series["broker_rss_mb"])
    by_series = {g.series: (slope, met) for g, slope, met in soak.verdicts(result.days, series)}
    slope, met = by_series["gateway_rss_mb"]
    assert not met, "an injected leak must fail the RSS goal"
    assert slope > leak / 2
    # the spool is emptied on PUBACK while the broker is up
    assert max(series["spool_rows"]) < 200
