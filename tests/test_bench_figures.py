"""The docs' figures are the committed `make bench` run's, and that run covers every bench.

``bench/results/latest.json`` is what ``make bench`` (``bench/_suite.py``) last wrote and
someone committed; the figure tables in ``docs/*.md`` are rendered from it
(``bench/_docs.py``). A doc that claims other numbers than the summary, a bench the suite
forgot, or a bench that stopped reporting fails here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


suite = _load("_suite")
docs = _load("_docs")


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((BENCH / "results" / "latest.json").read_text("utf-8"))
    return data


def test_every_bench_is_in_the_suite() -> None:
    scripts = {p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_")}
    assert scripts == {b.name for b in suite.SUITE}


def test_the_summary_is_a_whole_run_of_the_suite(summary: dict[str, Any]) -> None:
    assert summary["format"] == "zonnewijk-bench-1"
    assert summary["machine"]["cores"] >= 1 and summary["date"]
    runs = {r["bench"]: r for r in summary["runs"]}
    assert set(runs) == {b.name for b in suite.SUITE}
    for name, run in runs.items():
        assert run["exit_code"] == 0, f"bench/{name}.py failed in the committed run"
        assert run["figures"] > 0, f"bench/{name}.py reported no figures"
    # The budget for the whole suite on this 2-core machine.
    assert summary["total_seconds"] < 30 * 60
    for figure in summary["figures"]:
        assert figure["command"].startswith(".venv/bin/python bench/"), figure
        assert figure["status"] in {"PASS", "SHORT", "INFO"}, figure
        assert (figure["goal"] is None) == (figure["status"] == "INFO"), figure


def test_docs_tables_are_the_summary(summary: dict[str, Any]) -> None:
    stale = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if docs.render_text(text, summary) != text:
            stale.append(path.name)
    assert not stale, f"re-render with `make bench` (or bench/_docs.py): {stale}"


def test_every_bench_has_its_figures_in_a_doc() -> None:
    shown = set()
    for path in (ROOT / "docs").glob("*.md"):
        for names in docs.sections(path.read_text(encoding="utf-8")):
            shown.update(names)
    assert shown == {b.name for b in suite.SUITE}


def test_a_merged_run_replaces_its_bench_and_says_when_it_ran() -> None:
    def run(bench: str, date: str, seconds: float) -> dict[str, Any]:
        return {"bench": bench, "date": date, "seconds": seconds, "command": bench, "exit_code": 0}

    def figure(bench: str, value: float) -> dict[str, Any]:
        return {
            "bench": bench,
            "figure": "x",
            "value": value,
            "unit": "s",
            "goal": None,
            "status": "INFO",
        }

    machine = {"cores": 2, "load_average_at_start": [2.5, 2.0, 1.0]}
    old = {
        "date": "2026-12-07T12:00:00+00:00",
        "machine": machine,
        "runs": [run("p1", "2026-12-07", 100), run("gateway", "2026-12-07", 50)],
        "figures": [figure("p1", 1.0), figure("gateway", 2.0)],
    }
    later = {"machine": {**machine, "load_average_at_start": [0.5, 0.4, 0.3]}}
    once = suite.merged(old, {**later, "runs": [run("p1", "d2", 90)], "figures": [figure("p1", 3)]})
    twice = suite.merged(
        once, {**later, "runs": [run("p1", "d3", 80)], "figures": [figure("p1", 4)]}
    )
    assert [r["date"] for r in twice["runs"] if r["bench"] == "p1"] == ["d3"]
    assert [f["value"] for f in twice["figures"] if f["bench"] == "p1"] == [4]
    assert twice["merged"] == [
        {"bench": "p1", "date": "d3", "load_average_at_start": [0.5, 0.4, 0.3]}
    ]
    assert twice["total_seconds"] == 130
    assert docs.render_section(["p1"], twice).startswith(
        "`bench/_suite.py --merge` of d3 on 2 cores (load 0.5 at the start):"
    )
    assert docs.render_section(["gateway"], twice).startswith(
        "`make bench` of 2026-12-07 on 2 cores (load 2.5 at the start):"
    )
