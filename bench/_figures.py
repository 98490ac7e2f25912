"""A bench's figures with their goals: printed for people, recorded for ``make bench``.

Every bench ends by calling :func:`report` once per figure it promises. The figure is printed
(``figure <name> = <value> <unit>  goal <goal>  PASS|SHORT``); when ``make bench`` runs the
bench it sets ``ZONNEWIJK_BENCH_FIGURES`` to a file, and each figure is appended to it as one
JSON line (bench, figure, value, unit, goal, status, command), which ``bench/_suite.py``
collects into ``bench/results/latest.json``.

A timing with a reference measured in the same run (raw InfluxDB for ingest, the wire model
for decoding, raw readings for the rollup) is reported as the ratio, so the figure means the
same on a faster or busier machine; the absolute values go in ``detail``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

ENV = "ZONNEWIJK_BENCH_FIGURES"


@dataclass(frozen=True)
class Goal:
    """What a figure must reach: ``value <op> target``, op one of >=, <=, < or between
    (``between``: target <= value <= high)."""

    op: str
    target: float
    high: float | None = None
    #: Where the goal comes from (an issue, a source, a budget).
    why: str = ""

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.op == ">=":
            return value >= self.target
        if self.op == "<=":
            return value <= self.target
        if self.op == "<":
            return value < self.target
        if self.op == "between" and self.high is not None:
            return self.target <= value <= self.high
        raise ValueError(f"unknown goal {self.op!r}")

    def text(self) -> str:
        if self.op == "between":
            return f"{self.target:g}-{self.high:g}"
        return f"{self.op} {self.target:g}"


def at_least(target: float, why: str) -> Goal:
    return Goal(">=", target, why=why)


def at_most(target: float, why: str) -> Goal:
    return Goal("<=", target, why=why)


def between(low: float, high: float, why: str) -> Goal:
    return Goal("between", low, high, why=why)


def command() -> str:
    """The command that ran this bench, as a user would type it from the project root."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):  # run from elsewhere: keep the path as given
        script = script.resolve().relative_to(Path.cwd())
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def report(
    figure: str, value: float, unit: str, goal: Goal | None = None, detail: str = ""
) -> bool:
    """Print one figure against its goal and record it for ``make bench``; True when met."""
    status = "" if goal is None else ("PASS" if goal.met(value) else "SHORT")
    goal_text = "" if goal is None else f"  goal {goal.text()}"
    unit_text = f" {unit}" if unit else ""
    print(f"figure {figure} = {value:.6g}{unit_text}{goal_text}  {status}".rstrip())
    path = os.environ.get(ENV)
    if path:
        record = {
            "bench": Path(sys.argv[0]).stem,
            "figure": figure,
            "value": None if math.isnan(value) else value,
            "unit": unit,
            "goal": None if goal is None else goal.text(),
            "goal_why": None if goal is None else goal.why,
            "status": status or "INFO",
            "detail": detail,
            "command": command(),
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    return goal is None or goal.met(value)
