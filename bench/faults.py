"""Fault detection scored against the simulator's ground truth.

Runs the fleet simulator with injected faults for several seeds (default: 4 seeds × 90 days ×
122 sites, 5-minute readings, starting in different seasons), feeds what the server would
have seen in real time through every detector, and prints per fault type the recall and the
median time to detection, then overall precision and false alerts per 1,000 inverter-days.

    .venv/bin/python bench/faults.py [--seeds 1 2 3] [--days 90] [--sites 122]

The last line is ``faults: recall <r> precision <p> false_alerts_per_1000_inverter_days <f>``.

Figures (``bench/_figures.py``), goals of issue 15: recall at least 0.95 for every fault type
with faults expected to be found, overall precision at least 0.97, at most 0.3 false alerts per
1,000 inverter-days; and issue 8's time goals as the share found in time (offline, fault state:
0.99 within 30 daylight minutes; dead string, underperformance: 0.9 within 3 days).
"""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timedelta

import numpy as np
from _figures import at_least, at_most, report

from collector.faults.episodes import findings
from collector.faults.evaluation import (
    DETECTABLE_DEGRADATION_LOSS,
    EXPECTED_KINDS,
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
from collector.simulator.faults import generate_faults
from collector.simulator.fleet import generate_fleet

#: Start of each seed's window: spring, summer, autumn into winter.
STARTS = (date(2025, 3, 1), date(2025, 6, 1), date(2025, 10, 1), date(2025, 12, 1))


def run_one(
    seed: int, start_day: date, days: int, sites: int, interval_s: int, score_into: Score
) -> None:
    t0 = time.perf_counter()
    fleet = generate_fleet(sites, seed=seed)
    start, end = window(start_day, days)
    # dead strings are rare (0.15 per site-year, multi-MPPT sites only): draw more to measure them
    faults = generate_faults(
        fleet, start, end, rates_per_site_year={"dead_string": 2.0}, interval_s=interval_s
    )
    sim = Simulation(fleet, start, end, interval_s, faults, batch_s=interval_s)
    # the simulator also schedules faults on sites not commissioned yet: nothing there to break
    commissioned = {s.device_id: s.commissioned for s in fleet.sites}
    truth = [f for f in faults.faults if f.start.date() >= commissioned[f.device_id]]
    skipped = len(faults) - len(truth)
    chunks = list(sim.chunks())
    series = series_from_chunks(fleet, chunks, interval_s)
    del chunks
    # step losses of 30-45 %, which the simulator only injects as slow soiling ramps
    rng = np.random.default_rng([seed, 0x10557])
    series, injected = inject_step_losses(series, fleet, rng, count=max(1, sites * days // 900))
    truth = [*truth, *injected]
    t_sim = time.perf_counter() - t0
    config = DetectorConfig()
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
        truth,
        sites=sites,
        days=days,
        daylight=(epoch, series.sun_elevation_deg),
        into=score_into,
    )
    print(
        f"seed {seed} from {start_day}: {len(truth)} faults "
        f"(of which {len(injected)} step losses added here; {skipped} more on sites not "
        f"commissioned yet), {len(found)} alerts; "
        f"simulated in {t_sim:.1f} s, detected in {t_det:.1f} s",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--sites", type=int, default=122)
    parser.add_argument("--interval", type=int, default=300, help="reading interval [s]")
    parser.add_argument("--show", action="store_true", help="list missed faults and false alerts")
    args = parser.parse_args()
    total = Score()
    started = time.perf_counter()
    for n, seed in enumerate(args.seeds):
        run_one(seed, STARTS[n % len(STARTS)], args.days, args.sites, args.interval, total)
    print()
    print("median min: fault start to alert; daylight min: the same counted with the sun up;")
    print("in goal: share found within 30 daylight minutes (offline, fault state, gateway")
    print("outage) or 3 days (dead string, underperformance); degradation counts from the day")
    print(
        f"its soiling ramp passes {DETECTABLE_DEGRADATION_LOSS:.0%} loss (weaker ones are not expected)."
    )
    print(
        f"{'fault type':<16}{'faults':>7}{'expected':>9}{'found':>6}{'recall':>8}"
        f"{'median min':>11}{'daylight min':>13}{'in goal':>8}  alert kinds"
    )
    for fault_type, s in sorted(total.by_type.items()):
        kinds = ",".join(sorted(k.value for k in EXPECTED_KINDS[fault_type]))
        print(
            f"{fault_type:<16}{s.faults:>7}{s.expected:>9}{s.detected:>6}{s.recall:>8.3f}"
            f"{s.median_delay_min:>11.0f}{s.median_daylight_delay_min:>13.0f}"
            f"{s.within_goal:>8.3f}  {kinds}"
        )
    if args.show:
        for line in total.missed:
            print("missed:", line)
        for line in total.false:
            print("false:", line)
    print(
        f"alerts {total.alerts}, true {total.true_alerts}, false {total.false_alerts} "
        f"{dict(sorted(total.false_by_kind.items()))}; {total.inverter_days:.0f} inverter-days; "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(
        f"faults: recall {total.recall:.3f} precision {total.precision:.3f} "
        f"false_alerts_per_1000_inverter_days {total.false_per_1000_inverter_days:.2f}"
    )
    report_figures(total)
    return 0


#: Issue 8's time goals: share of expected faults found within the type's time limit.
IN_TIME_GOALS = {"offline": 0.99, "fault_state": 0.99, "dead_string": 0.9, "underperformance": 0.9}


def report_figures(total: Score) -> None:
    """The figures ``make bench`` records, each against the issue's goal."""
    for fault_type, s in sorted(total.by_type.items()):
        if s.expected:
            report(
                f"recall_{fault_type}",
                s.recall,
                "",
                at_least(0.95, "issue 15: every fault type expected to be found"),
                detail=f"{s.detected}/{s.expected} found; median {s.median_daylight_delay_min:.0f} "
                f"daylight min after the start",
            )
        if fault_type in IN_TIME_GOALS:
            report(
                f"in_time_{fault_type}",
                s.within_goal,
                "",
                at_least(IN_TIME_GOALS[fault_type], "issue 8: found within the type's time goal"),
            )
    report("precision", total.precision, "", at_least(0.97, "issue 15"))
    report(
        "false_alerts_per_1000_inverter_days",
        total.false_per_1000_inverter_days,
        "",
        at_most(0.3, "issue 15"),
        detail=f"{total.false_alerts} false of {total.alerts} alerts, "
        f"{total.inverter_days:.0f} inverter-days",
    )


if __name__ == "__main__":
    raise SystemExit(main())
