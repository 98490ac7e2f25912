"""``zonnewijk faults check`` on real measured PV data with labels (``tests/data/pvanalytics``).

Recall and precision per label are computed per reading (a labelled reading is found when a
finding of the matching kind covers its time) and must reach the figures ``docs/faults.md``
states. The detectors' defaults were written before these files were run and were not
changed after (``docs/faults.md``, *Validation on labelled data*): nothing here was fitted.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from collector.cli import main

DATA = Path(__file__).resolve().parents[2] / "data" / "pvanalytics"
READ = ["--column", "ts=timestamp", "--column", "ac_power_kw=value_normalized"]


@dataclass(frozen=True)
class Score:
    labelled: int
    found: int
    flagged: int

    @property
    def recall(self) -> float:
        return self.found / self.labelled

    @property
    def precision(self) -> float:
        return self.found / self.flagged if self.flagged else 1.0


def score(
    capsys: pytest.CaptureFixture[str], name: str, label: str, kinds: set[str], *extra: str
) -> Score:
    path = DATA / name
    assert main(["faults", "check", str(path), "--device", "INV-1", *READ, "--format", "json", *extra]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    spans = [
        (datetime.fromisoformat(f["start"]), datetime.fromisoformat(f["end"]))
        for f in result["findings"]
        if f["kind"] in kinds
    ]
    labelled = found = flagged = 0
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not row["value_normalized"].strip():
                continue  # no reading: nothing to judge
            ts = datetime.fromisoformat(row["timestamp"])
            truth = row[label].strip().lower() == "true"
            hit = any(a <= ts < b for a, b in spans)
            labelled += truth
            found += truth and hit
            flagged += hit
    return Score(labelled, found, flagged)


def test_inserted_stale_periods_are_found_as_frozen_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = score(capsys, "ac_power_inv_2173_stale_data.csv", "stale_data_mask", {"frozen_value"})
    assert s.labelled == 245
    assert s.recall >= 0.95 and s.precision >= 0.9, s  # measured: 245/245, 245/253


def test_inserted_outliers_are_found(capsys: pytest.CaptureFixture[str]) -> None:
    s = score(capsys, "ac_power_inv_7539_outliers.csv", "outlier", {"outlier"})
    assert s.labelled == 6
    assert s.recall == 1.0 and s.precision >= 0.8, s  # measured: 6/6, 6/6


def test_labelled_clipping_is_found_given_the_rating(capsys: pytest.CaptureFixture[str]) -> None:
    # min-max normalised: 1.0 is the series' maximum, the inverter's limit (1000 W here)
    s = score(capsys, "ac_power_inv_7539.csv", "label", {"clipping"}, "--ac-rating-w", "1000")
    assert s.labelled == 39
    assert s.recall >= 0.95 and s.precision >= 0.75, s  # measured: 39/39, 39/49
