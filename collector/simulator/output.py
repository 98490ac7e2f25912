"""Readings as gateways send them: batch lines in send order, to a directory or to a callback.

:func:`stream_lines` turns a :class:`~collector.simulator.engine.Simulation` into
:class:`~collector.simulator.jsonl.Lines` in the order gateways would send them (by send
time, then gateway). Batches of a gateway whose uplink is down are held back until the outage
ends and then come out flagged ``replayed``, as a gateway's spool would replay them.

:func:`write_run` writes a simulation directory:

``readings.jsonl``
    one :class:`zonnewijk_wire.ReadingsBatch` per line;
``ground_truth.csv``
    the injected faults (:mod:`collector.simulator.faults`);
``fleet.yaml``
    the fleet in the registry's fleet-file format;
``summary.json``
    the run's parameters and per-site ground-truth energy.
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from collector.simulator.engine import Chunk, Simulation
from collector.simulator.faults import write_ground_truth
from collector.simulator.fleet_export import write_fleet_file
from collector.simulator.jsonl import Lines, format_rows
from collector.simulator.yields import fleet_yield

#: Progress callback: (fraction done 0-1, readings so far, message).
Progress = Callable[[float, int, str], None]


@dataclass
class RunTotals:
    """What a run produced, for summaries and tests."""

    readings: int = 0
    lines: int = 0
    bytes: int = 0
    #: Ground-truth AC energy per site [Wh].
    energy_wh: np.ndarray[Any, np.dtype[np.float64]] = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0


def _round_or_none(value: float) -> float | None:
    return None if np.isnan(value) else round(value, 1)


def _order(chunk: Chunk, t: np.ndarray[Any, Any], s: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.lexsort((chunk.epoch_s[t], s, chunk.sent_at_s[t, s]))


def stream_lines(
    sim: Simulation,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> Iterator[Lines]:
    """The simulation's batches in send order, a block of lines at a time.

    Parameters
    ----------
    sim : Simulation
        The simulation to run (iterated once) [-]
    on_chunk : callable, optional
        Called with every simulated chunk before its lines are yielded [-]
    """
    gateways = [s.gateway_id for s in sim.fleet.sites]
    devices = [s.device_id for s in sim.fleet.sites]
    held: list[tuple[int, int, bytes, int]] = []  # (sent_at, site, line, readings)
    for chunk in sim.chunks():
        if on_chunk is not None:
            on_chunk(chunk)
        # Lines due by the end of this chunk's last batch go now; later ones wait.
        horizon = int(chunk.epoch_s[-1]) + sim.batch_s + 60
        t, s = np.nonzero(chunk.present)
        order = _order(chunk, t, s)
        t, s = t[order], s[order]
        late = chunk.sent_at_s[t, s] > horizon
        if late.any():
            later = format_rows(chunk, t[late], s[late], gateways, devices)
            for line, site, sent, count in zip(
                later.split(),
                later.line_site,
                later.line_sent_at_s,
                later.line_readings,
                strict=True,
            ):
                held.append((int(sent), int(site), line + b"\n", int(count)))
            t, s = t[~late], s[~late]
        yield format_rows(chunk, t, s, gateways, devices)
        due = [h for h in held if h[0] <= horizon]
        if due:
            held = [h for h in held if h[0] > horizon]
            yield _held_lines(sorted(due))
    if held:
        yield _held_lines(sorted(held))


def _held_lines(items: list[tuple[int, int, bytes, int]]) -> Lines:
    return Lines(
        b"".join(item[2] for item in items),
        np.array([item[1] for item in items], dtype=np.int64),
        np.array([item[0] for item in items], dtype=np.int64),
        np.array([item[3] for item in items], dtype=np.int64),
        replayed=True,
    )


def write_run(
    sim: Simulation,
    out_dir: Path,
    progress: Progress | None = None,
    *,
    extra_summary: dict[str, Any] | None = None,
) -> RunTotals:
    """Run a simulation and write its directory (readings, ground truth, fleet file, summary).

    Parameters
    ----------
    sim : Simulation
        The simulation to run [-]
    out_dir : Path
        Directory to write; created if missing [-]
    progress : callable, optional
        Called after each chunk with (fraction done, readings, message) [-]
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    totals = RunTotals(energy_wh=np.zeros(len(sim.fleet)))
    started = time.perf_counter()
    steps_done = 0

    def count(chunk: Chunk) -> None:
        nonlocal steps_done
        totals.energy_wh += chunk.energy_wh.sum(axis=0)
        totals.readings += int(chunk.present.sum())
        steps_done += len(chunk.epoch_s)

    # The file is written by a second thread (writes release the GIL) while the next chunk is
    # simulated and formatted; at most two blocks wait, so memory stays bounded.
    with (
        (out_dir / "readings.jsonl").open("wb") as handle,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-writer") as writer,
    ):
        pending: deque[Future[int]] = deque()
        for lines in stream_lines(sim, on_chunk=count):
            pending.append(writer.submit(handle.write, lines.data))
            while len(pending) > 2:
                pending.popleft().result()
            totals.lines += len(lines.line_site)
            totals.bytes += len(lines.data)
            if progress is not None and not lines.replayed:
                progress(steps_done / sim.n_steps, totals.readings, f"{totals.lines} batches")
        for future in pending:
            future.result()
    write_ground_truth(sim.faults.faults, out_dir / "ground_truth.csv")
    write_fleet_file(sim.fleet, out_dir / "fleet.yaml", sim.reset_log)
    totals.seconds = time.perf_counter() - started
    yields = fleet_yield(sim.fleet, sim.start, totals.energy_wh)
    summary = {
        "seed": sim.fleet.seed,
        "sites": len(sim.fleet),
        "start": sim.start.isoformat(),
        "end": sim.end.isoformat(),
        "interval_s": sim.interval_s,
        "batch_s": sim.batch_s,
        "readings": totals.readings,
        "batches": totals.lines,
        "bytes": totals.bytes,
        "faults": len(sim.faults),
        "faults_by_type": dict(Counter(f.type for f in sim.faults.faults)),
        "counter_resets": len(sim.reset_log),
        "seconds": round(totals.seconds, 2),
        "fleet_energy_kwh": round(float(totals.energy_wh.sum()) / 1000.0, 1),
        # Roofs in service for the whole window (collector.simulator.yields); NaN if none.
        "fleet_specific_yield_kwh_per_kwp": _round_or_none(yields.in_service_kwh_per_kwp),
        "sites_in_service_whole_window": yields.sites_in_service,
        "all_sites_specific_yield_kwh_per_kwp": round(yields.all_sites_kwh_per_kwp, 1),
        "site_energy_wh": {
            site.site_id: round(float(e), 1)
            for site, e in zip(sim.fleet.sites, totals.energy_wh, strict=True)
        },
        **(extra_summary or {}),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return totals
