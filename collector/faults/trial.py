"""One scored trial of fault detection: simulate a fleet with faults, detect, score.

What ``bench/faults.py`` runs per seed and what the quality gate in
``tests/collector/faults/test_quality_gate.py`` runs on a smaller fleet: the fleet simulator
with its fault schedule (dead strings drawn at 2 per multi-MPPT site-year to have enough of
them), what the server would have seen in real time (:func:`series_from_chunks`: the
collector's refusals included), step losses of 30-45 % added with their own truth, every
detector, and the score against the ground truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from collector.faults.episodes import findings
from collector.faults.evaluation import (
    InjectedFault,
    Score,
    daily_from_series,
    inject_step_losses,
    score,
    series_from_chunks,
)
from collector.faults.model import Finding
from collector.faults.peers import detect_underperformance
from collector.faults.pipeline import DetectorConfig, detect_recent
from collector.simulator.engine import Simulation, window
from collector.simulator.faults import Fault, generate_faults
from collector.simulator.fleet import generate_fleet

#: Dead strings per multi-MPPT site-year in a trial (the simulator's default is 0.15).
TRIAL_DEAD_STRING_RATE = 2.0


@dataclass(frozen=True)
class TrialInfo:
    """What a trial ran: faults (injected step losses among them), alerts, times [s]."""

    faults: int
    step_losses: int
    skipped: int
    alerts: int
    simulate_s: float
    detect_s: float


def run_trial(
    seed: int,
    start_day: date,
    days: int,
    sites: int,
    interval_s: int,
    into: Score,
    config: DetectorConfig | None = None,
) -> TrialInfo:
    """Simulate ``days`` from ``start_day`` for ``sites`` sites, detect, score into ``into``.

    Parameters
    ----------
    seed
        Fleet, weather and fault seed.
    start_day
        First simulated day (UTC).
    days
        Length of the run [days].
    sites
        Fleet size.
    interval_s
        Reading interval and batch period [s].
    into
        The score to accumulate into.
    config
        Detector parameters (default: the server's).
    """
    t0 = time.perf_counter()
    fleet = generate_fleet(sites, seed=seed)
    start, end = window(start_day, days)
    faults = generate_faults(
        fleet,
        start,
        end,
        rates_per_site_year={"dead_string": TRIAL_DEAD_STRING_RATE},
        interval_s=interval_s,
    )
    sim = Simulation(fleet, start, end, interval_s, faults, batch_s=interval_s)
    # the simulator also schedules faults on sites not commissioned yet: nothing there to break
    commissioned = {s.device_id: s.commissioned for s in fleet.sites}
    truth = [f for f in faults.faults if f.start.date() >= commissioned[f.device_id]]
    skipped = len(faults) - len(truth)
    series = series_from_chunks(fleet, list(sim.chunks()), interval_s)
    # step losses of 30-45 %, which the simulator only injects as slow soiling ramps
    rng = np.random.default_rng([seed, 0x10557])
    series, injected = inject_step_losses(series, fleet, rng, count=max(1, sites * days // 900))
    all_truth: list[Fault | InjectedFault] = [*truth, *injected]
    t_sim = time.perf_counter() - t0
    config = config or DetectorConfig()
    found: list[tuple[Finding, datetime]] = []
    step = timedelta(seconds=interval_s)
    for detection in detect_recent(series, config):
        for f in findings(detection, series.times, series.device_ids, series.gateway_ids):
            found.append((f, f.start + step))
    daily, run_at = daily_from_series(series, fleet)
    day_detection = detect_underperformance(daily, config.peers)
    day_index = {d: i for i, d in enumerate(daily.days.astype("datetime64[D]").tolist())}
    for f in findings(day_detection, daily.days, daily.device_ids, series.gateway_ids):
        found.append((f, run_at[day_index[f.start.date()]]))
    t_det = time.perf_counter() - t0 - t_sim
    epoch = series.times.astype(np.int64)
    score(
        found,
        all_truth,
        sites=sites,
        days=days,
        daylight=(epoch, series.sun_elevation_deg),
        into=into,
    )
    return TrialInfo(len(all_truth), len(injected), skipped, len(found), t_sim, t_det)
