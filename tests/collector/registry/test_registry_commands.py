"""The ``zonnewijk db`` and ``zonnewijk registry`` commands, end to end on a SQLite file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.cli import main
from collector.registry.fleet_file import load_fleet_file
from collector.registry.store_read import canonical
from collector.store.db import head_revision

SMALL = Path(__file__).resolve().parents[3] / "config" / "fleet.small.yaml"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'zonnewijk.sqlite3'}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_full_cycle(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "registry", "load", "--database-url", db_url, str(SMALL))
    assert code == 2 and "run `zonnewijk db migrate` first" in err

    code, out, _ = run(capsys, "db", "migrate", "--database-url", db_url)
    assert code == 0 and f"schema migrated empty -> {head_revision()}" in out
    code, out, _ = run(capsys, "db", "migrate", "--database-url", db_url)
    assert "schema already at" in out
    code, out, _ = run(capsys, "db", "status", "--database-url", db_url)
    assert code == 0 and f"schema revision: {head_revision()}" in out

    code, out, _ = run(capsys, "registry", "load", "--database-url", db_url, str(SMALL))
    assert code == 0 and "19 inserted, 0 updated, 0 deleted" in out
    code, out, _ = run(capsys, "registry", "load", "--database-url", db_url, str(SMALL))
    assert code == 0 and out.strip() == "registry unchanged"

    edited = tmp_path / "fleet.yaml"
    edited.write_text(SMALL.read_text().replace("anna@example.org", "anna@example.net"))
    code, out, _ = run(
        capsys, "registry", "load", "--dry-run", "--database-url", db_url, str(edited)
    )
    assert "update member M0001 email: anna@example.org -> anna@example.net" in out
    assert out.strip().splitlines()[-1].startswith("dry run, nothing written")
    code, out, _ = run(capsys, "registry", "load", "--database-url", db_url, str(edited))
    assert "0 inserted, 1 updated" in out

    csv_path = tmp_path / "members.csv"
    csv_path.write_text(
        "member_id,name,street,postal_code,city,email\n"
        "M0900,Nina,Dieze 40,8011 AC,Zwolle,nina@example.org\n"
        "M0901,Olaf,Dieze 42,8011 AC,Zwolle,olaf@\n"
    )
    code, out, err = run(capsys, "registry", "import-csv", "--database-url", db_url, str(csv_path))
    assert code == 1  # some rows were rejected
    assert f"{csv_path}: row 3, column email:" in err
    assert "2 row(s), imported 1, rejected 1" in out

    code, out, _ = run(capsys, "registry", "history", "--database-url", db_url, "--key", "M0001")
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert "insert member M0001" in lines[0]
    assert "update member M0001 email: anna@example.org -> anna@example.net" in lines[1]

    exported = tmp_path / "exported.yaml"
    code, out, _ = run(capsys, "registry", "export", "--database-url", db_url, str(exported))
    assert code == 0
    fleet = load_fleet_file(exported)
    assert fleet.member("M0900").name == "Nina"
    expected = load_fleet_file(edited)
    assert canonical(
        fleet.model_copy(
            update={"members": tuple(m for m in fleet.members if m.member_id != "M0900")}
        )
    ) == canonical(expected)


def test_check_reports_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "registry", "check", str(SMALL))
    assert code == 0
    assert "valid (2 tariff_plans, 3 members, 2 sites, 3 devices, 3 contracts)" in out

    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.read_text().replace("    kwp: 3.6\n", "    kwp: -3.6\n", 1))
    code, _, err = run(capsys, "registry", "check", str(bad))
    assert code == 1
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "kwp: -3.6" in t)
    assert f"{bad}:{line}: sites[1].kwp: Input should be greater than 0" in err

    code, _, err = run(capsys, "registry", "check", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in err


def test_installed_command_and_settings_default(tmp_path: Path) -> None:
    env = {"ZONNEWIJK_DATA_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "zonnewijk.sqlite3").exists()


def test_show_timelines(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "registry", "show", "--fleet", str(SMALL), "--site", "S002")
    assert code == 0
    assert "  2025-03-01 to 2026-03-15  C0002 M0002 Bram Jansen (plan zon-per-kwh)" in out
    assert "  2026-03-16 to open end  C0003 M0003 Chloé Martin (plan zon-per-kwh)" in out
    assert "counter reset at 2025-10-02T09:00:00+00:00: 1843100 Wh -> 0 Wh" in out

    run(capsys, "db", "migrate", "--database-url", db_url)
    run(capsys, "registry", "load", "--database-url", db_url, str(SMALL))
    code, out, _ = run(capsys, "registry", "show", "--database-url", db_url, "--site", "S001")
    assert code == 0
    assert "  2025-03-01 to 2026-05-11  inv-s001-a (sunspec-int, SMA SB3.6, 3600 W, 4.2 kWp)" in out
    assert "replaced inv-s001-a at 2026-05-11T11:40:00+00:00: old counter 4312870 Wh" in out
    code, out, _ = run(capsys, "registry", "show", "--database-url", db_url, "--member", "M0003")
    assert (
        "2026-03-16 to open end  C0003 site S002 (plan zon-per-kwh, contract years from 16 March)"
        in out
    )
    code, _, err = run(capsys, "registry", "show", "--database-url", db_url, "--member", "M9")
    assert code == 1 and "no member_id 'M9'" in err
