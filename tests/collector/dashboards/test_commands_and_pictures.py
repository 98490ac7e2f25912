"""The `zonnewijk dashboards` commands, the provisioning files' wiring, and the pictures."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from matplotlib import image
from sqlalchemy import Engine

from collector.cli import main
from collector.dashboards import generate
from collector.dashboards.screenshots import render_all
from collector.dashboards.targets import INFLUX_UID
from collector.timeseries.influx import InfluxClient

from .conftest import NOW, ROOT


def test_provisioning_files_fit_together() -> None:
    source = yaml.safe_load(
        (ROOT / "dashboards/provisioning/datasources/influxdb.yaml").read_text()
    )["datasources"][0]
    assert source["uid"] == INFLUX_UID and source["jsonData"]["timeInterval"] == "10s"
    provider = yaml.safe_load(
        (ROOT / "dashboards/provisioning/dashboards/zonnewijk.yaml").read_text()
    )["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./dashboards/generated"] == provider["options"]["path"]
    assert mounts["./dashboards/provisioning"] == "/etc/grafana/provisioning"
    assert generate.ALERTING_FILE.parent == ROOT / "dashboards/provisioning/alerting"


def test_build_check_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "build", "--check"]) == 0
    assert capsys.readouterr().err == ""


def test_daily_yield_command_writes_one_day(filled: InfluxClient) -> None:
    day = NOW.date().isoformat()
    argv = ["dashboards", "daily-yield", "--fleet", str(ROOT / "config/fleet.small.yaml")]
    argv += ["--day", day, "--influx-url", filled.url, "--influx-db", filled.database]
    assert main(argv) == 0
    assert main([*argv[:3], "config/does-not-exist.yaml", *argv[4:]]) == 2
    # As a service: recompute every interval (bounded here to two runs).
    assert main([*argv, "--every", "0.05", "--runs", "2"]) == 0
    # InfluxDB unreachable: a one-off run says so and fails.
    dead = [*argv[:-4], "--influx-url", "http://127.0.0.1:9", "--influx-db", "x"]
    assert main(dead) == 1


@pytest.mark.slow
def test_pictures_are_drawn_for_every_dashboard(
    filled: InfluxClient, store: Engine, tmp_path: Path
) -> None:
    chosen = {
        "inverter-detail": {"gateway": ("gw-s002",), "device": ("inv-s002",)},
        "alerts-ledger": {"period": ("2026-06",)},
    }
    paths = render_all(filled, tmp_path, now=NOW, chosen=chosen, store=store)
    assert sorted(p.name for p in paths) == sorted(
        f"dashboard-{name}.png" for name in generate.load_committed()
    )
    for path in paths:
        pixels = image.imread(path)
        assert pixels.shape[1] == 1800 and pixels.shape[0] > 500
        assert pixels.std() > 0.05, f"{path.name} is blank"
