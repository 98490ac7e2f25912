"""docker-compose.yml cannot run here (no Docker engine): check what it configures instead."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_expected_services_exist() -> None:
    assert {
        "mosquitto",
        "influxdb",
        "grafana",
        "collector",
        "portal",
        "faults",
        "statements",
        "daily-yield",
        "self-consumption",
        "consent-purge",
    } <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned_to_exact_versions(name: str) -> None:
    image = SERVICES[name]["image"]
    repo, _, tag = image.rpartition(":")
    assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: tag {tag!r} is not an exact version"


def test_influxdb_is_1_12_as_production_runs() -> None:
    assert SERVICES["influxdb"]["image"].startswith("influxdb:1.12.")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mounts_point_at_files_in_the_repository(name: str) -> None:
    for volume in SERVICES[name].get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
        else:
            assert source in COMPOSE["volumes"], f"{name} uses undeclared volume {source}"


def test_build_context_and_dockerfile_exist() -> None:
    build = SERVICES["collector"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()


def test_zonnewijk_services_run_existing_commands() -> None:
    parser = build_parser()
    checked = 0
    for service in SERVICES.values():
        if not service.get("image", "").startswith("zonnewijk:"):
            continue
        command = service["command"]
        argv = command if isinstance(command, list) else shlex.split(command)
        parser.parse_args(argv)  # SystemExit when the command does not exist
        checked += 1
    assert checked >= 5


def test_secrets_come_from_the_environment_not_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for key in ("PASSWORD", "SECRET_KEY"):
        for line in text.splitlines():
            if key in line and ":" in line and not line.strip().startswith("#"):
                value = line.split(":", 1)[1].strip()
                assert value.startswith("${") or value == "", f"hard-coded secret: {line.strip()}"


def test_grafana_provisioning_points_at_the_influxdb_service() -> None:
    ds = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/influxdb.yaml").read_text())
    source = ds["datasources"][0]
    assert source["type"] == "influxdb"
    assert source["url"] == "http://influxdb:8086"
    assert source["jsonData"]["dbName"] == "zonnewijk"


def test_broker_config_paths_are_mounted_in_the_container() -> None:
    mosquitto = SERVICES["mosquitto"]
    targets = [v.split(":")[1] for v in mosquitto["volumes"]]
    config_target = mosquitto["command"][-1]
    assert config_target in targets
    source = next(v.split(":")[0] for v in mosquitto["volumes"] if v.split(":")[1] == config_target)
    checked = 0
    for line in (ROOT / source).read_text().splitlines():
        key, _, value = line.partition(" ")
        if key in {"password_file", "acl_file", "certfile", "keyfile", "persistence_location"}:
            assert any(value.strip().startswith(t.rstrip("/") + "/") for t in targets), (
                f"{key} {value} is not inside a mounted path {targets}"
            )
            checked += 1
    assert checked >= 4


def test_collector_shares_the_brokers_auth_files_and_loopback() -> None:
    collector = SERVICES["collector"]
    assert collector["network_mode"] == "service:mosquitto"
    assert "mosquitto-auth:/etc/mosquitto" in collector["volumes"]
    assert "mosquitto-auth:/etc/mosquitto" in SERVICES["mosquitto"]["volumes"]


def test_the_collector_keeps_its_sequence_numbers_on_a_volume() -> None:
    """Without it a restarted collector cannot count what the broker dropped while it was away."""
    collector = SERVICES["collector"]
    args = build_parser().parse_args(collector["command"])
    mounts = [v.split(":")[1] for v in collector["volumes"] if not v.startswith("/")]
    assert args.sequence_state is not None
    assert any(args.sequence_state.is_relative_to(m) for m in mounts), mounts


def test_grafana_gets_every_variable_its_provisioning_uses() -> None:
    provisioning = ROOT / "dashboards" / "provisioning"
    used = {
        name
        for path in provisioning.rglob("*.yaml")
        for name in re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", path.read_text())
    }
    assert {"INFLUX_USERNAME", "INFLUX_PASSWORD"} <= used
    given = set(SERVICES["grafana"]["environment"])
    assert used <= given, f"Grafana lacks {sorted(used - given)}"
