"""Quality gate: fault detection on a fixed small fleet must stay within its goals.

``bench/faults.py`` measures detection on 4 seeds x 90 days x 122 sites; these tests run the
same trial (:func:`collector.faults.trial.run_trial`: simulator with faults, what the server
would have seen, every detector, scored against the ground truth) on 60 sites for 60 days,
once into winter and once in spring, plus 40 days of one-minute polling. They take seconds
and are deterministic (fixed seeds). The goals are the issue's (recall >= 0.95 per detectable
fault type, precision >= 0.97, <= 0.3 false alerts per 1,000 inverter-days), restated for a
fleet this small:

- a type with few cases cannot show 0.95 (one miss in 8 is 0.875), so each detectable type
  may miss at most one case and all detectable types together must reach 0.95;
- 0.3 false alerts per 1,000 inverter-days is 2.2 alerts in the 7,320 inverter-days of the
  two trials: at most 2 false alerts;
- slow soiling of 20-25 % (``degradation``) is within the peer comparison's tolerance and
  not among the detectable types (docs/faults.md, known limits).

A coarse counter (Growatt and Sungrow 0.1 kWh; both families are in the fleet) that
made a healthy inverter look underperforming, or a refused garbage reading that no detector
saw, fails these tests.
"""

from __future__ import annotations

from datetime import date

import pytest

from collector.faults.evaluation import Score
from collector.faults.trial import run_trial

NOT_DETECTABLE = {"degradation"}
MIN_RECALL = 0.95
MIN_PRECISION = 0.97
SITES, DAYS = 60, 60


@pytest.fixture(scope="module")
def five_minute() -> Score:
    score = Score()
    run_trial(3, date(2025, 11, 1), DAYS, SITES, 300, score)  # into winter: short, dark days
    run_trial(1, date(2025, 4, 1), DAYS, SITES, 300, score)
    return score


@pytest.fixture(scope="module")
def one_minute() -> Score:
    score = Score()
    run_trial(2, date(2025, 10, 15), 40, 40, 60, score)
    return score


def _check(score: Score, max_false: int) -> None:
    detectable = {k: v for k, v in score.by_type.items() if k not in NOT_DETECTABLE}
    misses = {k: v.expected - v.detected for k, v in detectable.items()}
    assert all(m <= 1 for m in misses.values()), f"missed per fault type: {misses}"
    expected = sum(v.expected for v in detectable.values())
    detected = sum(v.detected for v in detectable.values())
    assert expected > 0
    assert detected / expected >= MIN_RECALL, f"recall {detected}/{expected}"
    assert score.precision >= MIN_PRECISION, f"precision {score.precision:.3f}: {score.false}"
    assert score.false_alerts <= max_false, f"false alerts: {score.false}"


def test_detection_on_five_minute_readings_meets_its_goals(five_minute: Score) -> None:
    assert five_minute.inverter_days == 2 * SITES * DAYS
    _check(five_minute, max_false=2)


def test_detection_on_one_minute_readings_meets_its_goals(one_minute: Score) -> None:
    # 1,600 inverter-days: 0.3 per 1,000 allows no false alert at all
    _check(one_minute, max_false=0)


def test_every_detectable_fault_type_occurs_in_the_gate(five_minute: Score) -> None:
    """A gate that stopped exercising a fault type would pass without measuring it."""
    present = {k for k, v in five_minute.by_type.items() if v.expected > 0}
    assert {
        "comms_glitch",
        "dead_string",
        "fault_state",
        "frozen",
        "gateway_outage",
        "offline",
        "underperformance",
        "counter_reset",
    } <= present
