"""The figure tables in ``docs/``, rendered from ``bench/results/latest.json``.

A doc marks where a bench's figures go::

    <!-- bench-figures: faults -->
    (rendered: never edit by hand)
    <!-- /bench-figures -->

``make bench`` (``bench/_suite.py``) re-renders every such section from the run it just made;
``tests/test_bench_figures.py`` renders them from the committed summary and fails when a doc
differs, so a doc shows exactly the figures the last committed run measured, with its goals
and PASS or SHORT.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SECTION = re.compile(
    r"(<!-- bench-figures: (?P<names>[a-z0-9_ ]+) -->\n)(?P<body>.*?)(<!-- /bench-figures -->)",
    re.S,
)


def value_text(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    size = abs(value)
    if size >= 1000:
        number = f"{value:,.0f}"
    elif size >= 100:
        number = f"{value:.0f}"
    elif size >= 10:
        number = f"{value:.1f}"
    elif size >= 1:
        number = f"{value:.2f}"
    else:
        number = f"{value:.3f}"
    return f"{number} {unit}".strip()


def render_section(names: Sequence[str], summary: Mapping[str, Any]) -> str:
    """The body of one section: a line on the run, then the figures of these benches."""
    runs = {r["bench"]: r for r in summary["runs"]}
    machine = summary["machine"]
    load = machine.get("load_average_at_start") or [float("nan")]
    run_of = f"`make bench` of {summary['date'][:10]}"
    merged = {m["bench"]: m for m in summary.get("merged", [])}
    if names and all(name in merged for name in names):  # run later, on their own
        latest = max((merged[name] for name in names), key=lambda m: str(m["date"]))
        load = latest.get("load_average_at_start") or [float("nan")]
        run_of = f"`bench/_suite.py --merge` of {str(latest['date'])[:10]}"
    at_start = "load not recorded" if load[0] != load[0] else f"load {load[0]:.1f} at the start"
    lines = [f"{run_of} on {machine['cores']} cores ({at_start}):", ""]
    for name in names:
        run = runs.get(name)
        if run is None:
            lines.append(f"- `bench/{name}.py`: not in this run")
            continue
        lines.append(f"- `{run['command']}`: {run['seconds']:.0f} s, exit code {run['exit_code']}")
    lines += ["", "| figure | value | goal | status | detail |", "| --- | --- | --- | --- | --- |"]
    for figure in summary["figures"]:
        if figure["bench"] not in names:
            continue
        detail = str(figure.get("detail") or "").replace("|", "/")
        why = figure.get("goal_why") or ""
        goal = figure["goal"] or ""
        if goal and why:
            goal = f"{goal} ({why})"
        label = figure["figure"] if len(names) == 1 else f"{figure['bench']}: {figure['figure']}"
        lines.append(
            f"| {label} | {value_text(figure['value'], figure['unit'])} | {goal} | "
            f"{figure['status']} | {detail} |"
        )
    return "\n".join(lines) + "\n"


def render_text(text: str, summary: Mapping[str, Any]) -> str:
    """``text`` with every bench-figures section rendered from ``summary``."""

    def replace(match: re.Match[str]) -> str:
        names = match.group("names").split()
        return match.group(1) + render_section(names, summary) + match.group(4)

    return SECTION.sub(replace, text)


def sections(text: str) -> list[list[str]]:
    """The bench names of each section in ``text``."""
    return [m.group("names").split() for m in SECTION.finditer(text)]


def render_all(summary: Mapping[str, Any], docs: Path) -> list[Path]:
    """Re-render every doc under ``docs`` that has sections; returns the files changed."""
    changed = []
    for path in sorted(docs.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        rendered = render_text(text, summary)
        if rendered != text:
            path.write_text(rendered, encoding="utf-8")
            changed.append(path)
    return changed
