"""``zonnewijk settle`` refuses what it cannot do, with a reason and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from settle_cases import fleet_yaml

from collector.cli import main


def test_a_month_that_has_not_ended_can_only_be_previewed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["settle", "--period", "2099-01"]) == 2
    assert "has not ended yet" in capsys.readouterr().err


def test_a_malformed_period_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settle", "--period", "March", "--readings", "x.jsonl", "--fleet", "f"]) == 2
    assert "YYYY-MM" in capsys.readouterr().err


def test_offline_settle_needs_the_fleet_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settle", "--period", "2026-03", "--readings", "x.jsonl"]) == 2
    assert "--fleet" in capsys.readouterr().err


def test_an_unmigrated_ledger_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    assert main(["settle", "--period", "2026-03", "--dry-run", "--database-url", db]) == 2
    assert "zonnewijk db migrate" in capsys.readouterr().err


def test_a_readings_file_that_is_not_json_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(fleet_yaml(), encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header", "format": "zonnewijk-readings-1"}\nnot json\n')
    assert main(["settle", "--period", "2026-03", "--readings", str(bad), "--fleet",
                 str(fleet)]) == 2  # fmt: skip
    assert f"{bad}:2: not JSON" in capsys.readouterr().err
