"""The fast writer produces exactly the wire format; the run directory and the CLI."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from collector.cli import main
from collector.registry.fleet_file import load_fleet_file
from collector.simulator.engine import Chunk, Simulation
from collector.simulator.faults import FAULT_TYPES, generate_faults, read_ground_truth
from collector.simulator.fleet import generate_fleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.simulator.jsonl import _put_float
from collector.simulator.output import stream_lines
from collector.simulator.readings import chunk_reading
from zonnewijk_wire import MAX_READINGS_PER_BATCH, ReadingFlag, decode_batch

START = datetime(2026, 3, 20, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (0.0, 1, "0"),
        (-0.04, 1, "0"),
        (-0.05, 1, "-0.1"),
        (1234.5, 1, "1234.5"),
        (1234.0, 1, "1234"),
        (50.1, 2, "50.1"),
        (49.999, 2, "50"),
        (0.07, 2, "0.07"),
        (12345678901.0, 0, "12345678901"),
        (-3.25, 2, "-3.25"),
    ],
)
def test_number_text(value: float, decimals: int, text: str) -> None:
    buf = np.zeros(64, dtype=np.uint8)
    end = _put_float(buf, 0, value, decimals)
    assert buf[:end].tobytes().decode() == text


def test_every_line_decodes_to_exactly_the_simulated_readings() -> None:
    fleet = generate_fleet(8, seed=21)
    end = START + timedelta(days=12)
    faults = generate_faults(fleet, START, end, {t: 60.0 for t in FAULT_TYPES}, interval_s=300)
    assert {f.type for f in faults.faults} == set(FAULT_TYPES)
    sim = Simulation(fleet, START, end, 300, faults)
    chunks: list[Chunk] = []
    blocks = list(stream_lines(sim, chunks.append))
    lines = [line for block in blocks for line in block.split()]
    assert any(block.replayed for block in blocks)
    expected = {}
    for chunk in chunks:
        for t, s in zip(*np.nonzero(chunk.present), strict=True):
            reading = chunk_reading(chunk, int(t), int(s), fleet.sites[s].device_id)
            expected[(reading.device_id, reading.ts)] = reading
    got = {}
    seqs: dict[str, list[int]] = defaultdict(list)
    flags: set[ReadingFlag] = set()
    previous_sent = None
    out_of_order = 0
    for line in lines:
        batch = decode_batch(line)
        assert batch.rejected == ()
        assert 1 <= len(batch.readings) <= MAX_READINGS_PER_BATCH
        site = fleet.site(batch.readings[0].device_id.split("-")[0])
        assert batch.gateway_id == site.gateway_id
        seqs[batch.gateway_id].append(batch.seq)
        for reading in batch.readings:
            assert reading.ts < batch.sent_at
            assert (reading.device_id, reading.ts) not in got
            got[(reading.device_id, reading.ts)] = reading
            flags.update(reading.flags)
        if previous_sent is not None and batch.sent_at < previous_sent:
            out_of_order += 1
        previous_sent = batch.sent_at
    assert got == expected
    assert sum(block.readings for block in blocks) == len(expected)
    assert flags >= {
        ReadingFlag.SENTINEL,
        ReadingFlag.COUNTER_JUMP,
        ReadingFlag.COUNTER_BACKWARDS,
        ReadingFlag.REPLAYED,
    }
    for gateway, numbers in seqs.items():
        assert len(set(numbers)) == len(numbers), gateway
    # Lines come in send order, except spooled batches released at the end of a chunk.
    assert out_of_order <= len(faults.of_type("gateway_outage")) * 2


def test_cli_writes_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "simulate", "--sites", "4", "--days", "2", "--start", "2026-06-01",
            "--interval", "600", "--seed", "3", "--out", str(out), "--fault-rate-scale", "40",
        ]
    )  # fmt: skip
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["readings"] > 0 and summary["sites"] == 4
    lines = (out / "readings.jsonl").read_bytes().splitlines()
    assert len(lines) == summary["batches"]
    assert sum(len(decode_batch(line).readings) for line in lines) == summary["readings"]
    registry = load_fleet_file(out / "fleet.yaml")
    assert [s.site_id for s in registry.sites] == ["zw001", "zw002", "zw003", "zw004"]
    truth = read_ground_truth(out / "ground_truth.csv")
    assert len(truth) == summary["faults"] > 0
    resets = truth.of_type("counter_reset")
    recorded = [r for d in registry.devices for r in d.counter_resets]
    assert len(recorded) == len(resets)


def test_cli_rejects_a_bad_interval(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["simulate", "--sites", "1", "--interval", "7", "--out", str(tmp_path)])
    assert code == 2
    assert "interval must divide a day" in capsys.readouterr().err


def test_example_fleet_file_is_current() -> None:
    """config/fleet.example.yaml is what `zonnewijk simulate-fleet` writes (seed 1, 122 sites)."""
    committed = load_fleet_file(REPO / "config" / "fleet.example.yaml")
    assert committed == to_registry_fleet(generate_fleet(122, seed=1))
