"""``make bench``: every bench at its documented default size, each figure against its goal.

    .venv/bin/python bench/_suite.py [--only NAME ...] [--no-docs]

Runs each ``bench/<name>.py`` of :data:`SUITE` in turn (one at a time: they measure, and the
machine has two cores), with ``ZONNEWIJK_BENCH_FIGURES`` pointing at a file the benches'
:func:`_figures.report` calls append to. Prints every figure next to its goal with PASS or
SHORT, writes ``bench/results/latest.json`` (figure, value, goal, command, date, machine) and
the full output of each bench to ``bench/results/logs/`` (not committed), then renders the
figure tables in ``docs/`` from the summary (``bench/_docs.py``). Exits 1 when a bench failed
or a figure is short of its goal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LATEST = RESULTS / "latest.json"


@dataclass(frozen=True)
class Bench:
    """One bench of the suite: its script and the figures it must report."""

    name: str
    #: Wall-time limit; the suite's whole budget is 30 minutes on two cores [s].
    timeout_s: float
    args: tuple[str, ...] = ()


#: Every bench in ``bench/``, quick ones first. ``tests/test_bench_figures.py`` checks that no
#: bench is missing here.
SUITE: tuple[Bench, ...] = (
    Bench("ingest_stages", 120),
    Bench("modbus_poll", 120),
    Bench("p1", 240),
    Bench("simulate", 300),
    Bench("faults", 600),
    Bench("importing", 300),
    Bench("registry", 300),
    Bench("statements", 300),
    Bench("gateway", 600),
    Bench("ingest", 600),
    Bench("reconnect_storm", 300),
    Bench("soak", 300),
    Bench("sd_writes", 300),
    Bench("dashboards", 900),
    Bench("settle", 900),
    Bench("portal", 1200),
)


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


def run_bench(bench: Bench, figures_file: Path, log: Path) -> tuple[int, float]:
    """Run one bench, its output to the console and to ``log``; (exit code, seconds)."""
    env = {**os.environ, "ZONNEWIJK_BENCH_FIGURES": str(figures_file), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, f"bench/{bench.name}.py", *bench.args]
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        # SIGTERM first: the benches stop their private servers on it.
        watchdog = threading.Timer(bench.timeout_s, proc.terminate)
        watchdog.start()
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                out.write(line)
                print(f"  {bench.name}: {line}", end="", flush=True)
            code = proc.wait(timeout=60)
        except BaseException:
            proc.kill()
            raise
        finally:
            watchdog.cancel()
    if code != 0 and time.monotonic() - started >= bench.timeout_s:
        print(f"  {bench.name}: stopped after its limit of {bench.timeout_s:.0f} s", flush=True)
    return code, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="run these benches only (no summary file)")
    parser.add_argument("--no-docs", action="store_true", help="do not render docs/ tables")
    parser.add_argument(
        "--merge",
        nargs="+",
        help="run these benches and replace their runs in the committed summary (each run "
        "keeps its own date; the summary lists which were merged)",
    )
    args = parser.parse_args()
    wanted = args.only or args.merge
    chosen = [b for b in SUITE if not wanted or b.name in wanted]
    (RESULTS / "logs").mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    info = machine()
    date = datetime.now(UTC).replace(microsecond=0).isoformat()
    runs: list[dict[str, object]] = []
    figures: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="zw-bench-") as tmp:
        for bench in chosen:
            print(f"bench/{bench.name}.py", flush=True)
            file = Path(tmp) / f"{bench.name}.jsonl"
            code, seconds = run_bench(bench, file, RESULTS / "logs" / f"{bench.name}.txt")
            found = []
            if file.exists():
                found = [json.loads(x) for x in file.read_text(encoding="utf-8").splitlines()]
            figures += found
            runs.append(
                {
                    "bench": bench.name,
                    "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
                    "command": " ".join(
                        [".venv/bin/python", f"bench/{bench.name}.py", *bench.args]
                    ),
                    "exit_code": code,
                    "seconds": round(seconds, 1),
                    "figures": len(found),
                }
            )
    total_s = time.monotonic() - began
    failed = [r for r in runs if r["exit_code"] != 0 or not r["figures"]]
    short = [f for f in figures if f["status"] == "SHORT"]
    print()
    print(f"{'bench':<14} {'figure':<44} {'value':>12} {'unit':<8} {'goal':<12} status")
    for f in figures:
        value = "n/a" if f["value"] is None else f"{f['value']:.4g}"
        print(
            f"{f['bench']:<14} {f['figure']:<44} {value:>12} {f['unit']:<8} "
            f"{f['goal'] or '':<12} {f['status']}"
        )
    for r in failed:
        print(f"{r['bench']:<14} FAILED (exit code {r['exit_code']}, {r['figures']} figures)")
    print(
        f"{len(figures)} figures: {sum(f['status'] == 'PASS' for f in figures)} PASS, "
        f"{len(short)} SHORT; {len(failed)} benches failed; {total_s / 60:.1f} min "
        f"on {info['cores']} cores"
    )
    if args.only:
        return 1 if failed or short else 0
    summary = {
        "format": "zonnewijk-bench-1",
        "date": date,
        "machine": info,
        "total_seconds": round(total_s, 1),
        "runs": runs,
        "figures": figures,
    }
    if args.merge:
        summary = merged(json.loads(LATEST.read_text(encoding="utf-8")), summary)
    LATEST.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {LATEST.relative_to(ROOT)}")
    if not args.no_docs:
        from _docs import render_all

        for path in render_all(summary, ROOT / "docs"):
            print(f"rendered the figures in {path.relative_to(ROOT)}")
    return 1 if failed or short else 0


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The committed summary with the new runs (and their figures) in place of the old ones.

    ``total_seconds`` becomes the sum of the runs' own times (what a whole run would take);
    ``merged`` names each replaced bench with the date of its run and the load at its start
    (one entry a bench: the latest).
    """
    names = {r["bench"] for r in new["runs"]}
    order = [b.name for b in SUITE]
    runs = [r for r in old["runs"] if r["bench"] not in names] + new["runs"]

    def rank(item: dict[str, Any]) -> int:
        return order.index(item["bench"]) if item["bench"] in order else len(order)

    runs.sort(key=rank)
    figures = [f for f in old["figures"] if f["bench"] not in names] + new["figures"]
    figures.sort(key=rank)
    return {
        **old,
        "total_seconds": round(sum(float(r["seconds"]) for r in runs), 1),
        "runs": runs,
        "figures": figures,
        "merged": [
            *(m for m in old.get("merged", []) if m["bench"] not in names),
            *(
                {
                    "bench": r["bench"],
                    "date": r["date"],
                    "load_average_at_start": new["machine"].get("load_average_at_start"),
                }
                for r in new["runs"]
            ),
        ],
    }


if __name__ == "__main__":
    raise SystemExit(main())
