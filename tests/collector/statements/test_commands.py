"""``zonnewijk statements render`` and ``zonnewijk export bookkeeping|sepa`` on a SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from statement_cases import HISTORY, issue_march_and_april

from collector.cli import build_parser, main
from collector.store.db import make_engine, migrate


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('store')}/store.sqlite3"
    engine = make_engine(url)
    migrate(engine)
    with Session(engine) as session:
        issue_march_and_april(session)
    engine.dispose()
    yield url


def test_export_keeps_the_readings_command() -> None:
    parser = build_parser()
    args = parser.parse_args(["export", "readings", "--period", "2026-03", "--out", "x.jsonl"])
    assert args.export_command == "readings"
    args = parser.parse_args(["export", "sepa", "--run", "2026-03.1"])
    assert args.export_command == "sepa"


def test_render_command(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "statements",
            "render",
            "--run",
            "2026-03.1",
            "--database-url",
            database_url,
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "statements rendered: 5/5 (100%)" in err
    assert sorted(p.name for p in tmp_path.glob("*.pdf")) == [
        f"2026-03_M{i}.pdf" for i in range(1, 6)
    ]
    assert len(list(tmp_path.glob("*.html"))) == 5


def test_bookkeeping_command(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "export",
            "bookkeeping",
            "--run",
            "2026-04.1",
            "--database-url",
            database_url,
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert (tmp_path / "2026-04.bookkeeping.csv").exists()
    assert (tmp_path / "2026-04.bookkeeping-summary.csv").exists()


def test_sepa_command_lists_members_left_out(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "export",
            "sepa",
            "--run",
            "2026-03.1",
            "--database-url",
            database_url,
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1  # files written, but a member needs a person
    assert "not in a payment file: member M5" in err
    assert (tmp_path / "2026-03.pain.008.001.02.xml").exists()


def test_unknown_run_is_a_clear_error(
    database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(
        [
            "statements",
            "render",
            "--run",
            "2030-01.1",
            "--database-url",
            database_url,
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    # the fixture's ledger: a year of history (April 2025 - February 2026), March and April
    issued = ", ".join([*(f"{p}.1" for p in HISTORY), "2026-03.1", "2026-04.1"])
    assert issued.startswith("2025-04.1, 2025-05.1") and issued.count(".1") == 13
    assert f"no settlement run '2030-01.1' (issued runs: {issued})" in capsys.readouterr().err
